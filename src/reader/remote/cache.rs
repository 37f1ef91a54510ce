//! The persistent chunk cache, shared by every sqfuse process of a user:
//!
//! ```text
//! ROOT/index/<sha256(url)>.json        size and validator last seen for a URL
//! ROOT/objects/<sha256(url, validator, size)>/<chunk number, hex>
//! ```
//!
//! One object version per directory, so a changed object (new ETag or
//! Last-Modified) never reads the old version's chunks. Chunks are written
//! to a temporary name and renamed: a reader sees a whole chunk or none,
//! whatever other processes do. Eviction removes the least recently used
//! chunks (by mtime, refreshed on use) until the cache is under 90% of its
//! limit.
//!
//! The cache holds blocks of images that may be private (read with
//! credentials) and its blocks are served as the image's: ROOT is the
//! user's alone (created 0700, files 0600), and a ROOT that another user
//! owns or may write is refused rather than trusted.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// What identifies one version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub size: u64,
    pub etag: Option<String>,
    /// Last-Modified, seconds since the epoch.
    pub modified: i64,
}

pub(crate) struct DiskCache {
    root: PathBuf,
    dir: PathBuf,
    limit: u64,
    /// Bytes in ROOT/objects, counted at open and kept up to date by this
    /// process (other processes' writes are found by the next eviction).
    used: AtomicU64,
    evicting: parking_lot::Mutex<()>,
}

fn hex_sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// A directory of the cache, made private.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A file of the cache, readable by its owner only.
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Makes ROOT (0700) if missing, and checks one that exists: a directory
/// this user owns that no one else may write. One only others may read (an
/// older sqfuse made it 0755) is made 0700.
pub(crate) fn prepare_root(root: &Path) -> Result<()> {
    let shown = root.display();
    private_dir(root).map_err(io(format!("cannot create cache directory {shown}")))?;
    let meta = fs::metadata(root).map_err(io(format!("cache directory {shown}")))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "cache directory {shown} is not a directory"
        )));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Error::invalid(format!(
            "cache directory {shown} belongs to uid {}, not to you (uid {me}): use a cache of your own or cache_dir=none",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::invalid(format!(
            "cache directory {shown} may be written by other users (mode {mode:04o}): make it private (chmod 700) or use cache_dir=none"
        )));
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot make cache directory {shown} private")))?;
    }
    Ok(())
}

impl DiskCache {
    pub fn open(root: &Path, url: &str, v: &Version, limit: u64) -> Result<DiskCache> {
        let key = hex_sha(&[
            url.as_bytes(),
            v.etag.as_deref().unwrap_or("").as_bytes(),
            &v.modified.to_le_bytes(),
            &v.size.to_le_bytes(),
        ]);
        let dir = root.join("objects").join(key);
        private_dir(&dir).map_err(io(format!("cannot create cache {}", dir.display())))?;
        let cache = DiskCache {
            root: root.to_path_buf(),
            dir,
            limit,
            used: AtomicU64::new(0),
            evicting: parking_lot::Mutex::new(()),
        };
        cache
            .used
            .store(cache.scan().iter().map(|c| c.1).sum(), Ordering::Relaxed);
        Ok(cache)
    }

    fn chunk_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{n:08x}"))
    }

    /// Chunk `n` if cached whole (`len` bytes); a chunk of another length
    /// (a different object, a damaged cache) is removed and missed.
    pub fn get(&self, n: u64, len: usize) -> Option<Vec<u8>> {
        let path = self.chunk_path(n);
        let file = fs::File::open(&path).ok()?;
        let meta = file.metadata().ok()?;
        if meta.len() != len as u64 {
            let _ = fs::remove_file(&path);
            return None;
        }
        let mut buf = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 0).ok()?;
        // Recently used: refresh the mtime, at most once a minute per chunk.
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age > Duration::from_secs(60));
        if stale {
            let _ = file.set_modified(SystemTime::now());
        }
        Some(buf)
    }

    pub fn contains(&self, n: u64) -> bool {
        self.chunk_path(n).exists()
    }

    /// Stores chunk `n`; failures (a full disk) only cost the cache.
    pub fn put(&self, n: u64, data: &[u8]) {
        let path = self.chunk_path(n);
        let tmp = self
            .dir
            .join(format!(".tmp.{}.{n:08x}.{}", std::process::id(), nonce()));
        let written = private_file(&tmp)
            .and_then(|mut f| f.write_all(data))
            .and_then(|_| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        let used = self.used.fetch_add(data.len() as u64, Ordering::Relaxed) + data.len() as u64;
        if used > self.limit {
            self.evict();
        }
    }

    /// Every chunk under ROOT/objects: path, size, mtime. Leftover
    /// temporary files older than an hour (a killed writer) are removed.
    fn scan(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        let Ok(objects) = fs::read_dir(self.root.join("objects")) else {
            return out;
        };
        for obj in objects.flatten() {
            let Ok(chunks) = fs::read_dir(obj.path()) else {
                continue;
            };
            for c in chunks.flatten() {
                let Ok(meta) = c.metadata() else { continue };
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                if c.file_name().to_string_lossy().starts_with(".tmp.") {
                    if mtime.elapsed().is_ok_and(|a| a > Duration::from_secs(3600)) {
                        let _ = fs::remove_file(c.path());
                    }
                    continue;
                }
                if meta.is_file() {
                    out.push((c.path(), meta.len(), mtime));
                }
            }
        }
        out
    }

    fn evict(&self) {
        let Some(_one) = self.evicting.try_lock() else {
            return;
        };
        let mut chunks = self.scan();
        let mut total: u64 = chunks.iter().map(|c| c.1).sum();
        let target = self.limit / 10 * 9;
        chunks.sort_by_key(|c| c.2);
        for (path, len, _) in chunks {
            if total <= target {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        self.used.store(total, Ordering::Relaxed);
    }
}

fn nonce() -> u64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}

fn index_path(root: &Path, url: &str) -> PathBuf {
    root.join("index")
        .join(format!("{}.json", hex_sha(&[url.as_bytes()])))
}

#[cfg(feature = "registry")]
fn document_path(root: &Path, key: &str) -> PathBuf {
    root.join("index")
        .join(format!("{}.doc", hex_sha(&[key.as_bytes()])))
}

/// A small document kept under `key` (a registry manifest by reference),
/// if the cache has one.
#[cfg(feature = "registry")]
pub(crate) fn load_document(root: &Path, key: &str) -> Option<Vec<u8>> {
    fs::read(document_path(root, key)).ok()
}

/// Keeps `bytes` under `key` (written by rename; failures only cost the
/// cache).
#[cfg(feature = "registry")]
pub(crate) fn save_document(root: &Path, key: &str, bytes: &[u8]) {
    let path = document_path(root, key);
    if let Some(dir) = path.parent() {
        let _ = private_dir(dir);
    }
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), nonce()));
    if private_file(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|_| fs::rename(&tmp, &path))
        .is_err()
    {
        let _ = fs::remove_file(&tmp);
    }
}

