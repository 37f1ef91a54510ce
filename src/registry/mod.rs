//! The registry client (the OCI distribution protocol): sessions with
//! anonymous, basic or token auth; `docker://` images pulled into an OCI
//! layout for `pack` (then read like `oci:`, so every blob is verified
//! twice: here as it downloads, and as the layers stream into the tree),
//! pushed ([`push`]), and read lazily by byte range for a mount
//! ([`blob`]).
//!
//! The distribution protocol is spoken here over reqwest (which does TLS,
//! redirects and connection reuse): a registry's answers are anyone's, and
//! every body (manifest, index, token, error) is read in pieces with a cap
//! while it streams and under a time bound, so an endless or trickling
//! answer costs neither unbounded memory nor forever. A client library that
//! buffers whole answers before any check (as oci-client does) cannot
//! promise that.

/// Credentials stored by `podman login`, `skopeo login`, `docker login`.
mod auth;
/// Layer blobs read by byte range, for mounting an image from a registry.
pub mod blob;
mod error;
/// Publishing SquashFS images as the layers of an OCI image.
pub mod push;

use crate::error::io_words;
pub use crate::oci_spec::RegistryAccess;
use crate::oci_spec::{check_digest, index_choice, is_index, MAX_INDEX_DEPTH};
pub use error::RegistryError;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Largest manifest or index read: registries accept up to 4 MiB.
const MAX_MANIFEST: usize = 4 << 20;
/// Largest token answer read.
const MAX_TOKEN: usize = 1 << 20;
/// Of an error answer, only the start is read (for its message).
const MAX_ERROR_BODY: usize = 16 << 10;
/// A small answer (manifest, token, error) is whole within this time.
const SMALL_ANSWER_TIME: Duration = Duration::from_secs(60);
/// A blob may take as long as it needs, but never stalls longer than this.
const STALL_TIME: Duration = Duration::from_secs(60);
const CONNECT_TIME: Duration = Duration::from_secs(30);

pub(crate) fn remote_err(reference: &str, what: impl std::fmt::Display) -> RegistryError {
    RegistryError::At {
        name: reference.to_string(),
        what: what.to_string(),
    }
}

/// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, split and checked: every
/// part goes into URLs, so nothing but the characters the distribution
/// spec allows is let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    registry: String,
    repo: String,
    /// A tag or a `sha256:` digest.
    pub(crate) reference: String,
}

fn parse_ref(rest: &str) -> Result<ImageRef, String> {
    let (name, digest) = match rest.split_once('@') {
        Some((n, d)) => {
            check_digest(d)?;
            (n, Some(d.to_string()))
        }
        None => (rest, None),
    };
    let (host, path) = match name.split_once('/') {
        Some((h, p)) if h.contains('.') || h.contains(':') || h == "localhost" => {
            (h.to_string(), p.to_string())
        }
        _ => ("registry-1.docker.io".to_string(), name.to_string()),
    };
    let (path, tag) = match path.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p.to_string(), Some(t.to_string())),
        _ => (path, None),
    };
    let repo = if host == "registry-1.docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    if !host_ok {
        return Err(format!("has a bad registry name {host:?}"));
    }
    let repo_ok = !repo.is_empty()
        && repo.split('/').all(|c| {
            let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            // The spec's components start and end with a letter or digit.
            c.bytes().next().is_some_and(alnum)
                && c.bytes().last().is_some_and(alnum)
                && c.bytes().all(|b| alnum(b) || b"._-".contains(&b))
        });
    if !repo_ok {
        return Err(format!(
            "has a bad repository name {repo:?} (lowercase letters, digits, '.', '_', '-', '/')"
        ));
    }
    if let Some(t) = &tag {
        let ok = (1..=128).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !t.starts_with(['.', '-']);
        if !ok {
            return Err(format!("has a bad tag {t:?}"));
        }
    }
    Ok(ImageRef {
        registry: host,
        repo,
        reference: digest.or(tag).unwrap_or_else(|| "latest".into()),
    })
}

