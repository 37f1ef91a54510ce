//! Images read over the network: `http://`, `https://` and `s3://BUCKET/KEY`.
//! A [`ByteSource`] that fetches the ranges the reader asks for, in aligned
//! chunks kept in memory and in a persistent on-disk cache shared by every
//! process on the machine. Behind the `remote` cargo feature; without it a
//! URL is a one-line error.

#[cfg(feature = "remote")]
pub(crate) mod cache;
#[cfg(feature = "remote")]
mod capped;
#[cfg(feature = "remote")]
mod source;
#[cfg(feature = "remote")]
mod store;

use crate::error::{Error, Result};
use crate::format::ByteSource;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Fetch and cache granule: ranges are rounded out to it, and each cached
/// chunk is one file.
pub const CHUNK: u64 = 256 << 10;

/// How remote images are fetched and cached.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The persistent chunk cache's directory; `None`: memory only.
    pub cache_dir: Option<PathBuf>,
    /// Bytes the cache directory may hold before the least recently used
    /// chunks are evicted.
    pub cache_size: u64,
    /// Extra PEM certificates to trust (a private CA, a test server).
    pub ca_file: Option<PathBuf>,
    /// Log each range request on stderr (`-d`).
    pub log_requests: bool,
    /// How long a failing request is retried (with backoff) before the
    /// read fails with EIO.
    pub retry_timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            cache_dir: default_cache_dir(),
            cache_size: 10 << 30,
            ca_file: None,
            log_requests: false,
            retry_timeout: Duration::from_secs(30),
        }
    }
}

/// `$XDG_CACHE_HOME/sqfuse`, else `~/.cache/sqfuse`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .map(|d| d.join("sqfuse"))
}

/// One change to [`RemoteOptions`], made from text once where the text
/// comes in (a mount option, a flag, an environment variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSetting {
    /// The chunk cache's directory; `None`: memory only.
    CacheDir(Option<PathBuf>),
    /// The bound on the cache directory, in bytes.
    CacheSize(u64),
    /// Extra PEM certificates to trust.
    CaFile(PathBuf),
    /// How long a failing request is retried.
    RetryTimeout(Duration),
}

impl RemoteSetting {
    /// A cache directory as written: a path, or `none` for no disk cache.
    pub fn cache_dir(text: &str) -> Self {
        RemoteSetting::CacheDir((text != "none").then(|| PathBuf::from(text)))
    }

    /// A cache bound as written: bytes, or a number with K, M or G. The
    /// error says what is wrong; the caller names the setting and value.
    pub fn cache_size(text: &str) -> Result<Self> {
        crate::size::parse_size(text)
            .map(RemoteSetting::CacheSize)
            .map_err(|_| Error::invalid("not a size (bytes, or a number with K, M or G)"))
    }

    /// A retry timeout as written: whole seconds.
    pub fn retry_timeout(text: &str) -> Result<Self> {
        text.parse()
            .map(|s| RemoteSetting::RetryTimeout(Duration::from_secs(s)))
            .map_err(|_| Error::invalid("not a number of seconds"))
    }
}

impl RemoteOptions {
    /// The defaults, overridden by `SQFUSE_CACHE_DIR` (`none` for no disk
    /// cache), `SQFUSE_CACHE_SIZE` (bytes, or with K/M/G),
    /// `SQFUSE_CA_FILE` and `SQFUSE_RETRY_TIMEOUT` (seconds).
    pub fn from_env() -> Result<Self> {
        let mut o = RemoteOptions::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        fn named<'a>(k: &'a str, v: &'a str) -> impl Fn(Error) -> Error + 'a {
            move |e| Error::invalid(format!("{k}={v}: {}", e.what))
        }
        if let Some(d) = var("SQFUSE_CACHE_DIR") {
            o.apply(RemoteSetting::cache_dir(&d));
        }
        if let Some(s) = var("SQFUSE_CACHE_SIZE") {
            o.apply(RemoteSetting::cache_size(&s).map_err(named("SQFUSE_CACHE_SIZE", &s))?);
        }
        if let Some(f) = var("SQFUSE_CA_FILE") {
            o.apply(RemoteSetting::CaFile(f.into()));
        }
        if let Some(t) = var("SQFUSE_RETRY_TIMEOUT") {
            o.apply(RemoteSetting::retry_timeout(&t).map_err(named("SQFUSE_RETRY_TIMEOUT", &t))?);
        }
        Ok(o)
    }

    /// Makes one change.
    pub fn apply(&mut self, setting: RemoteSetting) {
        match setting {
            RemoteSetting::CacheDir(d) => self.cache_dir = d,
            RemoteSetting::CacheSize(n) => self.cache_size = n,
            RemoteSetting::CaFile(f) => self.ca_file = Some(f),
            RemoteSetting::RetryTimeout(t) => self.retry_timeout = t,
        }
    }
}

/// What a remote source has done, for `info` and the mount's statistics.
#[derive(Default, Debug)]
pub struct RemoteStats {
    /// Range requests sent (each may carry several chunks).
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes_fetched: AtomicU64,
    /// Chunks served from memory and from the disk cache.
    pub memory_hits: AtomicU64,
    /// Chunks served from the disk cache.
    pub disk_hits: AtomicU64,
    /// Chunks fetched from the server.
    pub chunks_fetched: AtomicU64,
    /// Reads that failed (after retries) and were reported as errors.
    pub failed_reads: AtomicU64,
}

