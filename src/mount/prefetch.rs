//! Decompressing the blocks a sequential reader will ask for next.
//!
//! The kernel's read-ahead for a FUSE mount is capped at 128 KiB (the server
//! may only lower it), so a sequential reader has about one request in
//! flight and one block would be decoded at a time while the other cores
//! idle. When a handle reads sequentially, the next blocks are queued for a
//! small pool that decodes them into the image's data cache; the request for
//! such a block then finds it there (or waits for the one decode already
//! under way: the cache decodes each block once). Bounded: a full queue
//! drops the hint, and each handle runs at most `depth` blocks ahead.

use crate::reader::{FileReader, Image};
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// One hint: decode chunk `n` of `file` in `img`.
struct Job {
    img: Arc<Image>,
    file: Arc<FileReader>,
    n: usize,
}

/// Per open file: where the last read ended, and the first block not yet
/// queued.
pub struct Stream {
    last_end: AtomicU64,
    queued_to: AtomicU64,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            last_end: AtomicU64::new(u64::MAX),
            queued_to: AtomicU64::new(0),
        }
    }
}

#[derive(Default)]
pub struct Prefetcher {
    /// How many decoders and how far a stream may run ahead; unset until
    /// started (and if prefetching is off).
    settings: OnceLock<(usize, u64)>,
    /// The decoders' queue, made with the first hint (a mount at rest runs
    /// no decoders; `None` if they could not be started).
    pool: OnceLock<Option<Sender<Job>>>,
}

impl Prefetcher {
    /// Lets `threads` decoders start with the first hint (in the serving
    /// process: threads do not survive the daemon's fork); each stream runs
    /// up to `depth` blocks ahead. With 0 of either, reads are never
    /// prefetched. `cache_blocks` is the smallest data cache of the images
    /// read.
    pub fn start(&self, cache_blocks: usize, threads: usize, depth: usize) {
        // Blocks decoded ahead wait in the data cache: run at most a quarter
        // of it ahead, so several streams do not evict each other's blocks
        // before they are read. No cache, no prefetch.
        let depth = depth.min(cache_blocks / 4);
        if depth == 0 || threads == 0 {
            return;
        }
        let _ = self.settings.set((threads, depth as u64));
    }

    fn pool(&self) -> Option<(&Sender<Job>, u64)> {
        let &(threads, depth) = self.settings.get()?;
        let tx = self
            .pool
            .get_or_init(|| {
                let (tx, rx) = bounded::<Job>(threads * depth as usize);
                for i in 0..threads {
                    let rx = rx.clone();
                    std::thread::Builder::new()
                        .name(format!("sqfuse-prefetch-{i}"))
                        .spawn(move || {
                            for j in rx {
                                // Errors surface when the block is really read.
                                let _ = j.img.read_chunk(&j.file, j.n);
                            }
                        })
                        // Without threads the hint is just not given.
                        .ok()?;
                }
                Some(tx)
            })
            .as_ref()?;
        Some((tx, depth))
    }

    /// Notes a read of `[offset, end)` on `s`; when it continues the
    /// previous one, queues the blocks after it. Returns whether it did
    /// continue it (a sequential stream).
    pub fn on_read(
        &self,
        s: &Stream,
        img: &Arc<Image>,
        file: &Arc<FileReader>,
        (offset, end): (u64, u64),
        block_size: u64,
    ) -> bool {
        if s.last_end.swap(end, Ordering::Relaxed) != offset {
            return false; // not (yet) sequential
        }
        let Some((tx, depth)) = self.pool() else {
            return true;
        };
        let next = end.div_ceil(block_size);
        // Data blocks only: the fragment tail is cached as a fragment.
        let limit = (next + depth).min(file.info().blocks.len() as u64);
        // Claims [from, limit): concurrent readers of one handle queue each
        // block once.
        let from = s.queued_to.fetch_max(limit, Ordering::Relaxed).max(next);
        for n in from..limit {
            let job = Job {
                img: img.clone(),
                file: file.clone(),
                n: n as usize,
            };
            if tx.try_send(job).is_err() {
                break; // queue full: the reads decode it themselves
            }
        }
        true
    }
}
