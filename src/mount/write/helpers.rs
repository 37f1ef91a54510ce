//! The writable mount's helpers: open handles, replies shared by several
//! requests, and the conversions from the kernel's arguments.

use super::attrs::{errno, file_attr};
use super::{Handle, WritableFs, TTL};
use crate::mount::fs::SqFs;
use crate::view::writable::ops::{NewEntry, TimeSet};
use crate::view::writable::{MergedListing, Owner};
use crate::view::WritableView;
use fuser::{Errno, FileHandle, Generation, INodeNo, ReplyEntry, Request, TimeOrNow};
use parking_lot::Mutex;
use rustix::fs::OFlags;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

pub(super) fn fail(e: rustix::io::Errno) -> Errno {
    errno(e)
}

pub(super) fn time_set(t: Option<TimeOrNow>) -> Option<TimeSet> {
    t.map(|t| match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(s) => match s.duration_since(UNIX_EPOCH) {
            Ok(d) => TimeSet::At {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let (mut secs, mut nanos) = (-(d.as_secs() as i64), d.subsec_nanos());
                if nanos > 0 {
                    secs -= 1;
                    nanos = 1_000_000_000 - nanos;
                }
                TimeSet::At { secs, nanos }
            }
        },
    })
}

/// The flags a file is opened with in the upper: the open's own, less
/// what the kernel has done or this server decides.
pub(super) fn open_flags(flags: i32) -> OFlags {
    let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_TRUNC | libc::O_SYNC | libc::O_DSYNC;
    OFlags::from_bits_retain((flags & keep) as u32)
}

impl WritableFs {
    /// Serves `view`; `ro` serves its lower layers' reads.
    pub fn new(view: Arc<WritableView>, ro: SqFs) -> Self {
        WritableFs {
            view,
            ro,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }

    /// The read-only server of the lower layers (its counters and caches).
    pub fn lower_server(&self) -> &SqFs {
        &self.ro
    }

    pub(super) fn fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn attr_of(
        &self,
        f: &crate::view::writable::Found,
    ) -> Result<fuser::FileAttr, Errno> {
        file_attr(f, &self.ro)
    }

    /// An open upper descriptor of node `ino`, if any.
    pub(super) fn open_upper(&self, ino: u64) -> Option<Arc<Handle>> {
        self.files
            .lock()
            .values()
            .find(|h| matches!(***h, Handle::Upper(_, i) if i == ino))
            .cloned()
    }

    pub(super) fn handle(&self, fh: FileHandle) -> Option<Arc<Handle>> {
        self.files.lock().get(&fh.0).cloned()
    }

    pub(super) fn upper_fd(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        match self.handle(fh) {
            Some(h) if matches!(*h, Handle::Upper(..)) => Ok(h),
            Some(_) => Err(Errno::EBADF),
            None => Err(Errno::EBADF),
        }
    }

    pub(super) fn entry(
        &self,
        r: Result<crate::view::writable::Found, rustix::io::Errno>,
        reply: ReplyEntry,
    ) {
        match r.map_err(fail).and_then(|f| self.attr_of(&f)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    pub(super) fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        what: NewEntry<'_>,
        reply: ReplyEntry,
    ) {
        let who = Owner {
            uid: req.uid(),
            gid: req.gid(),
        };
        let r = self
            .view
            .create(parent.0, name.as_bytes(), mode, who, what)
            .map(|(f, _)| f);
        self.entry(r, reply)
    }

    pub(super) fn fill_dir(
        &self,
        d: &MergedListing,
        offset: u64,
        mut add: impl FnMut(
            Option<&crate::view::writable::Item>,
            &[u8],
            u64,
            u64,
        ) -> Result<bool, Errno>,
        ino: u64,
    ) -> Result<(), Errno> {
        for next in offset..d.items.len() as u64 + 2 {
            let full = match next {
                0 => add(None, b".", ino, next + 1),
                1 => add(None, b"..", d.parent, next + 1),
                k => {
                    let it = &d.items[(k - 2) as usize];
                    add(Some(it), &it.name, it.id, next + 1)
                }
            };
            match full {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) if next == offset => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }
}
