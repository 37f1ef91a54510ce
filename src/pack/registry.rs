//! `docker://` pack sources: an image pulled from a registry into an OCI
//! layout in a temporary directory, then read like `oci:` (so every blob is
//! verified twice: by oci-client as it downloads, by [`super::oci`] as the
//! layers stream into the tree). The distribution protocol, token auth and
//! redirects are oci-client's; this module only chooses and stores.

use super::oci::{check_digest, pick_platform, INDEX_TYPES, MAX_JSON_BLOB};
use super::PackError;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

/// How to reach the registry.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    /// Plain HTTP (a local registry).
    pub insecure: bool,
    /// `USER:PASSWORD` for basic auth (or a token service that takes it);
    /// anonymous (with anonymous tokens) without.
    pub creds: Option<String>,
}

const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn remote_err(reference: &str, what: impl std::fmt::Display) -> PackError {
    PackError::Entry {
        path: PathBuf::from(reference),
        what: what.to_string(),
    }
}

/// Pulls `docker://...` into an OCI layout at `dir` (created): its manifest
/// (this machine's platform from an index), config and layers, with an
/// index.json naming the manifest.
pub fn pull(reference: &str, remote: &Remote, dir: &Path) -> Result<(), PackError> {
    let rest = reference
        .strip_prefix("docker://")
        .ok_or_else(|| remote_err(reference, "is not docker://HOST/REPO[:TAG|@DIGEST]"))?;
    let image: Reference = rest
        .parse()
        .map_err(|e| remote_err(reference, format!("is not an image reference: {e}")))?;
    let auth = match &remote.creds {
        None => RegistryAuth::Anonymous,
        Some(c) => {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            RegistryAuth::Basic(u.to_string(), p.to_string())
        }
    };
    let client = Client::new(ClientConfig {
        protocol: if remote.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(300)),
        ..Default::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PackError::io(dir, "start the registry client", e))?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| PackError::io(&blobs, "create", e))?;
    rt.block_on(async {
        // The manifest: through at most a few nested indexes.
        let mut at = image.clone();
        let mut found = None;
        for _ in 0..4 {
            let (bytes, _) = client
                .pull_manifest_raw(&at, &auth, &MANIFEST_TYPES)
                .await
                .map_err(|e| {
                    remote_err(
                        reference,
                        format!("manifest {}: {}", at.whole(), crate::error::chain(&e)),
                    )
                })?;
            if bytes.len() as u64 > MAX_JSON_BLOB {
                return Err(remote_err(reference, "manifest larger than 16 MiB"));
            }
            let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            if let Some(want) = at.digest() {
                if want != digest {
                    return Err(remote_err(
                        reference,
                        format!("manifest {want} hashes to {digest}"),
                    ));
                }
            }
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| remote_err(reference, format!("manifest is not JSON: {e}")))?;
            let media = v["mediaType"].as_str().unwrap_or_default().to_string();
            if INDEX_TYPES.contains(&media.as_str()) || v["manifests"].is_array() {
                let list = v["manifests"].as_array().cloned().unwrap_or_default();
                let pick = pick_platform(&list).ok_or_else(|| {
                    remote_err(reference, "has no image for this machine's platform")
                })?;
                let d = pick["digest"].as_str().unwrap_or_default();
                check_digest(d).map_err(|e| remote_err(reference, e))?;
                at = at.clone_with_digest(d.to_string());
                continue;
            }
            found = Some((bytes, digest, media, v));
            break;
        }
        let (bytes, digest, media, manifest) =
            found.ok_or_else(|| remote_err(reference, "indexes nested too deep"))?;
        let media = if media.is_empty() {
            MANIFEST_TYPES[0].to_string()
        } else {
            media
        };
        std::fs::write(blobs.join(&digest["sha256:".len()..]), &bytes)
            .map_err(|e| PackError::io(&blobs, "write", e))?;
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
            let file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| PackError::io(&path, "create", e))?;
            let out = Capped {
                inner: file,
                left: size,
            };
            client.pull_blob(&at, digest, out).await.map_err(|e| {
                remote_err(
                    reference,
                    format!("blob {digest}: {}", crate::error::chain(&e)),
                )
            })?;
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
            .map_err(|e| PackError::io(dir, "write index.json", e))?;
        Ok(())
    })
}

/// A writer that refuses more than `left` bytes: a server sending an
/// endless blob fills no disk.
struct Capped<W> {
    inner: W,
    left: u64,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.len() as u64 > self.left {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "blob is longer than its descriptor's size",
            )));
        }
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = p {
            self.left -= n as u64;
        }
        p
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
