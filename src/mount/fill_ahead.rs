//! Filling the page cache with the files a reader opens next.
//!
//! `tar`, `cp -r`, `rsync` and a backup read a directory's files one after
//! another in listing order, each with its own READ round trip, although
//! one decompressed fragment block holds many of them. When a file is read
//! from its start right after the file listed before it (the reader walks
//! a listing seen lately), the files listed after it are read here, on a
//! thread of their own (the idle core), and pushed into the page cache
//! with FUSE notify-store before they are asked for; their reads then
//! never reach the server. A program importing modules reads here and
//! there, not in listing order, and triggers nothing.
//!
//! Bounded: a read queues at most `budget` bytes (and [`MAX_FILES`] files)
//! past the file read; the next READ that still reaches the server, one
//! past what was pushed, moves the window on. A read elsewhere (another
//! directory) supersedes what is queued, so a reader that goes away costs
//! at most one window. Only files the listing handed to the kernel with
//! their attributes (readdirplus) can be stored; others are refused by the
//! kernel and cost a decompression.

use crate::format::inode::{FileType, InodeData};
use crate::view::{Listing, View};
use crossbeam_channel::{bounded, Receiver, Sender};
use fuser::{INodeNo, Notifier};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Directories whose listings are remembered (the ones a walk is inside:
/// a depth-first walk returns to its parents).
const RECENT_DIRS: usize = 16;
/// A listing longer than this is not remembered (its memory is the memo's
/// to spend, not ours).
const MAX_ENTRIES: usize = 1 << 16;
/// Most files one window pushes.
const MAX_FILES: usize = 256;
/// A file larger than this is left to the reader (read-ahead and the block
/// prefetcher serve it); the window goes on past it.
const MAX_FILE: u64 = 1 << 20;

/// A remembered listing: the last file read from its start (where the next
/// search starts), and the first entry not yet pushed.
struct Recent {
    dir: u64,
    listing: Arc<Listing>,
    last_read: Option<usize>,
    pushed_to: Arc<AtomicU64>,
}

/// Most entries between two reads that are still searched for files: a
/// reader that skips further is not walking the listing.
const MAX_GAP: usize = 256;

/// Push the files of `listing` (directory `dir`) from entry `from` on,
/// a budget's worth, skipping those before `pushed_to` (pushed already).
struct Job {
    dir: u64,
    listing: Arc<Listing>,
    from: usize,
    pushed_to: Arc<AtomicU64>,
}

/// What the pushes did, for `user.sqfuse.stats`.
#[derive(Default)]
pub struct FillStats {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
}

/// What the pusher needs, given once mounted.
struct Session {
    notifier: Notifier,
    view: Arc<dyn View>,
    budget: u64,
}

#[derive(Default)]
pub struct FillAhead {
    /// Set once mounted (and fill-ahead is on).
    session: OnceLock<Session>,
    /// The pusher's queue, made with the first job (a mount at rest runs no
    /// pusher; `None` if it could not be started).
    pusher: OnceLock<Option<Sender<Job>>>,
    recent: Mutex<VecDeque<Recent>>,
    pub stats: Arc<FillStats>,
}

impl FillAhead {
    /// Turns fill-ahead on for a mounted session (the pusher thread comes
    /// with the first job); `budget` 0 leaves it off.
    pub fn start(&self, notifier: Notifier, view: Arc<dyn View>, budget: u64) {
        if budget > 0 {
            let _ = self.session.set(Session {
                notifier,
                view,
                budget,
            });
        }
    }

    fn pusher(&self) -> Option<&Sender<Job>> {
        let s = self.session.get()?;
        self.pusher
            .get_or_init(|| {
                // Two jobs: the one under way and the newest; older ones are stale.
                let (tx, rx) = bounded::<Job>(2);
                let (notifier, view, budget) = (s.notifier.clone(), s.view.clone(), s.budget);
                let stats = self.stats.clone();
                std::thread::Builder::new()
                    .name("sqfuse-fill-ahead".into())
                    .spawn(move || push_loop(&rx, &notifier, view.as_ref(), budget, &stats))
                    .ok()?;
                Some(tx)
            })
            .as_ref()
    }

    /// Remembers a listing handed to the kernel.
    pub fn listed(&self, dir: u64, listing: &Arc<Listing>) {
        if self.session.get().is_none() || listing.entries.len() > MAX_ENTRIES {
            return;
        }
        let mut recent = self.recent.lock();
        if let Some(i) = recent.iter().position(|r| r.dir == dir) {
            let r = recent.remove(i).expect("found");
            recent.push_front(r);
            return;
        }
        if recent.len() == RECENT_DIRS {
            recent.pop_back();
        }
        recent.push_front(Recent {
            dir,
            listing: listing.clone(),
            last_read: None,
            pushed_to: Arc::new(AtomicU64::new(0)),
        });
    }

    /// Notes a read of node `ino` from its start: queues the files listed
    /// after it. Cheap: the pusher reads their sizes, off the reader's path.
    pub fn on_read_from_start(&self, ino: u64) {
        if self.session.get().is_none() {
            return;
        }
        let job = {
            let mut recent = self.recent.lock();
            let Some((r, at)) = recent.iter_mut().find_map(|r| {
                let at = find_from(&r.listing, r.last_read.unwrap_or(0), ino)?;
                Some((r, at))
            }) else {
                return;
            };
            let walking = r
                .last_read
                .replace(at)
                .is_some_and(|p| follows(&r.listing, p, at, &r.pushed_to));
            if !walking {
                return;
            }
            Job {
                dir: r.dir,
                listing: r.listing.clone(),
                from: at + 1,
                pushed_to: r.pushed_to.clone(),
            }
        };
        // Full: the pusher has newer work already; this read is served as
        // usual.
        if let Some(tx) = self.pusher() {
            let _ = tx.try_send(job);
        }
    }
}

/// Whether a read of entry `at` after one of entry `prev` walks the
/// listing: no file between them was left unread (directories between are
/// a depth-first walk's, files pushed were read without asking).
fn follows(l: &Listing, prev: usize, at: usize, pushed_to: &AtomicU64) -> bool {
    if at <= prev {
        return false;
    }
    let from = (prev + 1)
        .max(pushed_to.load(Ordering::Relaxed) as usize)
        .min(at);
    at - from <= MAX_GAP
        && l.entries[from..at]
            .iter()
            .all(|e| e.file_type() != FileType::File)
}

/// The index of `ino` in `l`, searched from `cursor` on and then from the
/// start (a reader moves forward through a listing).
fn find_from(l: &Listing, cursor: usize, ino: u64) -> Option<usize> {
    let e = &l.entries;
    let cursor = cursor.min(e.len());
    e[cursor..]
        .iter()
        .position(|x| x.id == ino)
        .map(|i| cursor + i)
        .or_else(|| e[..cursor].iter().position(|x| x.id == ino))
}

fn push_loop(
    rx: &Receiver<Job>,
    notifier: &Notifier,
    view: &dyn View,
    budget: u64,
    stats: &FillStats,
) {
    while let Ok(job) = rx.recv() {
        let (mut bytes, mut files) = (0u64, 0usize);
        for (i, e) in job.listing.entries.iter().enumerate().skip(job.from) {
            if bytes > budget || files >= MAX_FILES || !rx.is_empty() {
                // The window is full, or a newer read made it stale.
                break;
            }
            if e.file_type() != FileType::File {
                continue;
            }
            // Best effort: an error here is met again (and reported) by
            // the read itself.
            let Ok(n) = view.entry_node(job.dir, e) else {
                continue;
            };
            let size = match &n.inode.data {
                InodeData::File(f) => f.size,
                _ => continue,
            };
            if size == 0 || size > MAX_FILE {
                continue;
            }
            bytes += size;
            files += 1;
            if (i as u64) < job.pushed_to.load(Ordering::Relaxed) {
                continue;
            }
            job.pushed_to.store(i as u64 + 1, Ordering::Relaxed);
            let img = view.image(&n);
            let Ok(file) = img.open_file(&n.inode) else {
                continue;
            };
            let Ok((data, _)) = img.read_vec(&file, 0, size as usize) else {
                continue;
            };
            // Refused when the kernel has no inode for it (listed without
            // attributes, or forgotten) or is unmounting: the read asks.
            if notifier.store(INodeNo(n.id), 0, &data).is_ok() {
                stats.files.fetch_add(1, Ordering::Relaxed);
                stats.bytes.fetch_add(size, Ordering::Relaxed);
            }
        }
    }
}
