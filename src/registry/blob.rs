//! An image in a registry, read lazily: its manifest is resolved once, and
//! each SquashFS layer blob is a [`crate::format::ByteSource`] that fetches what the
//! reader asks for with HTTP range requests, in aligned chunks kept in a
//! small memory cache. Tokens are asked for again when they expire (the
//! session answers a 401 with a fresh one); redirects to blob storage are
//! followed by the HTTP client, without the registry's credentials.

use super::push::{LAYER_MEDIA_TYPE, VERITY_ROOT_ANNOTATION};
use super::RegistryAccess;
use super::{parse_docker_ref, parse_oras_ref, read_capped, status_error, Call, ImageRef, Session};
use crate::error::{Error, Result};
use crate::format::ByteSource;
use crate::oci_spec::check_digest;
use parking_lot::Mutex;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The layer of an artifact `apptainer push oras://` writes: a SIF file.
pub const SIF_LAYER_MEDIA_TYPE: &str = "application/vnd.sylabs.sif.layer.v1.sif";

/// Fetch granule: reads are rounded out to it.
const CHUNK: u64 = 1 << 20;
/// Requests one layer may have in flight at once.
const SESSIONS: usize = 4;
/// Chunks kept in memory per layer.
const CACHED_CHUNKS: usize = 32;
/// Chunks fetched ahead of a sequential reader.
const READ_AHEAD: u64 = 3;

/// One SquashFS layer of a registry image, not yet opened (the opener,
/// [`crate::open`], makes an image of it).
pub(crate) struct RegistryLayer {
    /// How messages and /proc/mounts name it: `docker://HOST/REPO@DIGEST`.
    pub(crate) name: String,
    /// Its bytes, fetched as they are read.
    pub(crate) source: Box<dyn ByteSource>,
    /// The dm-verity root hash its descriptor's annotation records, if any.
    pub(crate) verity_root: Option<String>,
    /// A SIF file: the SquashFS image is a partition inside it, found as
    /// `offset=auto` finds it.
    pub(crate) wrapped: bool,
}

/// Where layer chunks are kept between mounts (the URL cache's directory
/// and bound): keyed by the blob's digest, so shared by every tag,
/// repository and registry that serve the same blob, and read when the
/// registry is gone. Used with the `remote` feature.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// The cache directory (private to its user).
    pub dir: std::path::PathBuf,
    /// Bytes it may hold.
    pub limit: u64,
}