/// Forgets the document kept under `key`, if any.
#[cfg(feature = "registry")]
pub(crate) fn remove_document(root: &Path, key: &str) {
    let _ = fs::remove_file(document_path(root, key));
}

/// The version of `url` last seen, if the cache has a record of it.
pub(super) fn load_version(root: &Path, url: &str) -> Option<Version> {
    let text = fs::read_to_string(index_path(root, url)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Version {
        size: v.get("size")?.as_u64()?,
        etag: v.get("etag").and_then(|e| e.as_str()).map(str::to_string),
        modified: v.get("modified")?.as_i64()?,
    })
}

/// Records the version of `url` just seen (written by rename).
pub(super) fn save_version(root: &Path, url: &str, v: &Version) {
    let path = index_path(root, url);
    if let Some(dir) = path.parent() {
        let _ = private_dir(dir);
    }
    let text = serde_json::json!({
        "url": url, "size": v.size, "etag": v.etag, "modified": v.modified,
    })
    .to_string();
    let tmp = path.with_extension(format!("tmp.{}.{}", std::process::id(), nonce()));
    if private_file(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|_| fs::rename(&tmp, &path))
        .is_err()
    {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(etag: &str) -> Version {
        Version {
            size: 1000,
            etag: Some(etag.into()),
            modified: 7,
        }
    }

    #[test]
    fn cache_is_created_private_and_a_shared_one_refused() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("new/sqfuse");
        prepare_root(&root).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        let c = DiskCache::open(&root, "http://h/x", &version("a"), 1 << 20).unwrap();
        c.put(1, b"private");
        save_version(&root, "http://h/x", &version("a"));
        assert_eq!(mode(&c.chunk_path(1)), 0o600);
        assert_eq!(mode(&c.dir), 0o700);
        assert_eq!(mode(&index_path(&root, "http://h/x")), 0o600);
        // Readable by others (made by an older version): made private.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        prepare_root(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        // Writable by others: refused, with what to do.
        for m in [0o777, 0o770, 0o1777] {
            fs::set_permissions(&root, fs::Permissions::from_mode(m)).unwrap();
            let e = prepare_root(&root).unwrap_err().to_string();
            assert!(e.contains("may be written by other users"), "{e}");
            assert!(e.contains("cache_dir=none"), "{e}");
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        // Not a directory.
        let file = top.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(prepare_root(&file).is_err());
    }

    #[test]
    fn cache_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED cache_of_another_user_is_refused: needs root to chown");
            return;
        }
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("theirs");
        private_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
        let e = prepare_root(&root).unwrap_err().to_string();
        assert!(
            e.contains("belongs to uid 65534, not to you (uid 0)"),
            "{e}"
        );
    }

    #[test]
    fn chunks_round_trip_per_version() {
        let root = tempfile::tempdir().unwrap();
        let a = DiskCache::open(root.path(), "http://h/x", &version("a"), 1 << 20).unwrap();
        a.put(3, b"hello");
        assert_eq!(a.get(3, 5).as_deref(), Some(&b"hello"[..]));
        assert_eq!(a.get(3, 6), None, "wrong length is a miss");
        assert_eq!(a.get(3, 5), None, "and was removed");
        a.put(3, b"hello");
        let b = DiskCache::open(root.path(), "http://h/x", &version("b"), 1 << 20).unwrap();
        assert_eq!(b.get(3, 5), None, "another version never sees it");
        save_version(root.path(), "http://h/x", &version("b"));
        assert_eq!(load_version(root.path(), "http://h/x"), Some(version("b")));
        assert_eq!(load_version(root.path(), "http://h/y"), None);
    }

    #[test]
    fn eviction_keeps_the_cache_under_its_limit_oldest_first() {
        let root = tempfile::tempdir().unwrap();
        let c = DiskCache::open(root.path(), "u", &version("a"), 10_000).unwrap();
        for n in 0..5 {
            c.put(n, &[n as u8; 1000]);
            let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + n);
            fs::File::options()
                .write(true)
                .open(c.chunk_path(n))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        for n in 5..12 {
            c.put(n, &[n as u8; 1000]);
        }
        let left: Vec<u64> = (0..12).filter(|&n| c.contains(n)).collect();
        let bytes: u64 = left.len() as u64 * 1000;
        assert!(bytes <= 10_000, "{left:?}");
        assert!(
            !c.contains(0) && !c.contains(1),
            "oldest went first: {left:?}"
        );
        assert!(c.contains(11), "newest stays: {left:?}");
    }
}
