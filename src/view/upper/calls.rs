//! The upper directory's system calls, each on a path relative to it.
//!
//! The kernel refuses a path longer than PATH_MAX, and the deepest paths of
//! a mount are nearly that long below the mount point (pjdfstest makes
//! them), so one relative to the upper could be longer still. A short path
//! is used as it is, relative to the upper's descriptor; a long one has its
//! parent opened in steps and the call made on the last name. xattr calls,
//! which have no *at forms, go through `/proc/self/fd/N/NAME` the same way.

use super::{at, UpperDir, UpperResult};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat, Timestamps};
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Paths up to this long are used whole.
const SHORT: usize = 1024;

impl UpperDir {
    /// Calls `f` with a directory and a path relative to it that stand for
    /// `rel`.
    pub(super) fn at_rel<T>(
        &self,
        rel: &Path,
        f: impl FnOnce(BorrowedFd<'_>, &Path) -> UpperResult<T>,
    ) -> UpperResult<T> {
        if rel.as_os_str().len() <= SHORT {
            return f(self.root_fd().as_fd(), at(rel));
        }
        let mut comps: Vec<&OsStr> = rel.iter().collect();
        let last = comps.pop().ok_or(rustix::io::Errno::INVAL)?;
        let mut dir: Option<OwnedFd> = None;
        let mut chunk = PathBuf::new();
        let open = |dir: &Option<OwnedFd>, chunk: &Path| {
            let base = dir.as_ref().map_or(self.root_fd().as_fd(), |d| d.as_fd());
            rustix::fs::openat(
                base,
                chunk,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        for c in comps {
            if !chunk.as_os_str().is_empty() && chunk.as_os_str().len() + c.len() + 1 > SHORT {
                dir = Some(open(&dir, &chunk)?);
                chunk.clear();
            }
            chunk.push(c);
        }
        if !chunk.as_os_str().is_empty() {
            dir = Some(open(&dir, &chunk)?);
        }
        let base = dir.as_ref().map_or(self.root_fd().as_fd(), |d| d.as_fd());
        f(base, Path::new(last))
    }

    /// Calls `f` with a path the path-only calls (xattrs) can take for
    /// `rel`, not following its last component.
    pub(super) fn proc_path<T>(
        &self,
        rel: &Path,
        f: impl FnOnce(&Path) -> UpperResult<T>,
    ) -> UpperResult<T> {
        self.at_rel(rel, |dir, name| {
            let p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
            f(&p)
        })
    }

    /// `rel`'s stat, not following a symlink.
    pub fn stat(&self, rel: &Path) -> UpperResult<Stat> {
        self.at_rel(rel, |d, n| {
            rustix::fs::statat(d, n, AtFlags::SYMLINK_NOFOLLOW)
        })
    }

    /// Opens `rel` (never following a symlink there).
    pub fn open_at(&self, rel: &Path, flags: OFlags, mode: u32) -> UpperResult<OwnedFd> {
        self.at_rel(rel, |d, n| {
            rustix::fs::openat(
                d,
                n,
                flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(mode),
            )
        })
    }

    /// Removes a non-directory.
    pub fn unlink(&self, rel: &Path) -> UpperResult<()> {
        self.at_rel(rel, |d, n| rustix::fs::unlinkat(d, n, AtFlags::empty()))
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, rel: &Path) -> UpperResult<()> {
        self.at_rel(rel, |d, n| rustix::fs::unlinkat(d, n, AtFlags::REMOVEDIR))
    }

    /// Makes a directory.
    pub fn mkdir(&self, rel: &Path, mode: u32) -> UpperResult<()> {
        self.at_rel(rel, |d, n| {
            rustix::fs::mkdirat(d, n, Mode::from_raw_mode(mode))
        })
    }

    /// Makes a device, FIFO or socket node.
    pub fn mknod(&self, rel: &Path, ft: FileType, mode: u32, dev: u64) -> UpperResult<()> {
        self.at_rel(rel, |d, n| {
            rustix::fs::mknodat(d, n, ft, Mode::from_raw_mode(mode), dev)
        })
    }

    /// Makes a symlink to `target`.
    pub fn symlink(&self, target: &OsStr, rel: &Path) -> UpperResult<()> {
        self.at_rel(rel, |d, n| rustix::fs::symlinkat(target, d, n))
    }

    /// A symlink's target.
    pub fn readlink(&self, rel: &Path) -> UpperResult<Vec<u8>> {
        self.at_rel(rel, |d, n| {
            Ok(rustix::fs::readlinkat(d, n, Vec::new())?.into_bytes())
        })
    }

    /// Renames `old` to `new` (renameat2's flags).
    pub fn rename(&self, old: &Path, new: &Path, flags: RenameFlags) -> UpperResult<()> {
        self.at_rel(old, |d1, n1| {
            self.at_rel(new, |d2, n2| {
                rustix::fs::renameat_with(d1, n1, d2, n2, flags)
            })
        })
    }

    /// A new name `new` for `old`.
    pub fn link(&self, old: &Path, new: &Path) -> UpperResult<()> {
        self.at_rel(old, |d1, n1| {
            self.at_rel(new, |d2, n2| {
                rustix::fs::linkat(d1, n1, d2, n2, AtFlags::empty())
            })
        })
    }

    /// Sets `rel`'s times (not following a symlink).
    pub fn set_times(&self, rel: &Path, ts: &Timestamps) -> UpperResult<()> {
        self.at_rel(rel, |d, n| {
            rustix::fs::utimensat(d, n, ts, AtFlags::SYMLINK_NOFOLLOW)
        })
    }

    pub(super) fn chown_raw(
        &self,
        rel: &Path,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> UpperResult<()> {
        let uid = uid.map(rustix::fs::Uid::from_raw);
        let gid = gid.map(rustix::fs::Gid::from_raw);
        self.at_rel(rel, |d, n| {
            rustix::fs::chownat(d, n, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
        })
    }

    pub(super) fn chmod_raw(&self, rel: &Path, mode: u32) -> UpperResult<()> {
        self.at_rel(rel, |d, n| {
            rustix::fs::chmodat(d, n, Mode::from_raw_mode(mode & 0o7777), AtFlags::empty())
        })
    }
}
