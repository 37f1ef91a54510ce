//! `sqfuse push`: SquashFS images published to a registry as one OCI image
//! whose layers are the images themselves (SingularityCE's layer media
//! type), first image on top, with an OCI image config and, asked for,
//! each layer's dm-verity root hash as an annotation on its descriptor.
//!
//! Blobs the registry has are not sent again; a blob is uploaded in
//! bounded chunks (POST, PATCH..., PUT with its digest), so an image of any
//! size costs a chunk of memory.

use super::oci_spec::{host_arch, RegistryAccess};
use super::PackError;
use crate::reader::{Image, OpenOptions};
use crate::registry::{
    header_text, parse_docker_ref, remote_err, repository_of, runtime, status_error, Call, Session,
};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The media type of a SquashFS layer, as SingularityCE publishes them.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.sylabs.image.layer.v1.squashfs";
/// The annotation holding a layer's dm-verity root hash (hex) when its
/// image carries an appended tree.
pub const VERITY_ROOT_ANNOTATION: &str = "org.sqfuse.verity.roothash";

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Bytes sent per PATCH of an upload.
const CHUNK: usize = 8 << 20;

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Every image must carry an appended dm-verity tree, and its root
    /// hash is written as [`VERITY_ROOT_ANNOTATION`] on its layer.
    pub verity: bool,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs sent (layers and the config).
    pub uploaded: usize,
    /// Blobs the registry had already.
    pub present: usize,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The pushed image by digest: `docker://HOST/REPO@DIGEST`.
    pub by_digest: String,
}

/// One blob to publish: a file, or bytes made here (the config).
struct Blob {
    digest: String,
    size: u64,
    source: BlobSource,
}

enum BlobSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// The sha256 digest and size of `path`, read in pieces.
fn file_digest(path: &Path) -> Result<(String, u64), PackError> {
    let mut f = std::fs::File::open(path).map_err(|e| PackError::io(path, "open", e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| PackError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hash.finalize())), size))
}

/// Publishes `images` (top first, as a layered mount takes them) as
/// `reference` (`docker://HOST[:PORT]/REPO[:TAG]`).
pub fn push(
    images: &[PathBuf],
    reference: &str,
    access: &RegistryAccess,
    opts: &PushOptions,
) -> Result<PushReport, PackError> {
    let target = parse_docker_ref(reference)?;
    if target.reference.starts_with("sha256:") {
        return Err(remote_err(
            reference,
            "names a digest; a push needs a tag (docker://HOST/REPO:TAG)",
        ));
    }
    if images.is_empty() {
        return Err(PackError::Usage("no image to push".into()));
    }
    // Each image is a SquashFS image (checked by opening it), bottom first
    // in the manifest.
    let mut layers = Vec::with_capacity(images.len());
    for path in images.iter().rev() {
        let img = Image::open(path, &OpenOptions::default())
            .map_err(|e| PackError::Format(e.within(crate::error::shown_path(path))))?;
        let root = match (opts.verity, img.verity_tree()) {
            (false, _) => None,
            (true, Some(t)) => t.root.map(hex::encode),
            (true, None) => None,
        };
        if opts.verity && root.is_none() {
            return Err(PackError::entry(
                path,
                "has no dm-verity tree (pack --verity or sqfuse verity appends one)",
            ));
        }
        let (digest, size) = file_digest(path)?;
        layers.push((
            Blob {
                digest,
                size,
                source: BlobSource::File(path.clone()),
            },
            root,
        ));
    }
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|(b, _)| b.digest.clone()).collect::<Vec<_>>(),
        },
        "config": {},
    });
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config_blob = Blob {
        digest: format!("sha256:{}", hex::encode(Sha256::digest(&config_bytes))),
        size: config_bytes.len() as u64,
        source: BlobSource::Bytes(config_bytes),
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": CONFIG_TYPE,
            "digest": config_blob.digest,
            "size": config_blob.size,
        },
        "layers": layers.iter().map(|(b, root)| {
            let mut d = serde_json::json!({
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": b.digest,
                "size": b.size,
            });
            if let Some(r) = root {
                d["annotations"] = serde_json::json!({ VERITY_ROOT_ANNOTATION: r });
            }
            d
        }).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest_bytes)));

    let access = &crate::registry::with_stored_login(access, &target);
    let mut session = Session::new(target.clone(), access, reference)?;
    session.pushing = true;
    let rt = runtime(Path::new(reference))?;
    let err = |e: String| remote_err(reference, e);
    rt.block_on(async {
        let mut report = PushReport {
            by_digest: format!("{}@{manifest_digest}", repository_of(reference)),
            manifest_digest: manifest_digest.clone(),
            ..Default::default()
        };
        let blobs = layers.iter().map(|(b, _)| b).chain([&config_blob]);
        for blob in blobs {
            if has_blob(&mut session, &blob.digest).await.map_err(err)? {
                report.present += 1;
                continue;
            }
            upload(&mut session, blob)
                .await
                .map_err(|e| err(format!("blob {}: {e}", blob.digest)))?;
            report.uploaded += 1;
        }
        let resp = session
            .send(Call {
                content_type: Some(MANIFEST_TYPE),
                body: Some(&manifest_bytes),
                ..Call::new(
                    reqwest::Method::PUT,
                    &format!("manifests/{}", target.reference),
                )
            })
            .await
            .map_err(err)?;
        if !resp.status().is_success() {
            return Err(err(format!("manifest: {}", status_error(resp).await)));
        }
        Ok(report)
    })
}

