//! [`RemoteSource`]: an object read by range. Reads are rounded out to
//! [`CHUNK`]s; missing chunks are fetched in runs (adjacent chunks in one
//! request, independent runs concurrently), each request conditional on the
//! version seen at open, so old and new bytes never mix. A sequential
//! reader's runs grow (read-ahead) up to [`MAX_RUN`] chunks.

use super::cache::{self, DiskCache, Version};
use super::store::{locate, Located};
use super::{redact, shown_url, RemoteOptions, RemoteStats, CHUNK};
use crate::error::{Error, Result};
use crate::format::ByteSource;
use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use parking_lot::{Condvar, Mutex};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest run one request asks for: 8 MiB.
const MAX_RUN: u64 = 32;
/// Chunks kept in memory (16 MiB) in front of the disk cache.
const MEMORY_CHUNKS: usize = 64;

/// A runtime and the store's client, made in the process that uses them:
/// the mount opens the image, then forks, and threads do not survive a
/// fork; a child finding its parent's runtime makes its own.
struct Live {
    pid: u32,
    rt: tokio::runtime::Runtime,
    loc: Located,
}

impl Live {
    fn new(url: &url::Url, opts: &RemoteOptions, retry_for: Duration) -> Result<Live> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sqfuse-net")
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the network runtime", e))?;
        // Building the HTTP client may look at the runtime.
        let loc = {
            let _in = rt.enter();
            locate(url, opts, retry_for)?
        };
        Ok(Live {
            pid: std::process::id(),
            rt,
            loc,
        })
    }
}

pub struct RemoteSource {
    url: url::Url,
    shown: String,
    opts: RemoteOptions,
    version: Version,
    live: Mutex<Option<Arc<Live>>>,
    memory: Mutex<lru::LruCache<u64, Arc<Vec<u8>>>>,
    disk: Option<DiskCache>,
    /// Chunks some thread is fetching; `landed` wakes the threads waiting
    /// on them.
    inflight: Mutex<HashSet<u64>>,
    landed: Condvar,
    /// The chunk after the last run fetched, and how far the next
    /// sequential run reads ahead.
    next_seq: AtomicU64,
    ahead: AtomicU64,
    /// The object changed on the server: every fetch fails until reopened.
    changed: AtomicBool,
    stats: Arc<RemoteStats>,
}