/// The layers of `reference` (`docker://HOST/REPO[:TAG|@DIGEST]`), top
/// first, each read lazily. Every layer must be SquashFS: an image of tar
/// layers is refused with what to do instead. An `oras://` reference names
/// an artifact of one SIF layer.
pub(crate) fn layers_of(
    reference: &str,
    access: &RegistryAccess,
    cache: Option<&LayerCache>,
) -> Result<Vec<RegistryLayer>> {
    #[cfg(not(feature = "remote"))]
    let _ = cache; // chunks are kept in memory only
    #[cfg(feature = "remote")]
    if let Some(c) = cache {
        crate::reader::remote::cache::prepare_root(&c.dir)?;
    }
    let fail = |e: super::RegistryError| Error::invalid(e.to_string());
    let oras = reference.starts_with("oras://");
    let image = if oras {
        parse_oras_ref(reference).map_err(fail)?
    } else {
        parse_docker_ref(reference).map_err(fail)?
    };
    // Auth files are read once, not by every chunk session.
    let access = &super::with_stored_login(access, &image);
    let mut session = Session::new(image.clone(), access, reference).map_err(fail)?;
    let rt = super::runtime(std::path::Path::new(reference)).map_err(fail)?;
    let resolved = rt.block_on(session.resolve_manifest(reference));
    drop(rt);
    let manifest = match resolved {
        Ok((bytes, _, _, m)) => {
            #[cfg(feature = "remote")]
            if let Some(c) = cache {
                crate::reader::remote::cache::save_document(
                    &c.dir,
                    &manifest_key(reference),
                    &bytes,
                );
            }
            #[cfg(not(feature = "remote"))]
            let _ = bytes;
            m
        }
        Err(e) => {
            // The registry unreachable (or the tag gone): the manifest last
            // resolved, if the cache kept it; its chunks are read from there.
            #[cfg(feature = "remote")]
            let kept = cache
                .and_then(|c| {
                    crate::reader::remote::cache::load_document(&c.dir, &manifest_key(reference))
                })
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            #[cfg(not(feature = "remote"))]
            let kept: Option<serde_json::Value> = None;
            match kept {
                Some(m) => {
                    eprintln!(
                        "sqfuse: warning: {}; reading the cached copy (what is not cached fails)",
                        crate::error::outside_text(&e.to_string())
                    );
                    m
                }
                None => return Err(fail(e)),
            }
        }
    };
    let descs = manifest["layers"].as_array().cloned().unwrap_or_default();
    if descs.is_empty() {
        return Err(Error::invalid(format!(
            "{reference}: the image has no layers"
        )));
    }
    let name = super::repository_of(reference);
    if oras && descs.len() != 1 {
        return Err(Error::invalid(format!(
            "{reference}: an oras:// artifact holds one SIF layer, this one {}",
            descs.len()
        )));
    }
    let mut layers = Vec::with_capacity(descs.len());
    for (i, d) in descs.iter().enumerate().rev() {
        let media = d["mediaType"].as_str().unwrap_or_default();
        if oras && media != SIF_LAYER_MEDIA_TYPE {
            return Err(Error::invalid(format!(
                "{reference}: the artifact's layer is {media:?}, not a SIF file ({SIF_LAYER_MEDIA_TYPE})"
            )));
        }
        if !oras && media != LAYER_MEDIA_TYPE {
            return Err(Error::invalid(format!(
                "{reference}: layer {i} is {media:?}, not SquashFS: make an image of it with `sqfuse pack {reference} IMAGE` and mount that"
            )));
        }
        let digest = d["digest"].as_str().unwrap_or_default().to_string();
        check_digest(&digest).map_err(|e| Error::invalid(format!("{reference}: {e}")))?;
        let size = d["size"]
            .as_u64()
            .ok_or_else(|| Error::invalid(format!("{reference}: layer {i} has no size")))?;
        let verity_root = d["annotations"][VERITY_ROOT_ANNOTATION]
            .as_str()
            .map(str::to_string);
        #[cfg(feature = "remote")]
        let disk = match cache {
            Some(c) => Some(crate::reader::remote::cache::DiskCache::open(
                &c.dir,
                &digest,
                &crate::reader::remote::cache::Version {
                    size,
                    etag: Some(digest.clone()),
                    modified: 0,
                },
                c.limit,
            )?),
            None => None,
        };
        let shown = format!("{name}@{digest}");
        layers.push(RegistryLayer {
            name: shown.clone(),
            source: Box::new(BlobSource(Arc::new(LayerBlob {
                shown,
                image: image.clone(),
                access: access.clone(),
                digest,
                size,
                live: (0..SESSIONS).map(|_| Mutex::new(None)).collect(),
                chunks: Mutex::new(Chunks::default()),
                fetching: Mutex::new(Default::default()),
                fetched: parking_lot::Condvar::new(),
                last_miss: u64::MAX.into(),
                ahead: 0.into(),
                #[cfg(feature = "remote")]
                disk,
            }))),
            verity_root,
            wrapped: oras,
        });
    }
    Ok(layers)
}

impl LayerCache {
    /// The URL cache's directory and bound, if `remote` keeps one.
    pub fn of(remote: &crate::reader::remote::RemoteOptions) -> Option<Self> {
        remote.cache_dir.clone().map(|dir| LayerCache {
            dir,
            limit: remote.cache_size,
        })
    }
}

/// The session and the runtime its futures run on, made when first needed
/// (and again after a fork).
struct Live {
    rt: tokio::runtime::Runtime,
    session: Session,
}

