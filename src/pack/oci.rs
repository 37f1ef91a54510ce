//! OCI images as pack sources: an image layout on disk (`oci:DIR[:TAG]`,
//! as skopeo and umoci write it). The manifest, config and layer blobs are
//! read through [`Verified`], which checks each blob's size and sha256 as it
//! streams; a mismatch fails the pack before anything is renamed into place.
//! Layers are tar, tar+gzip or tar+zstd (by media type; an unnamed type
//! is sniffed: also xz or bzip2).

use super::compression::StreamCompression;
use super::tarsrc::{TarTree, Whiteouts};
use super::{PackError, PackOptions};
use crate::oci_spec::{index_choice, is_index, MAX_INDEX_DEPTH};
pub use crate::oci_spec::{Descriptor, RegistryAccess};
use crate::pack::scan::Tree;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest manifest, index or config blob read (they are JSON held in memory).
pub(super) const MAX_JSON_BLOB: u64 = 16 << 20;

/// A reader that hashes and counts what passes through it; [`Verified::finish`]
/// reads to the end and checks the blob's size and digest.
pub struct Verified<R: Read> {
    inner: R,
    hasher: Sha256,
    read: u64,
    want: Descriptor,
}

impl<R: Read> Verified<R> {
    pub(crate) fn new(inner: R, want: Descriptor) -> Self {
        Verified {
            inner,
            hasher: Sha256::new(),
            read: 0,
            want,
        }
    }

    /// Drains what is left and checks size and digest.
    pub fn finish(mut self) -> io::Result<()> {
        io::copy(&mut self, &mut io::sink())?;
        if self.read != self.want.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} has {} bytes, its descriptor says {}",
                    self.want.digest, self.read, self.want.size
                ),
            ));
        }
        let got = hex::encode(self.hasher.finalize());
        if got != self.want.hex() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} does not match its digest (its content hashes to sha256:{got})",
                    self.want.digest
                ),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.want.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "blob {} is longer than its descriptor's {} bytes",
                    self.want.digest, self.want.size
                ),
            ));
        }
        Ok(n)
    }
}

/// A layer's compression from its media type; `None` for a type that
/// does not say (the first bytes are sniffed then).
fn layer_compression(media_type: &str) -> Option<StreamCompression> {
    let t = media_type;
    if t.ends_with("+gzip") || t.ends_with(".tar.gzip") || t.ends_with(".tar.gz") {
        Some(StreamCompression::Gzip)
    } else if t.ends_with("+zstd") || t.ends_with(".tar.zstd") {
        Some(StreamCompression::Zstd)
    } else if t.ends_with(".tar") || t.ends_with(".layer.v1.tar") {
        Some(StreamCompression::None)
    } else {
        None
    }
}

/// An image resolved from a layout: its config and layers (bottom first).
#[derive(Debug)]
pub struct OciImage {
    /// The image manifest's descriptor.
    pub manifest: Descriptor,
    /// The config blob as stored (JSON: entrypoint, env, labels, history).
    pub config: Vec<u8>,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
    blobs: PathBuf,
    /// What the image was called on the command line, for messages.
    pub name: String,
    /// A pulled image's temporary layout, removed when the image is dropped.
    _pulled: Option<RemoveOnDrop>,
}