impl RemoteStats {
    #[cfg(feature = "remote")]
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now, as plain numbers.
    pub fn counts(&self) -> RemoteCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemoteCounts {
            requests: g(&self.requests),
            bytes_fetched: g(&self.bytes_fetched),
            chunks_fetched: g(&self.chunks_fetched),
            memory_hits: g(&self.memory_hits),
            disk_hits: g(&self.disk_hits),
            failed_reads: g(&self.failed_reads),
        }
    }

    /// One line, `key=value` pairs.
    pub fn summary(&self) -> String {
        let c = self.counts();
        format!(
            "requests={} bytes_fetched={} chunks_fetched={} memory_hits={} disk_hits={} failed_reads={}",
            c.requests, c.bytes_fetched, c.chunks_fetched, c.memory_hits, c.disk_hits, c.failed_reads
        )
    }

    /// The counters as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let c = self.counts();
        serde_json::json!({
            "requests": c.requests,
            "bytes_fetched": c.bytes_fetched,
            "chunks_fetched": c.chunks_fetched,
            "memory_hits": c.memory_hits,
            "disk_hits": c.disk_hits,
            "failed_reads": c.failed_reads,
        })
    }
}

/// A snapshot of [`RemoteStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteCounts {
    /// Range requests sent.
    pub requests: u64,
    /// Body bytes received.
    pub bytes_fetched: u64,
    /// Chunks fetched.
    pub chunks_fetched: u64,
    /// Chunks served from memory.
    pub memory_hits: u64,
    /// Chunks served from the disk cache.
    pub disk_hits: u64,
    /// Reads that failed after retries.
    pub failed_reads: u64,
}

/// Whether an IMAGE argument names a URL rather than a file.
pub fn is_remote(image: &Path) -> bool {
    // Compared as bytes: the argument is anyone's text, and a prefix cut by
    // length may end inside a multi-byte character.
    let s = image.as_os_str().as_encoded_bytes();
    ["http://", "https://", "s3://", "s3a://"]
        .iter()
        .any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// How an IMAGE is named in messages and /proc/mounts: a URL without its
/// password (and query, which may carry a signature).
pub fn shown_name(image: &Path) -> String {
    let s = image.to_string_lossy();
    if is_remote(image) {
        redact(&s)
    } else {
        s.into_owned()
    }
}

/// `text` with every `scheme://user:password@` reduced to `scheme://user@`
/// and every URL query cut: errors from lower layers quote URLs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')')
            .unwrap_or(rest.len());
        let (url, tail) = rest.split_at(end);
        let host_end = url.find('/').unwrap_or(url.len());
        let (authority, path) = url.split_at(host_end);
        match authority.rfind('@') {
            Some(at) => {
                let user = authority[..at].split(':').next().unwrap_or("");
                out.push_str(user);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        out.push_str(path.split('?').next().unwrap_or(path));
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(feature = "remote")]
fn shown_url(url: &url::Url) -> String {
    redact(url.as_str())
}

/// Opens the image at `url`: the byte source and its statistics.
#[cfg(feature = "remote")]
pub fn open(url: &str, opts: &RemoteOptions) -> Result<(Box<dyn ByteSource>, Arc<RemoteStats>)> {
    let src = source::RemoteSource::open(url, opts.clone())?;
    let stats = src.stats();
    Ok((Box::new(src), stats))
}

/// Without the `remote` feature: a one-line error saying so.
#[cfg(not(feature = "remote"))]
pub fn open(url: &str, _opts: &RemoteOptions) -> Result<(Box<dyn ByteSource>, Arc<RemoteStats>)> {
    Err(Error::unsupported(
        None,
        format!(
            "{}: this sqfuse was built without the `remote` feature",
            redact(url)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        for u in ["http://h/x", "HTTPS://h/x", "s3://b/k", "s3a://b/k"] {
            assert!(is_remote(Path::new(u)), "{u}");
        }
        for p in [
            "img.sqfs",
            "/tmp/http://x",
            "http:/x",
            "s3://",
            "./s3://b/k",
        ] {
            assert!(!is_remote(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn credentials_never_shown() {
        assert_eq!(
            redact("GET https://alice:s3cret@example.com/a.sqfs?sig=XYZ failed"),
            "GET https://alice@example.com/a.sqfs failed"
        );
        assert_eq!(
            shown_name(Path::new("http://u:p@h:8080/x")),
            "http://u@h:8080/x"
        );
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("s3://bucket/key"), "s3://bucket/key");
    }

    #[test]
    fn remote_settings_parse() {
        let mut o = RemoteOptions::default();
        o.apply(RemoteSetting::cache_size("2G").unwrap());
        assert_eq!(o.cache_size, 2 << 30);
        o.apply(RemoteSetting::cache_dir("none"));
        assert_eq!(o.cache_dir, None);
        o.apply(RemoteSetting::retry_timeout("3").unwrap());
        assert_eq!(o.retry_timeout, Duration::from_secs(3));
        assert!(RemoteSetting::cache_size("lots").is_err());
        assert!(RemoteSetting::cache_size("99999999999G").is_err());
        assert!(RemoteSetting::retry_timeout("soon").is_err());
    }
}