/// Recently fetched chunks, least recently used dropped first.
#[derive(Default)]
struct Chunks {
    map: HashMap<u64, Arc<Vec<u8>>>,
    order: VecDeque<u64>,
}

impl Chunks {
    fn contains(&self, n: u64) -> bool {
        self.map.contains_key(&n)
    }

    fn get(&mut self, n: u64) -> Option<Arc<Vec<u8>>> {
        let c = self.map.get(&n)?.clone();
        self.order.retain(|&k| k != n);
        self.order.push_back(n);
        Some(c)
    }

    fn put(&mut self, n: u64, c: Arc<Vec<u8>>) {
        if self.map.insert(n, c).is_none() {
            self.order.push_back(n);
        }
        while self.order.len() > CACHED_CHUNKS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// A layer blob read by byte range: a handle on the shared state, which
/// read-ahead threads hold too.
struct BlobSource(Arc<LayerBlob>);

/// A layer blob's fetching state.
struct LayerBlob {
    shown: String,
    image: ImageRef,
    access: RegistryAccess,
    digest: String,
    size: u64,
    /// Sessions, each with its own connection and token: requests for
    /// different chunks (read-ahead, several readers) run at once.
    live: Vec<Mutex<Option<Live>>>,
    chunks: Mutex<Chunks>,
    /// Chunks being fetched: a reader wanting one of them waits for it
    /// (`fetched` is signalled) instead of asking the registry again.
    fetching: Mutex<std::collections::HashSet<u64>>,
    fetched: parking_lot::Condvar,
    /// The last chunk a reader missed, to see a sequential reader.
    last_miss: std::sync::atomic::AtomicU64,
    /// Read-ahead fetches under way (each on a thread of its own).
    ahead: std::sync::atomic::AtomicUsize,
    /// Chunks kept between mounts, by digest.
    #[cfg(feature = "remote")]
    disk: Option<crate::reader::remote::cache::DiskCache>,
}

/// Where the manifest last resolved for `reference` is kept.
#[cfg(feature = "remote")]
fn manifest_key(reference: &str) -> String {
    format!("registry-manifest {reference}")
}

impl LayerBlob {
    /// Chunk `n`, from memory, the disk cache or the registry; fetched
    /// once however many readers want it at once. A miss right after the
    /// one before it (a sequential reader: a whole-tree copy walks the
    /// blob in order) starts fetching the chunks after it.
    fn chunk(self: &Arc<Self>, n: u64) -> Result<Arc<Vec<u8>>> {
        loop {
            if let Some(c) = self.chunks.lock().get(n) {
                return Ok(c);
            }
            let mut fetching = self.fetching.lock();
            if fetching.contains(&n) {
                self.fetched.wait(&mut fetching);
                continue; // in memory now, or failed: then try again
            }
            fetching.insert(n);
            drop(fetching);
            let last = self.last_miss.swap(n, Ordering::Relaxed);
            if last < n && n - last <= 2 {
                self.read_ahead(n);
            }
            let got = self.load(n);
            self.fetching.lock().remove(&n);
            self.fetched.notify_all();
            return got;
        }
    }

    /// Fetches up to READ_AHEAD chunks after `n` on threads of their own,
    /// leaving a session free for the reader.
    fn read_ahead(self: &Arc<Self>, n: u64) {
        let chunks = self.size.div_ceil(CHUNK);
        for k in n + 1..(n + 1 + READ_AHEAD).min(chunks) {
            if self.ahead.load(Ordering::Relaxed) >= SESSIONS - 1 {
                return;
            }
            let cached = self.chunks.lock().contains(k);
            if cached || !self.fetching.lock().insert(k) {
                continue;
            }
            self.ahead.fetch_add(1, Ordering::Relaxed);
            let blob = self.clone();
            let spawned = std::thread::Builder::new()
                .name("sqfuse-ahead".into())
                .spawn(move || {
                    // A failure is the reader's to meet, when it asks.
                    let _ = blob.load(k);
                    blob.finish_ahead(k);
                });
            if spawned.is_err() {
                self.finish_ahead(k);
            }
        }
    }

    /// A read-ahead fetch of chunk `k` is over.
    fn finish_ahead(&self, k: u64) {
        let mut fetching = self.fetching.lock();
        fetching.remove(&k);
        self.ahead.fetch_sub(1, Ordering::Relaxed);
        drop(fetching);
        self.fetched.notify_all();
    }

    /// Chunk `n` from the disk cache or the registry, kept in memory.
    fn load(&self, n: u64) -> Result<Arc<Vec<u8>>> {
        let start = n * CHUNK;
        let end = (start + CHUNK).min(self.size);
        #[cfg(feature = "remote")]
        if let Some(d) = &self.disk {
            if let Some(kept) = d.get(n, (end - start) as usize) {
                let kept = Arc::new(kept);
                self.chunks.lock().put(n, kept.clone());
                return Ok(kept);
            }
        }
        let fetched = Arc::new(self.fetch(start, end)?);
        #[cfg(feature = "remote")]
        if let Some(d) = &self.disk {
            d.put(n, &fetched);
        }
        self.chunks.lock().put(n, fetched.clone());
        Ok(fetched)
    }

    /// Bytes `start..end` of the blob, exactly.
    fn fetch(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let io = |what: String| {
            Error::io(
                format!("{}: bytes {start}..{end}", self.shown),
                std::io::Error::other(what),
            )
        };
        // A free session, else wait for the one this chunk maps to.
        let mut live = self
            .live
            .iter()
            .find_map(|l| l.try_lock())
            .unwrap_or_else(|| self.live[(start / CHUNK) as usize % SESSIONS].lock());
        if live.is_none() {
            let rt =
                super::runtime(std::path::Path::new(&self.shown)).map_err(|e| io(e.to_string()))?;
            let session = Session::new(self.image.clone(), &self.access, &self.shown)
                .map_err(|e| io(e.to_string()))?;
            *live = Some(Live { rt, session });
        }
        let Live { rt, session } = live.as_mut().expect("made above");
        let target = format!("blobs/{}", self.digest);
        let want = (end - start) as usize;
        rt.block_on(async {
            let mut resp = session
                .send(Call {
                    range: Some((start, end - 1)),
                    ..Call::get(&target, "*/*", false)
                })
                .await?;
            let whole = resp.status() == reqwest::StatusCode::OK;
            if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT
                && !(whole && start == 0 && end == self.size)
            {
                if whole {
                    return Err("the registry ignored the byte range".to_string());
                }
                return Err(status_error(resp).await);
            }
            let body = read_capped(&mut resp, want).await?;
            if body.len() != want {
                return Err(format!("the answer held {} bytes", body.len()));
            }
            Ok(body)
        })
        .map_err(io)
    }
}

impl ByteSource for BlobSource {
    fn size(&self) -> u64 {
        self.0.size
    }

    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let blob = &self.0;
        let end = pos
            .checked_add(len as u64)
            .filter(|&e| e <= blob.size)
            .ok_or_else(|| {
                Error::corrupt(
                    pos,
                    format!(
                        "{len} bytes at {pos} run past the layer's end ({})",
                        blob.size
                    ),
                )
            })?;
        let mut out = Vec::with_capacity(len);
        let mut at = pos;
        while at < end {
            let n = at / CHUNK;
            let c = blob.chunk(n)?;
            let from = (at - n * CHUNK) as usize;
            let take = ((end - at) as usize).min(c.len() - from);
            out.extend_from_slice(&c[from..from + take]);
            at += take as u64;
        }
        Ok(Cow::Owned(out))
    }

    fn before_fork(&self) {
        // No read-ahead thread may be left out of the child (its chunk
        // would stay "being fetched" there for ever).
        let mut fetching = self.0.fetching.lock();
        while self.0.ahead.load(Ordering::Relaxed) > 0 {
            self.0.fetched.wait(&mut fetching);
        }
        drop(fetching);
        for slot in &self.0.live {
            if let Some(l) = slot.lock().take() {
                l.rt.shutdown_background();
            }
        }
    }
}