/// A directory removed, with what it holds, when dropped.
#[derive(Debug)]
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn json_err(path: &Path, what: impl std::fmt::Display) -> PackError {
    PackError::Entry {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

impl OciImage {
    /// Resolves `tag` (or the layout's only image) in the layout at `dir`:
    /// index.json, nested indexes by platform (linux and this machine's
    /// architecture), the manifest and the config, each blob verified.
    pub fn open_layout(dir: &Path, tag: Option<&str>) -> Result<Self, PackError> {
        let index_path = dir.join("index.json");
        let text = std::fs::read(&index_path)
            .map_err(|e| PackError::io(&index_path, "read the OCI layout's index", e))?;
        let index: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| json_err(&index_path, format!("not JSON: {e}")))?;
        let manifests = index["manifests"]
            .as_array()
            .ok_or_else(|| json_err(&index_path, "has no manifests list"))?;
        let ref_name = |m: &serde_json::Value| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .map(str::to_string)
        };
        let chosen = match tag {
            Some(t) => manifests
                .iter()
                .find(|m| ref_name(m).as_deref() == Some(t))
                .ok_or_else(|| {
                    let tags: Vec<String> = manifests.iter().filter_map(ref_name).collect();
                    json_err(
                        &index_path,
                        format!("has no image tagged {t:?} (tags: {})", tags.join(", ")),
                    )
                })?,
            None if manifests.len() == 1 => &manifests[0],
            None => {
                let tags: Vec<String> = manifests.iter().filter_map(ref_name).collect();
                return Err(json_err(
                    &index_path,
                    format!(
                        "holds {} images: name one as oci:DIR:TAG (tags: {})",
                        manifests.len(),
                        tags.join(", ")
                    ),
                ));
            }
        };
        let blobs = dir.join("blobs");
        let mut desc = Descriptor::from_json(chosen, "the index's manifest")
            .map_err(|e| json_err(&index_path, e))?;
        let name = match tag {
            Some(t) => format!("oci:{}:{t}", dir.display()),
            None => format!("oci:{}", dir.display()),
        };
        // Nested indexes (multi-platform images): pick this machine's.
        let mut depth = 0;
        loop {
            let bytes = read_json_blob(&blobs, &desc)?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| json_err(&blob_path(&blobs, &desc), format!("not JSON: {e}")))?;
            if !is_index(&desc.media_type, &v) {
                break;
            }
            depth += 1;
            if depth > MAX_INDEX_DEPTH {
                return Err(json_err(
                    &blob_path(&blobs, &desc),
                    "indexes nested too deep",
                ));
            }
            let pick = index_choice(&v).map_err(|e| json_err(&blob_path(&blobs, &desc), e))?;
            desc = Descriptor::from_json(pick, "the nested index's manifest")
                .map_err(|e| json_err(&blob_path(&blobs, &desc), e))?;
        }
        let manifest_bytes = read_json_blob(&blobs, &desc)?;
        let mpath = blob_path(&blobs, &desc);
        let m: serde_json::Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| json_err(&mpath, format!("not JSON: {e}")))?;
        let config_desc = Descriptor::from_json(&m["config"], "the manifest's config")
            .map_err(|e| json_err(&mpath, e))?;
        let layers = m["layers"]
            .as_array()
            .ok_or_else(|| json_err(&mpath, "has no layers list"))?
            .iter()
            .enumerate()
            .map(|(i, l)| Descriptor::from_json(l, &format!("layer {i}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| json_err(&mpath, e))?;
        let config = read_json_blob(&blobs, &config_desc)?;
        Ok(OciImage {
            manifest: desc,
            config,
            layers,
            blobs,
            name,
            _pulled: None,
        })
    }

    /// Reads layer `desc` into `tree` (as the next layer up), its blob
    /// verified to the last byte.
    pub fn read_layer(
        &self,
        desc: &Descriptor,
        tree: &mut TarTree<'_>,
        mode: Whiteouts,
    ) -> Result<(), PackError> {
        let path = blob_path(&self.blobs, desc);
        let f = File::open(&path).map_err(|e| PackError::io(&path, "open layer blob", e))?;
        let mut raw = Verified::new(BufReader::with_capacity(1 << 20, f), desc.clone());
        let kind = match layer_compression(&desc.media_type) {
            Some(k) => k,
            None => {
                let mut head = [0u8; 6];
                let n = peek(&mut raw, &mut head).map_err(|e| PackError::io(&path, "read", e))?;
                StreamCompression::sniff(&head[..n])
            }
        };
        let err = |e| PackError::io(&path, "read layer blob", e);
        let read = (|| {
            let mut dec = kind.decoder(&mut raw).map_err(err)?;
            let mut dec = BufReader::with_capacity(1 << 16, &mut dec);
            tree.add_layer(&mut dec, &path, mode)?;
            io::copy(&mut dec, &mut io::sink()).map_err(err)?;
            Ok(())
        })();
        // Whatever went wrong reading, a blob that does not match its digest
        // is the cause worth naming; nothing is written either way.
        match (raw.finish(), read) {
            (Err(e), _) => Err(err(e)),
            (Ok(()), r) => r,
        }
    }

    /// The layers flattened into one tree, whiteouts applied, as `umoci
    /// unpack` makes the rootfs.
    pub fn flatten(
        &self,
        spool: &Path,
        image: &Path,
        opts: &PackOptions,
    ) -> Result<Tree, PackError> {
        self.tree_of(&self.layers, Whiteouts::Apply, spool, image, opts)
    }

    /// `layers` (bottom first) read into one tree, whiteouts as `mode` says.
    fn tree_of(
        &self,
        layers: &[Descriptor],
        mode: Whiteouts,
        spool: &Path,
        image: &Path,
        opts: &PackOptions,
    ) -> Result<Tree, PackError> {
        let mut t = TarTree::new(spool, image, opts)?;
        for l in layers {
            self.read_layer(l, &mut t, mode)?;
        }
        t.finish()
    }
}

impl OciImage {
    /// Opens `oci:DIR[:TAG]`, or pulls `docker://...` (see
    /// `pack::registry`) into a temporary layout named after `target`,
    /// beside it.
    pub fn open(
        named: &crate::open::Named,
        remote: &RegistryAccess,
        target: &Path,
    ) -> Result<Self, PackError> {
        use crate::open::Named;
        match named {
            Named::OciLayout { dir, tag } => Self::open_layout(dir, tag.as_deref()),
            Named::Docker(reference) => Self::pull(reference, remote, target),
            other => Err(PackError::Usage(format!(
                "{} is not oci:DIR[:TAG] or docker://HOST/REPO[:TAG|@DIGEST]",
                other.shown()
            ))),
        }
    }

    #[cfg(feature = "registry")]
    fn pull(reference: &str, remote: &RegistryAccess, target: &Path) -> Result<Self, PackError> {
        let abs = std::path::absolute(target).map_err(|e| PackError::io(target, "resolve", e))?;
        let name = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = super::temp_name(abs.parent().unwrap_or(Path::new(".")), &name, "pull");
        let guard = RemoveOnDrop(dir.clone());
        crate::registry::pull(reference, remote, &dir)?;
        let mut img = Self::open_layout(&dir, None)?;
        img.name = reference.to_string();
        img._pulled = Some(guard);
        Ok(img)
    }

    #[cfg(not(feature = "registry"))]
    fn pull(reference: &str, _: &RegistryAccess, _: &Path) -> Result<Self, PackError> {
        Err(PackError::Usage(format!(
            "{reference}: this sqfuse was built without registry support (cargo feature \"registry\")"
        )))
    }

    /// One layer as an image's tree: whiteouts in overlayfs form, so the
    /// layer images stack under sqfuse or the kernel's overlayfs.
    pub fn layer_tree(
        &self,
        layer: &Descriptor,
        spool: &Path,
        image: &Path,
        opts: &PackOptions,
    ) -> Result<Tree, PackError> {
        let one = std::slice::from_ref(layer);
        self.tree_of(one, Whiteouts::ToOverlay, spool, image, opts)
    }
}

/// Where the config of a flattened IMAGE goes: `IMAGE.config.json`.
pub fn config_path(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".config.json");
    PathBuf::from(s)
}

