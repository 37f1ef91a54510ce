//! Filling the kernel's page cache with whole decompressed blocks.
//!
//! A FUSE read asks for a few pages, but answering it decompresses a whole
//! block; the kernel driver keeps all of it in the page cache, and so do we:
//! after replying, the block is pushed with FUSE notify-store. The push runs
//! on its own thread, never in a request handler: a store waits for page
//! locks that in-flight reads hold until their replies arrive, so a handler
//! doing it could deadlock against another handler. Best effort: a full
//! queue drops the push.

use crossbeam_channel::{bounded, Sender, TrySendError};
use fuser::{INodeNo, Notifier};
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

/// One push: `data[a..b]` belongs at `offset` of node `ino`.
pub struct Fill {
    pub ino: u64,
    pub offset: u64,
    pub data: Arc<Vec<u8>>,
    pub a: usize,
    pub b: usize,
}

/// The pusher, made on the first push: its queue, and the blocks pushed
/// lately (to push each once while it is likely cached).
struct Pusher {
    tx: Sender<Fill>,
    recent: Mutex<lru::LruCache<(u64, u64), ()>>,
}

#[derive(Default)]
pub struct PageFill {
    /// Set once mounted; nothing is pushed before.
    notifier: OnceLock<Notifier>,
    /// The pusher thread, started on first use (a mount at rest has none;
    /// `None` if it could not be started).
    pusher: OnceLock<Option<Pusher>>,
}

impl PageFill {
    /// Lets pushes start for a mounted session (the thread comes with the
    /// first one).
    pub fn start(&self, notifier: Notifier) {
        let _ = self.notifier.set(notifier);
    }

    fn pusher(&self) -> Option<&Pusher> {
        let notifier = self.notifier.get()?;
        self.pusher
            .get_or_init(|| {
                let (tx, rx) = bounded::<Fill>(64);
                let notifier = notifier.clone();
                std::thread::Builder::new()
                    .name("sqfuse-pagefill".into())
                    .spawn(move || {
                        for f in rx {
                            // An error (unmounting, kernel without notify)
                            // just ends the hint.
                            let _ = notifier.store(INodeNo(f.ino), f.offset, &f.data[f.a..f.b]);
                        }
                    })
                    .ok()?;
                Some(Pusher {
                    tx,
                    recent: Mutex::new(lru::LruCache::new(
                        NonZeroUsize::new(4096).expect("nonzero"),
                    )),
                })
            })
            .as_ref()
    }

    /// Queues a push unless the same block went out lately.
    pub fn push(&self, f: Fill) {
        let Some(p) = self.pusher() else {
            return;
        };
        if p.recent.lock().put((f.ino, f.offset), ()).is_some() {
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = p.tx.try_send(f) {
            // Dropped: the block is still served by normal reads.
        }
    }
}
