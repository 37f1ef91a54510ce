//! What the OCI image and distribution specs say about content, shared by
//! the layout reader (`pack::oci`) and the registry client
//! (`registry`), neither importing the other for it: descriptors and their digests, index media types,
//! and the walk through nested indexes to this machine's manifest.

/// How to reach a registry: plain HTTP or not, and credentials.
#[derive(Clone, Debug, Default)]
pub struct RegistryAccess {
    /// Plain HTTP (a local registry).
    pub insecure: bool,
    /// `USER:PASSWORD` for basic auth (or a token service that takes it);
    /// anonymous (with anonymous tokens) without.
    pub creds: Option<String>,
}

/// Most indexes followed from the first to an image manifest (a
/// multi-platform image has one; nesting deeper is allowed, not endless).
pub(crate) const MAX_INDEX_DEPTH: usize = 8;

/// A content descriptor from a manifest or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// `sha256:` and 64 lowercase hex digits (checked when parsed).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Descriptor {
    pub(crate) fn from_json(v: &serde_json::Value, what: &str) -> Result<Self, String> {
        let digest = v["digest"]
            .as_str()
            .ok_or_else(|| format!("{what} has no digest"))?
            .to_string();
        check_digest(&digest).map_err(|e| format!("{what}: {e}"))?;
        Ok(Descriptor {
            media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
            size: v["size"]
                .as_u64()
                .ok_or_else(|| format!("{what} has no size"))?,
            digest,
        })
    }

    /// The hex part of the digest (what a blob's file is named).
    pub fn hex(&self) -> &str {
        &self.digest["sha256:".len()..]
    }
}

/// Only sha256 digests are accepted: the hex names a file, so nothing else
/// may reach a path.
pub(crate) fn check_digest(d: &str) -> Result<(), String> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {d:?} is not sha256"))?;
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!("digest {d:?} is not 64 lowercase hex digits"));
    }
    Ok(())
}

/// The entry of an index for this machine (linux and its architecture), or
/// the only entry.
fn pick_platform(list: &[serde_json::Value]) -> Option<&serde_json::Value> {
    list.iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == host_arch())
        .or_else(|| (list.len() == 1).then(|| &list[0]))
}

/// The host's architecture in OCI's spelling.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Whether a manifest-or-index document (its media type, from the
/// document or the answer's header, and its JSON) is an index.
pub(crate) fn is_index(media_type: &str, doc: &serde_json::Value) -> bool {
    INDEX_TYPES.contains(&media_type) || doc["manifests"].is_array()
}

/// The entry of index `doc` to follow: this machine's platform, or the
/// only one; the error says which platform was missing.
pub(crate) fn index_choice(doc: &serde_json::Value) -> Result<&serde_json::Value, String> {
    let list = doc["manifests"]
        .as_array()
        .map_or(&[][..], |l| l.as_slice());
    pick_platform(list).ok_or_else(|| format!("has no image for linux/{}", host_arch()))
}