/// Checks `HOST/REPO[:TAG|@DIGEST]` (what follows `docker://`) as a pull
/// would, without pulling.
pub fn check_reference(rest: &str) -> Result<(), String> {
    parse_ref(rest).map(|_| ())
}

/// Reads a body in pieces, failing once it passes `max` bytes.
pub(crate) async fn read_capped(
    resp: &mut reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!(
            "answer of {} bytes is larger than the {max} accepted",
            resp.content_length().unwrap_or(0)
        ));
    }
    let mut body = Vec::new();
    while let Some(piece) = resp
        .chunk()
        .await
        .map_err(|e| crate::error::Report(&e).to_string())?
    {
        if body.len() + piece.len() > max {
            return Err(format!("answer is larger than the {max} bytes accepted"));
        }
        body.extend_from_slice(&piece);
    }
    Ok(body)
}

/// A header's value as text ("" when absent or not text).
pub(crate) fn header_text(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    resp.headers()
        .get(name)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A failed answer as one line: its status and the start of its body.
pub(crate) async fn status_error(mut resp: reqwest::Response) -> String {
    let status = resp.status();
    let mut body = Vec::new();
    // Only the start: the rest is not waited for.
    while body.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(p)) => body.extend_from_slice(&p),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BODY);
    let text = String::from_utf8_lossy(&body);
    // The registry's JSON errors: {"errors":[{"code":..,"message":..}]}.
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v["errors"][0]["message"]
                .as_str()
                .map(crate::error::outside_text)
        })
        .unwrap_or_default();
    if message.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {message}")
    }
}

/// One `KEY="VALUE"` parameter of a `WWW-Authenticate: Bearer` challenge
/// (a quoted value may hold commas: `scope="repository:a:pull,push"`).
pub(crate) fn challenge_param(header: &str, key: &str) -> Option<String> {
    let mut rest = header.trim().strip_prefix("Bearer")?.trim_start();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => {
                let end = q.find('"')?;
                (&q[..end], &q[end + 1..])
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if k.trim().eq_ignore_ascii_case(key) {
            return Some(value.to_string());
        }
        rest = next.trim_start_matches([',', ' ']);
    }
    None
}

/// A registry session: the client, where the repository is, and the
/// credentials or token that answered its challenge.
pub(crate) struct Session {
    client: reqwest::Client,
    base: String,
    image: ImageRef,
    creds: Option<(String, String)>,
    bearer: Option<String>,
    basic: bool,
    /// Tokens are asked for push as well as pull.
    pub(crate) pushing: bool,
}

/// One request of a session: method, where, what is accepted, a body.
pub(crate) struct Call<'a> {
    pub method: reqwest::Method,
    /// A path below /v2/REPO/, or an absolute URL the registry handed out
    /// (an upload's Location).
    pub target: &'a str,
    pub accept: &'a str,
    pub content_type: Option<&'a str>,
    pub body: Option<&'a [u8]>,
    /// The whole answer is bounded in time (not a blob).
    pub small: bool,
    /// Only bytes `start..=end` (an HTTP Range).
    pub range: Option<(u64, u64)>,
}

impl<'a> Call<'a> {
    /// `method` on `target`: anything accepted, no body, the answer whole
    /// within the small-answer time; set the rest with `..Call::new(...)`.
    pub fn new(method: reqwest::Method, target: &'a str) -> Self {
        Call {
            method,
            target,
            accept: "*/*",
            content_type: None,
            body: None,
            small: true,
            range: None,
        }
    }

    /// A GET of `target`.
    pub fn get(target: &'a str, accept: &'a str, small: bool) -> Self {
        Call {
            accept,
            small,
            ..Call::new(reqwest::Method::GET, target)
        }
    }
}

impl Session {
    fn request(&self, method: reqwest::Method, url: &str, accept: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .request(method, url)
            .header(reqwest::header::ACCEPT, accept);
        if let Some(t) = &self.bearer {
            r = r.bearer_auth(t);
        } else if let (true, Some((u, p))) = (self.basic, &self.creds) {
            r = r.basic_auth(u, Some(p));
        }
        r
    }

    /// The repository's base URL: `.../v2/REPO/`.
    pub(crate) fn repo_url(&self) -> String {
        format!("{}/v2/{}/", self.base, self.image.repo)
    }

