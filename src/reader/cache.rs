//! A sharded LRU cache of decoded blocks, shared between threads.
//!
//! Each key maps to a slot with its own lock, so two threads wanting the
//! same block decode it once (the second waits on the slot), while threads
//! wanting different blocks only meet on a shard lock held for a lookup.

use lru::LruCache;
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::sync::Arc;

const SHARDS: usize = 16;

type Slot<V> = Arc<Mutex<Option<Arc<V>>>>;

/// A sharded least-recently-used cache of decompressed blocks, bounded in bytes, shared by threads;
/// a block asked for by several at once is made once.
pub struct BlockCache<V> {
    shards: Vec<Mutex<LruCache<u64, Slot<V>>>>,
    capacity: usize,
    enabled: bool,
}

impl<V> BlockCache<V> {
    /// A cache holding about `capacity` blocks in all (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        let per = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).expect("at least 1");
        BlockCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
            capacity,
            enabled: capacity > 0,
        }
    }

    /// About how many blocks the cache holds (0: caching is off).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn shard(&self, key: u64) -> &Mutex<LruCache<u64, Slot<V>>> {
        // Block offsets are spread by their size; mix the bits before picking.
        let h = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59;
        &self.shards[h as usize % SHARDS]
    }

    /// The cached value for `key`, or `load()`'s result, stored on success.
    pub fn get_or_load<E>(
        &self,
        key: u64,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if !self.enabled {
            return load().map(Arc::new);
        }
        let slot = self
            .shard(key)
            .lock()
            .get_or_insert(key, || Arc::new(Mutex::new(None)))
            .clone();
        let mut guard = slot.lock();
        if let Some(v) = guard.as_ref() {
            return Ok(v.clone());
        }
        let v = Arc::new(load()?);
        *guard = Some(v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn loads_once_and_evicts() {
        let c = BlockCache::new(16);
        let loads = AtomicUsize::new(0);
        let load = |v: u32| {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(v)
        };
        assert_eq!(*c.get_or_load(1, || load(10)).unwrap(), 10);
        assert_eq!(*c.get_or_load(1, || load(99)).unwrap(), 10);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert!(c.get_or_load(2, || Err::<u32, _>(())).is_err());
        assert_eq!(
            *c.get_or_load(2, || load(20)).unwrap(),
            20,
            "an error is not cached"
        );
    }

    #[test]
    fn concurrent_loaders_of_one_key_decode_once() {
        let c = Arc::new(BlockCache::new(64));
        let loads = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, loads) = (c.clone(), loads.clone());
                std::thread::spawn(move || {
                    *c.get_or_load(7, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Ok::<_, ()>(7u8)
                    })
                    .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 7);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }
}
