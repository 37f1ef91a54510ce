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

#[derive(Default)]
pub struct PageFill {
    tx: OnceLock<Sender<Fill>>,
    /// Blocks pushed lately, to push each once while it is likely cached.
    recent: OnceLock<Mutex<lru::LruCache<(u64, u64), ()>>>,
}

impl PageFill {
    /// Starts the pusher for a mounted session.
    pub fn start(&self, notifier: Notifier) {
        let (tx, rx) = bounded::<Fill>(64);
        let spawned = std::thread::Builder::new()
            .name("sqfuse-pagefill".into())
            .spawn(move || {
                for f in rx {
                    // An error (unmounting, kernel without notify) just ends the hint.
                    let _ = notifier.store(INodeNo(f.ino), f.offset, &f.data[f.a..f.b]);
                }
            });
        if spawned.is_ok() {
            let _ = self.recent.set(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(4096).expect("nonzero"),
            )));
            let _ = self.tx.set(tx);
        }
    }

    /// Queues a push unless the same block went out lately.
    pub fn push(&self, f: Fill) {
        let (Some(tx), Some(recent)) = (self.tx.get(), self.recent.get()) else {
            return;
        };
        if recent.lock().put((f.ino, f.offset), ()).is_some() {
            return;
        }
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(f) {
            // Dropped: the block is still served by normal reads.
        }
    }
}