impl RemoteSource {
    pub fn open(name: &str, opts: RemoteOptions) -> Result<RemoteSource> {
        let url = url::Url::parse(name)
            .map_err(|e| Error::invalid(format!("{}: not a URL: {e}", redact(name))))?;
        let shown = shown_url(&url);
        if let Some(root) = &opts.cache_dir {
            cache::prepare_root(root)?;
        }
        let recorded = opts
            .cache_dir
            .as_deref()
            .and_then(|d| cache::load_version(d, &shown));
        // With a cached copy to fall back on, an unreachable server is
        // given a few seconds, not the whole retry budget.
        let retry_for = match recorded {
            Some(_) => opts.retry_timeout.min(Duration::from_secs(3)),
            None => opts.retry_timeout,
        };
        let head = Live::new(&url, &opts, retry_for)?;
        let started = Instant::now();
        let meta = head.rt.block_on(head.loc.store.head(&head.loc.path));
        if opts.log_requests {
            eprintln!(
                "sqfuse: HEAD {shown}: {} ({} ms)",
                match &meta {
                    Ok(m) => format!("{} bytes, ETag {:?}", m.size, m.e_tag),
                    Err(e) => redact(&e.to_string()),
                },
                started.elapsed().as_millis()
            );
        }
        let version = match (meta, recorded) {
            (Ok(m), _) => Version {
                size: m.size,
                etag: m.e_tag,
                modified: m.last_modified.timestamp(),
            },
            (Err(e), Some(v)) if unreachable(&e) => {
                eprintln!(
                    "sqfuse: warning: {shown}: server unreachable ({}); reading the cached copy (what is not cached fails)",
                    first_line(&e)
                );
                v
            }
            (Err(e), _) => return Err(fetch_error(&shown, "cannot open", &e)),
        };
        drop(head);
        let disk = match &opts.cache_dir {
            Some(root) => {
                cache::save_version(root, &shown, &version);
                Some(DiskCache::open(root, &shown, &version, opts.cache_size)?)
            }
            None => None,
        };
        let src = RemoteSource {
            url,
            shown,
            opts,
            version,
            live: Mutex::new(None),
            memory: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(MEMORY_CHUNKS).expect("nonzero"),
            )),
            disk,
            inflight: Mutex::new(HashSet::new()),
            landed: Condvar::new(),
            next_seq: AtomicU64::new(u64::MAX),
            ahead: AtomicU64::new(0),
            changed: AtomicBool::new(false),
            stats: Arc::default(),
        };
        // The first chunk holds the superblock: reading it now also tells a
        // server that ignores Range (object_store refuses its 200) apart.
        if src.version.size > 0 {
            src.read_bytes(0, 1)?;
        }
        Ok(src)
    }

    pub fn stats(&self) -> Arc<RemoteStats> {
        self.stats.clone()
    }

    fn chunks(&self) -> u64 {
        self.version.size.div_ceil(CHUNK)
    }

    fn chunk_len(&self, n: u64) -> usize {
        (self.version.size - n * CHUNK).min(CHUNK) as usize
    }

    fn live(&self) -> Result<Arc<Live>> {
        let mut live = self.live.lock();
        match &*live {
            Some(l) if l.pid == std::process::id() => Ok(l.clone()),
            _ => {
                // A parent's runtime: its threads are gone; never drop it.
                if let Some(old) = live.take() {
                    std::mem::forget(old);
                }
                let l = Arc::new(Live::new(&self.url, &self.opts, self.opts.retry_timeout)?);
                *live = Some(l.clone());
                Ok(l)
            }
        }
    }

    /// Chunk `n` from memory or disk.
    fn cached(&self, n: u64) -> Option<Arc<Vec<u8>>> {
        if let Some(c) = self.memory.lock().get(&n) {
            RemoteStats::add(&self.stats.memory_hits, 1);
            return Some(c.clone());
        }
        let c = Arc::new(self.disk.as_ref()?.get(n, self.chunk_len(n))?);
        RemoteStats::add(&self.stats.disk_hits, 1);
        self.memory.lock().put(n, c.clone());
        Some(c)
    }

    /// Whether chunk `n` would be a miss, without reading it.
    fn absent(&self, n: u64) -> bool {
        !self.memory.lock().contains(&n) && !self.disk.as_ref().is_some_and(|d| d.contains(n))
    }

    /// Chunks `first..=last`, fetching what no cache holds.
    fn gather(&self, first: u64, last: u64) -> Result<HashMap<u64, Arc<Vec<u8>>>> {
        let mut have = HashMap::new();
        // Each round either fetches what this thread claimed or waits for
        // another thread's fetch; a chunk another thread failed to fetch is
        // claimed in the next round. Three rounds suffice unless fetches
        // keep failing, and then the last error is the answer.
        for _round in 0..4 {
            let mut missing = Vec::new();
            for n in first..=last {
                if have.contains_key(&n) {
                    continue;
                }
                match self.cached(n) {
                    Some(c) => {
                        have.insert(n, c);
                    }
                    None => missing.push(n),
                }
            }
            if missing.is_empty() {
                return Ok(have);
            }
            let (claimed, waiting) = {
                let mut inflight = self.inflight.lock();
                let (waiting, claimed): (Vec<u64>, Vec<u64>) =
                    missing.iter().partition(|n| inflight.contains(n));
                let claimed = self.with_read_ahead(&claimed, &mut inflight);
                inflight.extend(claimed.iter().copied());
                (claimed, waiting)
            };
            if !claimed.is_empty() {
                let fetched = self.fetch_runs(&claimed);
                {
                    let mut inflight = self.inflight.lock();
                    for n in &claimed {
                        inflight.remove(n);
                    }
                }
                self.landed.notify_all();
                for (n, c) in fetched? {
                    if (first..=last).contains(&n) {
                        have.insert(n, c);
                    }
                }
            }
            if !waiting.is_empty() {
                let mut inflight = self.inflight.lock();
                while waiting.iter().any(|n| inflight.contains(n)) {
                    self.landed.wait(&mut inflight);
                }
            }
        }
        Err(Error::io(
            format!("{}: chunks {first}..={last} kept failing", self.shown),
            std::io::Error::other("fetch did not complete"),
        ))
    }

    /// `claimed` (sorted), extended past its end when a sequential reader
    /// reaches it: the chunks after it that no cache holds and no one is
    /// fetching, doubling each time up to [`MAX_RUN`].
    fn with_read_ahead(&self, claimed: &[u64], inflight: &mut HashSet<u64>) -> Vec<u64> {
        let mut out = claimed.to_vec();
        let Some(&last) = claimed.last() else {
            return out;
        };
        let sequential = claimed[0] == self.next_seq.load(Ordering::Relaxed)
            || claimed[0].checked_add(1) == Some(self.next_seq.load(Ordering::Relaxed));
        let ahead = if sequential {
            (self.ahead.load(Ordering::Relaxed) * 2).clamp(2, MAX_RUN)
        } else {
            0
        };
        self.ahead.store(ahead, Ordering::Relaxed);
        let mut n = last + 1;
        while n < self.chunks() && n <= last + ahead && !inflight.contains(&n) && self.absent(n) {
            out.push(n);
            n += 1;
        }
        self.next_seq.store(n, Ordering::Relaxed);
        out
    }

    /// Fetches `chunks` (sorted) in runs of adjacent chunks, the runs
    /// concurrently; stores every chunk in the caches.
    fn fetch_runs(&self, chunks: &[u64]) -> Result<Vec<(u64, Arc<Vec<u8>>)>> {
        if self.changed.load(Ordering::Relaxed) {
            return Err(self.changed_error());
        }
        let mut runs: Vec<(u64, u64)> = Vec::new(); // [start, end) chunk numbers
        for &n in chunks {
            match runs.last_mut() {
                Some((s, e)) if *e == n && n - *s < MAX_RUN => *e += 1,
                _ => runs.push((n, n + 1)),
            }
        }
        let live = self.live()?;
        let results = live.rt.block_on(futures::future::join_all(
            runs.iter().map(|&(s, e)| self.fetch(&live, s, e)),
        ));
        let mut out = Vec::with_capacity(chunks.len());
        let mut failure = None;
        for (r, &(s, _)) in results.into_iter().zip(&runs) {
            match r {
                Ok(bytes) => {
                    for (i, piece) in bytes.chunks(CHUNK as usize).enumerate() {
                        let n = s + i as u64;
                        if let Some(d) = &self.disk {
                            d.put(n, piece);
                        }
                        let c = Arc::new(piece.to_vec());
                        self.memory.lock().put(n, c.clone());
                        out.push((n, c));
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        RemoteStats::add(&self.stats.chunks_fetched, out.len() as u64);
        match failure {
            Some(e) => {
                RemoteStats::add(&self.stats.failed_reads, 1);
                Err(e)
            }
            None => Ok(out),
        }
    }

    /// Chunks `[s, e)` in one conditional range request.
    async fn fetch(&self, live: &Live, s: u64, e: u64) -> Result<Vec<u8>> {
        let start = s * CHUNK;
        let end = (e * CHUNK).min(self.version.size);
        let want = (end - start) as usize;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..end)),
            if_match: self.version.etag.clone(),
            if_unmodified_since: match self.version.etag {
                Some(_) => None,
                None => chrono::DateTime::from_timestamp(self.version.modified, 0),
            },
            ..Default::default()
        };
        let began = Instant::now();
        RemoteStats::add(&self.stats.requests, 1);
        let result = async {
            let got = live.loc.store.get_opts(&live.loc.path, opts).await?;
            if got.range != (start..end) {
                return Err(object_store::Error::Generic {
                    store: "sqfuse",
                    source: format!("asked for bytes {start}..{end}, got {:?}", got.range).into(),
                });
            }
            // Never more than asked for, whatever the server sends.
            let mut buf = Vec::with_capacity(want);
            let mut body = got.into_stream();
            while let Some(piece) = body.next().await {
                let piece = piece?;
                if buf.len() + piece.len() > want {
                    return Err(object_store::Error::Generic {
                        store: "sqfuse",
                        source: format!("body longer than the {want} bytes asked for").into(),
                    });
                }
                buf.extend_from_slice(&piece);
            }
            RemoteStats::add(&self.stats.bytes_fetched, buf.len() as u64);
            if buf.len() != want {
                return Err(object_store::Error::Generic {
                    store: "sqfuse",
                    source: format!("body of {} bytes, {want} asked for", buf.len()).into(),
                });
            }
            Ok(buf)
        }
        .await;
        if self.opts.log_requests {
            eprintln!(
                "sqfuse: GET {} bytes={start}-{}: {} ({} ms)",
                self.shown,
                end - 1,
                match &result {
                    Ok(_) => "ok".to_string(),
                    Err(e) => first_line(e),
                },
                began.elapsed().as_millis()
            );
        }
        result.map_err(|e| {
            if matches!(e, object_store::Error::Precondition { .. }) {
                if !self.changed.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "sqfuse: {}: the object changed on the server since it was opened; reads fail until it is opened again",
                        self.shown
                    );
                }
                return self.changed_error();
            }
            let mut err = fetch_error(&self.shown, &format!("fetching bytes {start}..{end}"), &e);
            err.offset = Some(start);
            err
        })
    }

    fn changed_error(&self) -> Error {
        Error::io(
            format!(
                "{} changed on the server since it was opened (was {} bytes, ETag {}): open it again",
                self.shown,
                self.version.size,
                self.version.etag.as_deref().unwrap_or("none")
            ),
            std::io::Error::other("object changed"),
        )
    }
}