    /// GET `path` below /v2/REPO/, answering one auth challenge. `small`:
    /// the whole answer is bounded in time (not a blob).
    async fn get(
        &mut self,
        path: &str,
        accept: &str,
        small: bool,
    ) -> Result<reqwest::Response, String> {
        self.send(Call::get(path, accept, small)).await
    }

    /// Sends `call`, answering one auth challenge (the body is sent again
    /// with the credentials).
    pub(crate) async fn send(&mut self, call: Call<'_>) -> Result<reqwest::Response, String> {
        let url = if call.target.starts_with("http://") || call.target.starts_with("https://") {
            call.target.to_string()
        } else {
            format!("{}{}", self.repo_url(), call.target)
        };
        for attempt in 0..2 {
            let mut req = self.request(call.method.clone(), &url, call.accept);
            if let Some(t) = call.content_type {
                req = req.header(reqwest::header::CONTENT_TYPE, t);
            }
            if let Some(b) = call.body {
                req = req.body(b.to_vec());
            } else if call.method == reqwest::Method::PUT || call.method == reqwest::Method::POST {
                req = req.header(reqwest::header::CONTENT_LENGTH, 0);
            }
            if call.small {
                req = req.timeout(SMALL_ANSWER_TIME);
            }
            if let Some((a, b)) = call.range {
                req = req.header(reqwest::header::RANGE, format!("bytes={a}-{b}"));
            }
            let resp = req
                .send()
                .await
                .map_err(|e| crate::error::Report(&e).to_string())?;
            if resp.status() != reqwest::StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            let challenge = header_text(&resp, reqwest::header::WWW_AUTHENTICATE);
            if challenge.trim_start().starts_with("Bearer") {
                self.bearer = Some(self.token(&challenge).await?);
            } else if self.creds.is_some() && !self.basic {
                self.basic = true;
            } else {
                return Err(status_error(resp).await);
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// A pull token from the challenge's realm (with the credentials, if
    /// any; anonymous otherwise).
    async fn token(&self, challenge: &str) -> Result<String, String> {
        let realm = challenge_param(challenge, "realm")
            .ok_or_else(|| "the registry asked for a token without naming where".to_string())?;
        let mut realm_url = reqwest::Url::parse(&realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| "the registry's token service is not an http(s) URL".to_string())?;
        let scope = match challenge_param(challenge, "scope") {
            _ if self.pushing => format!("repository:{}:pull,push", self.image.repo),
            Some(s) => s,
            None => format!("repository:{}:pull", self.image.repo),
        };
        {
            let mut q = realm_url.query_pairs_mut();
            q.append_pair("scope", &scope);
            if let Some(service) = challenge_param(challenge, "service") {
                q.append_pair("service", &service);
            }
        }
        let mut req = self.client.get(realm_url).timeout(SMALL_ANSWER_TIME);
        if let Some((u, p)) = &self.creds {
            req = req.basic_auth(u, Some(p));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| crate::error::Report(&e).to_string())?;
        if !resp.status().is_success() {
            return Err(format!("token service: {}", status_error(resp).await));
        }
        let body = read_capped(&mut resp, MAX_TOKEN)
            .await
            .map_err(|e| format!("token service: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("token service: answer is not JSON: {e}"))?;
        v["token"]
            .as_str()
            .or_else(|| v["access_token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| "token service: answer holds no token".to_string())
    }

    /// A manifest or index, whole, checked against the digest it was asked
    /// by: its bytes, digest and media type.
    async fn manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String, String), String> {
        let mut resp = self
            .get(
                &format!("manifests/{reference}"),
                &MANIFEST_TYPES.join(", "),
                true,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let media = header_text(&resp, reqwest::header::CONTENT_TYPE);
        let bytes = read_capped(&mut resp, MAX_MANIFEST).await?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(format!("hashes to {digest}"));
        }
        Ok((bytes, digest, media))
    }

    /// Blob `digest` into `path`: exactly `size` bytes hashing to `digest`.
    async fn blob(&mut self, digest: &str, size: u64, path: &Path) -> Result<(), String> {
        let mut resp = self
            .get(
                &format!("blobs/{digest}"),
                "application/octet-stream",
                false,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let mut file = std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {}", path.display(), io_words(&e)))?;
        let mut hash = Sha256::new();
        let mut got = 0u64;
        while let Some(piece) = resp
            .chunk()
            .await
            .map_err(|e| crate::error::Report(&e).to_string())?
        {
            got += piece.len() as u64;
            if got > size {
                return Err(format!("is longer than its descriptor's {size} bytes"));
            }
            hash.update(&piece);
            file.write_all(&piece)
                .map_err(|e| format!("cannot write {}: {}", path.display(), io_words(&e)))?;
        }
        if got != size {
            return Err(format!("ends after {got} of its {size} bytes"));
        }
        let actual = format!("sha256:{}", hex::encode(hash.finalize()));
        if actual != digest {
            return Err(format!("hashes to {actual}"));
        }
        Ok(())
    }
}

/// The runtime a session's futures run on, on this thread.
pub(crate) fn runtime(about: &Path) -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RegistryError::io(about, "start the registry client", e))
}

/// `docker://HOST/REPO[:TAG|@DIGEST]`, split and checked.
pub(crate) fn parse_docker_ref(reference: &str) -> Result<ImageRef, RegistryError> {
    let rest = reference
        .strip_prefix("docker://")
        .ok_or_else(|| remote_err(reference, "is not docker://HOST/REPO[:TAG|@DIGEST]"))?;
    parse_ref(rest).map_err(|e| remote_err(reference, e))
}

/// `reference` without its tag or digest: `docker://HOST/REPO`, as the
/// user wrote it (to which `@DIGEST` is added to name one image).
pub(crate) fn repository_of(reference: &str) -> &str {
    let name = reference.rsplit_once('@').map_or(reference, |(n, _)| n);
    match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    }
}

/// `oras://HOST/REPO[:TAG|@DIGEST]` (an artifact, as `apptainer push
/// oras://` writes one), split and checked as `docker://` is.
pub(crate) fn parse_oras_ref(reference: &str) -> Result<ImageRef, RegistryError> {
    let rest = reference
        .strip_prefix("oras://")
        .ok_or_else(|| remote_err(reference, "is not oras://HOST/REPO[:TAG|@DIGEST]"))?;
    parse_ref(rest).map_err(|e| remote_err(reference, e))
}

/// `access`, its credentials given or else what a login stored for the
/// image's registry.
pub(crate) fn with_stored_login(access: &RegistryAccess, image: &ImageRef) -> RegistryAccess {
    match &access.creds {
        Some(_) => access.clone(),
        None => RegistryAccess {
            creds: auth::stored_login(&image.registry, &image.repo),
            ..access.clone()
        },
    }
}

impl Session {
    /// A session with the registry of `image` (named `reference` in
    /// errors), anonymous or with `access`'s credentials (see
    /// [`with_stored_login`] for those a login stored).
    pub(crate) fn new(
        image: ImageRef,
        access: &RegistryAccess,
        reference: &str,
    ) -> Result<Self, RegistryError> {
        let creds = access.creds.as_ref().map(|c| {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            (u.to_string(), p.to_string())
        });
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIME)
            .read_timeout(STALL_TIME)
            .user_agent(concat!("sqfuse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| remote_err(reference, crate::error::Report(&e).to_string()))?;
        Ok(Session {
            client,
            base: format!(
                "{}://{}",
                if access.insecure { "http" } else { "https" },
                image.registry
            ),
            image,
            creds,
            bearer: None,
            basic: false,
            pushing: false,
        })
    }
}

impl Session {
    /// The image manifest the session's reference names, through nested
    /// indexes (this machine's platform): its bytes, digest, media type and
    /// JSON. `shown` names the image in errors.
    pub(crate) async fn resolve_manifest(
        &mut self,
        shown: &str,
    ) -> Result<(Vec<u8>, String, String, serde_json::Value), RegistryError> {
        let mut at = self.image.reference.clone();
        // The manifest after at most MAX_INDEX_DEPTH indexes.
        for _ in 0..=MAX_INDEX_DEPTH {
            let (bytes, digest, header_media) = self
                .manifest(&at)
                .await
                .map_err(|e| remote_err(shown, format!("manifest {at}: {e}")))?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| remote_err(shown, format!("manifest is not JSON: {e}")))?;
            let media = v["mediaType"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(header_media);
            if is_index(&media, &v) {
                let pick = index_choice(&v).map_err(|e| remote_err(shown, e))?;
                let d = pick["digest"].as_str().unwrap_or_default();
                check_digest(d).map_err(|e| remote_err(shown, e))?;
                at = d.to_string();
                continue;
            }
            return Ok((bytes, digest, media, v));
        }
        Err(remote_err(shown, "indexes nested too deep"))
    }
}

/// Pulls `docker://...` into an OCI layout at `dir` (created): its manifest
/// (this machine's platform from an index), config and layers, with an
/// index.json naming the manifest.
pub fn pull(reference: &str, remote: &RegistryAccess, dir: &Path) -> Result<(), RegistryError> {
    let image = parse_docker_ref(reference)?;
    let remote = &with_stored_login(remote, &image);
    let mut session = Session::new(image.clone(), remote, reference)?;
    let rt = runtime(dir)?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| RegistryError::io(&blobs, "create", e))?;
    rt.block_on(async {
        let (bytes, digest, media, manifest) = session.resolve_manifest(reference).await?;
        let media = if MANIFEST_TYPES[..2].contains(&media.as_str()) {
            media
        } else {
            MANIFEST_TYPES[0].to_string()
        };
        std::fs::write(blobs.join(&digest["sha256:".len()..]), &bytes)
            .map_err(|e| RegistryError::io(&blobs, "write", e))?;
        // Config and layers, each to its file, never past its declared size.
        let mut descs = vec![&manifest["config"]];
        descs.extend(manifest["layers"].as_array().into_iter().flatten());
        for d in descs {
            let digest = d["digest"].as_str().unwrap_or_default();
            check_digest(digest).map_err(|e| remote_err(reference, e))?;
            let size = d["size"]
                .as_u64()
                .ok_or_else(|| remote_err(reference, format!("blob {digest} has no size")))?;
            let path = blobs.join(&digest["sha256:".len()..]);
            if path.exists() {
                continue; // the same layer twice
            }
            if let Err(e) = session.blob(digest, size, &path).await {
                let _ = std::fs::remove_file(&path);
                return Err(remote_err(reference, format!("blob {digest}: {e}")));
            }
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": media,
                "digest": digest,
                "size": bytes.len(),
            }],
        });
        std::fs::write(dir.join("index.json"), index.to_string())
            .map_err(|e| RegistryError::io(dir, "write index.json", e))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_split_as_docker_does_and_checked() {
        let r = parse_ref("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "a/b", "v1")
        );
        let r = parse_ref("alpine").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repo.as_str(), r.reference.as_str()),
            ("registry-1.docker.io", "library/alpine", "latest")
        );
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse_ref(&format!("localhost/x@{d}")).unwrap();
        assert_eq!((r.registry.as_str(), r.reference), ("localhost", d));
        for bad in [
            "h.io/A/b",
            "h.io/a/../b",
            "h.io/a?x=1",
            "h.io/a:t/x",
            "h.io/a:-t",
            "h.io/a@sha256:zz",
            "h.io/a#b",
            "h.io/a b",
            "h\u{e9}.io/a",
            "h.io/",
        ] {
            assert!(parse_ref(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn bearer_challenges_are_read() {
        let h =
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull""#;
        assert_eq!(
            challenge_param(h, "realm").as_deref(),
            Some("http://127.0.0.1:1/token")
        );
        assert_eq!(challenge_param(h, "service").as_deref(), Some("reg"));
        let two = r#"Bearer realm="r",scope="repository:a:pull,push""#;
        assert_eq!(
            challenge_param(two, "scope").as_deref(),
            Some("repository:a:pull,push")
        );
        assert_eq!(challenge_param("Basic realm=x", "realm"), None);
    }
}
