//! `sqfuse push`: SquashFS images published to a registry as one OCI image
//! whose layers are the images themselves (SingularityCE's layer media
//! type), first image on top, with an OCI image config and, asked for,
//! each layer's dm-verity root hash as an annotation on its descriptor.
//!
//! Blobs the registry has are not sent again; a blob is uploaded in
//! bounded chunks (POST, PATCH..., PUT with its digest), so an image of any
//! size costs a chunk of memory. An upload resumes where the registry says
//! it stopped: after a failed PATCH (a few tries, waiting longer each
//! time), and in a later push, from the upload URL kept in the state
//! directory until the blob is complete.

use super::{
    header_text, parse_docker_ref, remote_err, repository_of, runtime, status_error, Call,
    RegistryAccess, RegistryError, Session,
};
use crate::oci_spec::host_arch;
use crate::reader::{Image, OpenOptions};
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
/// Waits before each new try of a failed PATCH (then the push fails,
/// leaving the upload to resume from).
const RETRY_WAITS: [std::time::Duration; 4] = [
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
];

/// How to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Every image must carry an appended dm-verity tree, and its root
    /// hash is written as [`VERITY_ROOT_ANNOTATION`] on its layer.
    pub verity: bool,
    /// Where unfinished uploads are remembered (a private directory, the
    /// URL cache's), so that a later push resumes them; None: not kept.
    pub state_dir: Option<PathBuf>,
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Blobs sent (layers and the config).
    pub uploaded: usize,
    /// Blobs the registry had already.
    pub present: usize,
    /// Bytes not sent again because an upload resumed where it stopped.
    pub resumed_bytes: u64,
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
fn file_digest(path: &Path) -> Result<(String, u64), RegistryError> {
    let mut f = std::fs::File::open(path).map_err(|e| RegistryError::io(path, "open", e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| RegistryError::io(path, "read", e))?;
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
) -> Result<PushReport, RegistryError> {
    let target = parse_docker_ref(reference)?;
    if target.reference.starts_with("sha256:") {
        return Err(remote_err(
            reference,
            "names a digest; a push needs a tag (docker://HOST/REPO:TAG)",
        ));
    }
    if images.is_empty() {
        return Err(RegistryError::Usage("no image to push".into()));
    }
    // Each image is a SquashFS image (checked by opening it), bottom first
    // in the manifest.
    let mut layers = Vec::with_capacity(images.len());
    for path in images.iter().rev() {
        let img = Image::open(path, &OpenOptions::default())
            .map_err(|e| RegistryError::Image(e.within(crate::error::shown_path(path))))?;
        let root = match (opts.verity, img.verity_tree()) {
            (false, _) => None,
            (true, Some(t)) => t.root.map(hex::encode),
            (true, None) => None,
        };
        if opts.verity && root.is_none() {
            return Err(RegistryError::At {
                name: crate::error::shown_path(path),
                what: "has no dm-verity tree (pack --verity or sqfuse verity appends one)".into(),
            });
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

    let access = &super::with_stored_login(access, &target);
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
            let kept = opts.state_dir.as_deref().map(|dir| {
                (
                    dir,
                    format!("upload {} {}", repository_of(reference), blob.digest),
                )
            });
            report.resumed_bytes += upload(&mut session, blob, kept)
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

/// Where an upload stands: the URL to send the next piece to, and the
/// bytes the registry has. None if the registry no longer knows it.
async fn upload_status(session: &mut Session, at: &str) -> Result<Option<(String, u64)>, String> {
    let resp = session.send(Call::new(reqwest::Method::GET, at)).await?;
    match resp.status() {
        reqwest::StatusCode::NO_CONTENT => {}
        reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::BAD_REQUEST => return Ok(None),
        _ => {
            return Err(format!(
                "asking where the upload stands: {}",
                status_error(resp).await
            ))
        }
    }
    // `Range: 0-LAST`; "0-0" is also what a registry says of an empty
    // upload, and pieces are whole chunks, so it means nothing yet.
    let range = header_text(&resp, reqwest::header::RANGE);
    let have = match range.split_once('-') {
        Some(("0", "0")) => 0,
        Some(("0", last)) => last
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|l| l.checked_add(1))
            .ok_or_else(|| format!("the registry says the upload holds {range:?}"))?,
        _ => return Err(format!("the registry says the upload holds {range:?}")),
    };
    Ok(Some((location(session, &resp)?, have)))
}

/// The upload kept under `key` in `dir` by an earlier push, if the
/// registry still has it: where it stands. (Kept in the URL cache's
/// directory, so only with the `remote` feature.)
async fn kept_upload(session: &mut Session, dir: &Path, key: &str) -> Option<(String, u64)> {
    #[cfg(feature = "remote")]
    {
        let url = crate::reader::remote::cache::load_document(dir, key)?;
        let url = String::from_utf8(url).ok()?;
        // A kept URL is the registry's own; one that fails is forgotten.
        upload_status(session, &url).await.ok().flatten()
    }
    #[cfg(not(feature = "remote"))]
    {
        let _ = (session, dir, key);
        None
    }
}

/// Keeps `at`, where the upload goes on, under `key` in `dir`.
fn keep_upload(dir: &Path, key: &str, at: &str) {
    #[cfg(feature = "remote")]
    crate::reader::remote::cache::save_document(dir, key, at.as_bytes());
    #[cfg(not(feature = "remote"))]
    let _ = (dir, key, at);
}

/// Forgets the upload kept under `key` in `dir` (it is complete).
fn forget_upload(dir: &Path, key: &str) {
    #[cfg(feature = "remote")]
    crate::reader::remote::cache::remove_document(dir, key);
    #[cfg(not(feature = "remote"))]
    let _ = (dir, key);
}

/// A new upload (POST): where to send its first piece.
async fn start_upload(session: &mut Session) -> Result<String, String> {
    let resp = session
        .send(Call::new(reqwest::Method::POST, "blobs/uploads/"))
        .await?;
    if resp.status() != reqwest::StatusCode::ACCEPTED {
        return Err(format!("starting the upload: {}", status_error(resp).await));
    }
    location(session, &resp)
}

/// Where an upload stands after a piece failed.
enum Stands {
    /// Going on at this URL, the registry holding this many bytes.
    At(String, u64),
    /// The registry no longer knows it (the distribution registry cancels
    /// an upload that a broken piece left longer than its URL says).
    Lost,
    /// The registry did not answer, however long it was waited for.
    Unreachable,
}

/// Asks where the upload at `at` (of a `size`-byte blob) stands, after
/// each of the RETRY_WAITS until the registry answers.
async fn after_failure(session: &mut Session, at: &str, size: u64) -> Stands {
    for wait in RETRY_WAITS {
        tokio::time::sleep(wait).await;
        match upload_status(session, at).await {
            Ok(Some((next, have))) if have <= size => return Stands::At(next, have),
            Ok(_) => return Stands::Lost,
            Err(_) => {} // still unreachable
        }
    }
    Stands::Unreachable
}

/// A file or bytes, read from any point.
trait ReadAt: Read + std::io::Seek {}
impl<T: Read + std::io::Seek> ReadAt for T {}

/// Uploads `blob` in chunks: POST starts the upload (or an upload kept
/// under `kept`'s key resumes), each PATCH sends the next piece, PUT with
/// the digest closes it (the registry checks it). A PATCH that fails is
/// followed by asking where the upload stands, and the upload goes on
/// from there (or starts over, if the registry dropped it). Returns the
/// bytes not sent again.
async fn upload(
    session: &mut Session,
    blob: &Blob,
    kept: Option<(&Path, String)>,
) -> Result<u64, String> {
    let resumed = match &kept {
        Some((dir, key)) => kept_upload(session, dir, key).await,
        None => None,
    };
    let (mut at, mut sent) = match resumed {
        Some((at, have)) if have <= blob.size => (at, have),
        _ => (start_upload(session).await?, 0),
    };
    let skipped = sent;
    let mut reader: Box<dyn ReadAt> = match &blob.source {
        BlobSource::File(p) => Box::new(std::fs::File::open(p).map_err(|e| {
            format!(
                "cannot open {}: {}",
                p.display(),
                crate::error::io_words(&e)
            )
        })?),
        BlobSource::Bytes(b) => Box::new(std::io::Cursor::new(&b[..])),
    };
    let mut buf = vec![0u8; CHUNK];
    let mut tries = 0;
    while sent < blob.size {
        if let Some((dir, key)) = &kept {
            keep_upload(dir, key, &at);
        }
        let want = (blob.size - sent).min(CHUNK as u64) as usize;
        reader
            .seek(std::io::SeekFrom::Start(sent))
            .and_then(|_| reader.read_exact(&mut buf[..want]))
            .map_err(|e| format!("reading it: {}", crate::error::io_words(&e)))?;
        let range = format!("{}-{}", sent, sent + want as u64 - 1);
        let failure = match session
            .send(Call {
                content_type: Some("application/octet-stream"),
                body: Some(&buf[..want]),
                small: false,
                ..Call::new(reqwest::Method::PATCH, &at)
            })
            .await
        {
            Ok(resp) if resp.status() == reqwest::StatusCode::ACCEPTED => {
                at = location(session, &resp)?;
                sent += want as u64;
                tries = 0;
                continue;
            }
            Ok(resp) => format!("sending bytes {range}: {}", status_error(resp).await),
            Err(e) => format!("sending bytes {range}: {e}"),
        };
        // Go on from where the upload stands; one the registry no longer
        // knows starts over. Failures in a row without progress end it.
        tries += 1;
        match after_failure(session, &at, blob.size).await {
            Stands::Unreachable => return Err(failure),
            _ if tries > RETRY_WAITS.len() => return Err(failure),
            Stands::At(next, have) => {
                if have > sent {
                    tries = 0;
                }
                (at, sent) = (next, have);
            }
            Stands::Lost => (at, sent) = (start_upload(session).await?, 0),
        }
    }
    let mut close = reqwest::Url::parse(&at).map_err(|e| e.to_string())?;
    close.query_pairs_mut().append_pair("digest", &blob.digest);
    let resp = session
        .send(Call::new(reqwest::Method::PUT, close.as_str()))
        .await?;
    if resp.status() != reqwest::StatusCode::CREATED {
        return Err(format!("closing the upload: {}", status_error(resp).await));
    }
    if let Some((dir, key)) = &kept {
        forget_upload(dir, key);
    }
    Ok(skipped)
}