/// Fails, before any work, where `path` exists and `force` was not given.
pub fn refuse_existing(path: &Path, force: bool) -> Result<(), PackError> {
    if !force && path.symlink_metadata().is_ok() {
        return Err(PackError::Exists(path.to_path_buf()));
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it there.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".sqfuse-{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(|e| PackError::io(path, "write", e))
}

/// The images `--layers` makes: one per distinct layer, named by digest.
pub struct LayerPlan {
    outdir: PathBuf,
    /// Bottom first, as the manifest lists them.
    files: Vec<(Descriptor, PathBuf)>,
}

impl LayerPlan {
    /// Checks OUTDIR (made if missing) and that nothing would be overwritten
    /// without `force`.
    pub fn new(img: &OciImage, outdir: &Path, force: bool) -> Result<Self, PackError> {
        std::fs::create_dir_all(outdir).map_err(|e| PackError::io(outdir, "create", e))?;
        let files: Vec<_> = img
            .layers
            .iter()
            .map(|l| (l.clone(), outdir.join(format!("{}.sqfs", l.hex()))))
            .collect();
        for (_, f) in &files {
            refuse_existing(f, force)?;
        }
        for f in ["config.json", "layers.txt"] {
            refuse_existing(&outdir.join(f), force)?;
        }
        Ok(LayerPlan {
            outdir: outdir.to_path_buf(),
            files,
        })
    }

    /// Each distinct layer once, with the image to pack it into.
    pub fn to_pack(&self) -> Vec<(&Descriptor, &Path)> {
        let mut seen = std::collections::HashSet::new();
        self.files
            .iter()
            .filter(|(d, _)| seen.insert(d.digest.clone()))
            .map(|(d, f)| (d, f.as_path()))
            .collect()
    }

    /// The layer images, top first: the order a layered mount takes them.
    pub fn top_first(&self) -> Vec<&Path> {
        self.files.iter().rev().map(|(_, f)| f.as_path()).collect()
    }

    /// Writes `config.json` and `layers.txt` (the image files, top first).
    pub fn finish(&self, img: &OciImage) -> Result<(), PackError> {
        write_atomically(&self.outdir.join("config.json"), &img.config)?;
        let mut list = String::new();
        for f in self.top_first() {
            list.push_str(&f.file_name().unwrap_or_default().to_string_lossy());
            list.push('\n');
        }
        write_atomically(&self.outdir.join("layers.txt"), list.as_bytes())
    }
}

/// Copies the first bytes of the blob into `buf` without consuming them
/// (they stay in the buffer, to be hashed when read). Returns how many.
fn peek<R: Read>(raw: &mut Verified<BufReader<R>>, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::BufRead;
    let avail = raw.inner.fill_buf()?;
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    Ok(n)
}

fn blob_path(blobs: &Path, d: &Descriptor) -> PathBuf {
    blobs.join("sha256").join(d.hex())
}

/// A small JSON blob, verified.
fn read_json_blob(blobs: &Path, d: &Descriptor) -> Result<Vec<u8>, PackError> {
    let path = blob_path(blobs, d);
    if d.size > MAX_JSON_BLOB {
        return Err(json_err(
            &path,
            format!(
                "is {} bytes; a manifest or config is at most {MAX_JSON_BLOB}",
                d.size
            ),
        ));
    }
    let f = File::open(&path).map_err(|e| PackError::io(&path, "open blob", e))?;
    let mut v = Verified::new(f, d.clone());
    let mut out = Vec::new();
    (&mut v)
        .take(MAX_JSON_BLOB + 1)
        .read_to_end(&mut out)
        .map_err(|e| PackError::io(&path, "read blob", e))?;
    v.finish()
        .map_err(|e| PackError::io(&path, "read blob", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_spec::check_digest;

    #[test]
    fn digests_are_checked_before_they_name_files() {
        assert!(check_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(check_digest("sha256:../../etc/passwd").is_err());
        assert!(check_digest(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(check_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn verified_reader_catches_size_and_content() {
        let data = b"hello".to_vec();
        let good = Descriptor {
            media_type: String::new(),
            digest: format!("sha256:{}", hex::encode(Sha256::digest(&data))),
            size: 5,
        };
        assert!(Verified::new(&data[..], good.clone()).finish().is_ok());
        let short = Descriptor {
            size: 6,
            ..good.clone()
        };
        assert!(Verified::new(&data[..], short).finish().is_err());
        let long = Descriptor {
            size: 4,
            ..good.clone()
        };
        assert!(Verified::new(&data[..], long).finish().is_err());
        assert!(Verified::new(&b"hellO"[..], good).finish().is_err());
    }
}