/// Whether the repository has blob `digest` (HEAD answers 200).
async fn has_blob(session: &mut Session, digest: &str) -> Result<bool, String> {
    let resp = session
        .send(Call::new(reqwest::Method::HEAD, &format!("blobs/{digest}")))
        .await?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        reqwest::StatusCode::NOT_FOUND => Ok(false),
        s => Err(format!("asking for blob {digest}: {s}")),
    }
}

/// The upload URL the registry answered with (its Location, which may be
/// relative to the registry).
fn location(session: &Session, resp: &reqwest::Response) -> Result<String, String> {
    let loc = header_text(resp, reqwest::header::LOCATION);
    if loc.is_empty() {
        return Err("the registry gave no upload location".into());
    }
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return Ok(loc);
    }
    let base = reqwest::Url::parse(&session.repo_url()).map_err(|e| e.to_string())?;
    base.join(&loc)
        .map(|u| u.to_string())
        .map_err(|e| format!("upload location {loc:?}: {e}"))
}

/// Uploads `blob` in chunks: POST starts the upload, each PATCH sends the
/// next piece, PUT with the digest closes it (the registry checks it).
async fn upload(session: &mut Session, blob: &Blob) -> Result<(), String> {
    let resp = session
        .send(Call::new(reqwest::Method::POST, "blobs/uploads/"))
        .await?;
    if resp.status() != reqwest::StatusCode::ACCEPTED {
        return Err(format!("starting the upload: {}", status_error(resp).await));
    }
    let mut at = location(session, &resp)?;
    let mut reader: Box<dyn Read> = match &blob.source {
        BlobSource::File(p) => Box::new(
            std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?,
        ),
        BlobSource::Bytes(b) => Box::new(&b[..]),
    };
    let mut sent = 0u64;
    let mut buf = vec![0u8; CHUNK];
    while sent < blob.size {
        let want = (blob.size - sent).min(CHUNK as u64) as usize;
        reader
            .read_exact(&mut buf[..want])
            .map_err(|e| format!("reading it: {e}"))?;
        let piece = &buf[..want];
        let range = format!("{}-{}", sent, sent + want as u64 - 1);
        let resp = session
            .send(Call {
                content_type: Some("application/octet-stream"),
                body: Some(piece),
                small: false,
                ..Call::new(reqwest::Method::PATCH, &at)
            })
            .await
            .map_err(|e| format!("sending bytes {range}: {e}"))?;
        if resp.status() != reqwest::StatusCode::ACCEPTED {
            return Err(format!(
                "sending bytes {range}: {}",
                status_error(resp).await
            ));
        }
        at = location(session, &resp)?;
        sent += want as u64;
    }
    let mut close = reqwest::Url::parse(&at).map_err(|e| e.to_string())?;
    close.query_pairs_mut().append_pair("digest", &blob.digest);
    let resp = session
        .send(Call::new(reqwest::Method::PUT, close.as_str()))
        .await?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return Err(format!("closing the upload: {}", status_error(resp).await));
    }
    Ok(())
}