impl Drop for RemoteSource {
    fn drop(&mut self) {
        // A parent's runtime has no threads here: dropping it would wait
        // for them forever.
        if let Some(l) = self.live.get_mut().take() {
            if l.pid != std::process::id() {
                std::mem::forget(l);
            }
        }
    }
}

impl ByteSource for RemoteSource {
    fn before_fork(&self) {
        let old = self.live.lock().take();
        // Dropped here, with its threads still running to be shut down.
        // (Another thread's fetch may hold a clone: it ends with that
        // fetch, before the fork; the mount forks before serving.)
        drop(old);
    }

    fn size(&self) -> u64 {
        self.version.size
    }

    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let end = pos
            .checked_add(len as u64)
            .filter(|&e| e <= self.version.size)
            .ok_or_else(|| {
                Error::corrupt(
                    pos,
                    format!(
                        "{len} bytes at {pos} run past the object's end ({})",
                        self.version.size
                    ),
                )
            })?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let (first, last) = (pos / CHUNK, (end - 1) / CHUNK);
        let have = self.gather(first, last)?;
        let mut out = Vec::with_capacity(len);
        for n in first..=last {
            let c = &have[&n];
            let lo = if n == first {
                (pos - n * CHUNK) as usize
            } else {
                0
            };
            let hi = if n == last {
                (end - n * CHUNK) as usize
            } else {
                c.len()
            };
            out.extend_from_slice(&c[lo..hi]);
        }
        Ok(Cow::Owned(out))
    }
}

/// Connection-level trouble (as opposed to an answer such as 404 or 403),
/// where a cached copy may stand in.
fn unreachable(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    !matches!(
        e,
        E::NotFound { .. }
            | E::Precondition { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
    )
}

fn first_line(e: &object_store::Error) -> String {
    crate::error::outside_text(&redact(&crate::error::Report(e).to_string()))
}

fn fetch_error(shown: &str, doing: &str, e: &object_store::Error) -> Error {
    let detail = first_line(e);
    let hint = if detail.contains("non-partial response")
        || detail.contains("Range request not supported")
    {
        ": the server ignores Range requests (it sent the whole object); serve the image from a server that supports them, or download it first"
    } else {
        ""
    };
    let kind = match e {
        object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => std::io::ErrorKind::PermissionDenied,
        _ => std::io::ErrorKind::Other,
    };
    Error::io(
        format!("{shown}: {doing}{hint}"),
        std::io::Error::new(kind, detail),
    )
}
