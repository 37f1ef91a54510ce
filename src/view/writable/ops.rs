//! The changes a writable view takes, each made in the upper directory
//! only: new entries (replacing a whiteout), hard links, deletions that
//! leave whiteouts where a lower layer shows the name, renames (a
//! directory with lower entries is copied up whole and made opaque, as
//! overlayfs without `redirect_dir` would refuse it), attributes and
//! xattrs (copying the node up first).

use super::{Attrs, Found, Owner, Tree, WritableView};
use crate::view::upper::{UpperDir, UpperResult, OVERRIDE_STAT};
use rustix::fs::{
    FileType, Mode, OFlags, RenameFlags, Stat, StatVfs, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a new entry is.
pub enum NewEntry<'a> {
    /// A regular file, opened with these flags (the kernel's create).
    File {
        /// Access mode and open flags.
        flags: OFlags,
    },
    /// A directory.
    Dir,
    /// A device, FIFO or socket.
    Special {
        /// Which of them.
        file_type: FileType,
        /// The device number, for devices.
        rdev: u64,
    },
    /// A symlink to this target.
    Symlink(&'a [u8]),
}

/// A time to set.
#[derive(Clone, Copy, Debug)]
pub enum TimeSet {
    /// The current time.
    Now,
    /// This time since the epoch.
    At {
        /// Seconds (negative: before 1970).
        secs: i64,
        /// Nanoseconds past them.
        nanos: u32,
    },
}

/// What a setattr changes (each `None`: left alone).
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// Permission bits.
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Size (truncating or extending).
    pub size: Option<u64>,
    /// Access time.
    pub atime: Option<TimeSet>,
    /// Modification time.
    pub mtime: Option<TimeSet>,
}

fn timespec(t: Option<TimeSet>) -> Timespec {
    match t {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        Some(TimeSet::Now) => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        Some(TimeSet::At { secs, nanos }) => Timespec {
            tv_sec: secs,
            tv_nsec: nanos.into(),
        },
    }
}

/// Whether an xattr name is the writable layer's own bookkeeping: never
/// shown, never set from the mount.
fn private_xattr(name: &[u8]) -> bool {
    crate::whiteout::is_overlay_private(name) || name == OVERRIDE_STAT.as_bytes()
}

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(0);

/// A name beside `rel` for a whiteout being put in place.
fn scratch_beside(rel: &Path) -> PathBuf {
    let n = SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut name = crate::view::upper::TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("wh.{}.{n}", std::process::id()).as_bytes());
    rel.parent()
        .unwrap_or(Path::new(""))
        .join(OsStr::from_bytes(&name))
}

impl WritableView {
    /// Readies (dir, name) for a new entry: the name must be free, the
    /// directory gets copied up, a whiteout there goes. Returns the new
    /// entry's path and whether a lower layer has the name (a new
    /// directory must then be opaque).
    fn make_room(&self, t: &mut Tree, dir: u64, name: &[u8]) -> UpperResult<(PathBuf, bool)> {
        if t.children.contains_key(&(dir, name.to_vec())) {
            return Err(Errno::EXIST);
        }
        let d = t.nodes.get(&dir).ok_or(Errno::NOENT)?;
        if !d.is_dir {
            return Err(Errno::NOTDIR);
        }
        let lower_had = self.lower_has(t, dir, name)?;
        // One look at the upper decides: an entry there is the name's (or
        // hides the lower's, as a whiteout or an abandoned temporary).
        if d.upper {
            let rel = Self::child_rel(t, dir, name)?;
            match self.upper.stat(&rel) {
                Ok(st) if UpperDir::is_temp_name(name) || self.upper.is_whiteout(&rel, &st)? => {
                    self.upper.unlink(&rel)?;
                    return Ok((rel, lower_had));
                }
                Ok(_) => return Err(Errno::EXIST),
                Err(Errno::NOENT) if lower_had => return Err(Errno::EXIST),
                Err(Errno::NOENT) => return Ok((rel, false)),
                Err(e) => return Err(e),
            }
        }
        if lower_had {
            return Err(Errno::EXIST);
        }
        self.ensure_upper(t, dir)?;
        Ok((Self::child_rel(t, dir, name)?, false))
    }

    /// The owner a new entry of `dir` gets: the requester, in the
    /// directory's group if it is setgid.
    fn new_owner(&self, t: &Tree, dir: u64, who: Owner) -> UpperResult<(u32, u32)> {
        let st = self.upper.stat(&Self::rel(t, dir)?)?;
        let gid = if st.st_mode & libc::S_ISGID != 0 {
            st.st_gid
        } else {
            who.gid
        };
        Ok((who.uid, gid))
    }

    /// Makes `name` in `dir`, owned by `who`, with permission bits `mode`
    /// (already masked). A new file comes back open.
    pub fn create(
        &self,
        dir: u64,
        name: &[u8],
        mode: u32,
        who: Owner,
        what: NewEntry<'_>,
    ) -> UpperResult<(Found, Option<OwnedFd>)> {
        let mut t = self.tree.lock();
        let (rel, lower_had) = self.make_room(&mut t, dir, name)?;
        let perm = mode & 0o7777;
        let is_dir = matches!(what, NewEntry::Dir);
        let symlink = matches!(what, NewEntry::Symlink(_));
        let fd = match what {
            NewEntry::File { flags } => Some(self.upper.open_at(
                &rel,
                flags | OFlags::CREATE | OFlags::EXCL,
                perm,
            )?),
            NewEntry::Dir => {
                self.upper.mkdir(&rel, perm)?;
                None
            }
            NewEntry::Special { file_type, rdev } => {
                self.upper.mknod(&rel, file_type, perm, rdev)?;
                None
            }
            NewEntry::Symlink(target) => {
                self.upper.symlink(OsStr::from_bytes(target), &rel)?;
                None
            }
        };
        let made = match &fd {
            Some(f) => rustix::fs::fstat(f),
            None => self.upper.stat(&rel),
        };
        let finish = |st: Stat| -> UpperResult<Stat> {
            let mut st = st;
            // Made by this server: its owner unless that is the requester.
            if self.upper.privileged() && (st.st_uid, st.st_gid) != (who.uid, who.gid) {
                let (uid, gid) = self.new_owner(&t, dir, who)?;
                if (st.st_uid, st.st_gid) != (uid, gid) {
                    self.upper.set_owner(&rel, Some(uid), Some(gid))?;
                    // The chown cleared setuid and setgid bits asked for.
                    if !symlink && mode & 0o6000 != 0 {
                        self.upper.set_mode(&rel, mode)?;
                    }
                    st = self.upper.stat(&rel)?;
                }
            }
            if is_dir && lower_had {
                self.upper.set_opaque(&rel)?;
            }
            Ok(st)
        };
        let st = match made.and_then(finish) {
            Ok(st) => st,
            Err(e) => {
                let _ = if is_dir {
                    self.upper.rmdir(&rel)
                } else {
                    self.upper.unlink(&rel)
                };
                return Err(e);
            }
        };
        // Not a whiteout, and merged with nothing: a new directory over a
        // lower one is opaque.
        let id = Self::insert_upper(&mut t, dir, name, &st, None);
        let attrs = Attrs::Upper {
            owner: self.upper.override_stat(&rel),
            st: Box::new(st),
            merged: false,
        };
        Ok((Found { id, attrs }, fd))
    }

    /// A new name `name` in `dir` for node `id`.
    pub fn link(&self, id: u64, dir: u64, name: &[u8]) -> UpperResult<Found> {
        let mut t = self.tree.lock();
        if t.nodes.get(&id).ok_or(Errno::NOENT)?.is_dir {
            return Err(Errno::PERM);
        }
        let (to, _) = self.make_room(&mut t, dir, name)?;
        self.ensure_upper(&mut t, id)?;
        let from = Self::rel(&t, id)?;
        self.upper.link(&from, &to)?;
        Self::name_it(&mut t, dir, name, id);
        let attrs = self.attrs_locked(&t, id)?;
        Ok(Found { id, attrs })
    }

    /// Replaces the upper entry `rel` (not a directory) by a whiteout,
    /// atomically: made beside it, then renamed over it.
    fn whiteout_over(&self, rel: &Path) -> UpperResult<()> {
        let scratch = scratch_beside(rel);
        self.upper.make_whiteout(&scratch)?;
        self.upper
            .rename(&scratch, rel, RenameFlags::empty())
            .inspect_err(|_| {
                let _ = self.upper.unlink(&scratch);
            })
    }

    /// Removes a non-directory.
    pub fn unlink(&self, dir: u64, name: &[u8]) -> UpperResult<()> {
        let mut t = self.tree.lock();
        let id = self.lookup_locked(&mut t, dir, name)?.ok_or(Errno::NOENT)?;
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if n.is_dir {
            return Err(Errno::ISDIR);
        }
        let upper = n.upper;
        let need_whiteout = self.lower_has(&t, dir, name)?;
        let rel = Self::child_rel(&t, dir, name)?;
        match (upper, need_whiteout) {
            (true, true) => self.whiteout_over(&rel)?,
            (true, false) => self.upper.unlink(&rel)?,
            (false, _) => {
                self.ensure_upper(&mut t, dir)?;
                self.upper.make_whiteout(&rel)?;
            }
        }
        Self::unname(&mut t, dir, name);
        Ok(())
    }

    /// Empties upper directory `rel` of what a merged-empty directory
    /// holds: whiteouts and this server's temporaries.
    fn purge(&self, rel: &Path) -> UpperResult<()> {
        self.remove_whiteouts(rel, true)
    }

    /// Removes the whiteouts (and this server's temporaries) of upper
    /// directory `rel`; `strict`: anything else there is ENOTEMPTY.
    pub(super) fn remove_whiteouts(&self, rel: &Path, strict: bool) -> UpperResult<()> {
        let fd = self
            .upper
            .open_at(rel, OFlags::DIRECTORY | OFlags::RDONLY, 0)?;
        let mut names = Vec::new();
        for e in rustix::fs::Dir::read_from(&fd)? {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        for name in names {
            let child = rel.join(OsStr::from_bytes(&name));
            let st = self.upper.stat(&child)?;
            if !UpperDir::is_temp_name(&name) && !self.upper.is_whiteout(&child, &st)? {
                if strict {
                    return Err(Errno::NOTEMPTY);
                }
                continue;
            }
            self.upper.unlink(&child)?;
        }
        Ok(())
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, dir: u64, name: &[u8]) -> UpperResult<()> {
        let mut t = self.tree.lock();
        let id = self.lookup_locked(&mut t, dir, name)?.ok_or(Errno::NOENT)?;
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if !n.is_dir {
            return Err(Errno::NOTDIR);
        }
        let upper = n.upper;
        if !self.list_locked(&mut t, id)?.items.is_empty() {
            return Err(Errno::NOTEMPTY);
        }
        let need_whiteout = self.lower_has(&t, dir, name)?;
        let rel = Self::child_rel(&t, dir, name)?;
        if upper {
            self.purge(&rel)?;
            if need_whiteout {
                // Swapped with a whiteout made beside it: the name is never
                // free for the lower directory to show through.
                let scratch = scratch_beside(&rel);
                self.upper.make_whiteout(&scratch)?;
                match self.upper.rename(&scratch, &rel, RenameFlags::EXCHANGE) {
                    Ok(()) => self.upper.rmdir(&scratch)?,
                    Err(_) => {
                        let _ = self.upper.unlink(&scratch);
                        self.upper.rmdir(&rel)?;
                        self.upper.make_whiteout(&rel)?;
                    }
                }
            } else {
                self.upper.rmdir(&rel)?;
            }
        } else {
            self.ensure_upper(&mut t, dir)?;
            self.upper.make_whiteout(&rel)?;
        }
        Self::unname(&mut t, dir, name);
        Ok(())
    }

    /// Renames (olddir, oldname) to (newdir, newname). `noreplace`: fail
    /// if the new name exists.
    pub fn rename(
        &self,
        olddir: u64,
        oldname: &[u8],
        newdir: u64,
        newname: &[u8],
        noreplace: bool,
    ) -> UpperResult<()> {
        let mut t = self.tree.lock();
        let src = self
            .lookup_locked(&mut t, olddir, oldname)?
            .ok_or(Errno::NOENT)?;
        let dst = self.lookup_locked(&mut t, newdir, newname)?;
        if dst == Some(src) {
            return Ok(());
        }
        if noreplace && dst.is_some() {
            return Err(Errno::EXIST);
        }
        let s = t.nodes.get(&src).ok_or(Errno::NOENT)?;
        let (src_dir, deep) = (s.is_dir, s.is_dir && s.lower.is_some());
        let mut dst_upper_dir = false;
        if let Some(d) = dst {
            let dn = t.nodes.get(&d).ok_or(Errno::NOENT)?;
            match (src_dir, dn.is_dir) {
                (true, false) => return Err(Errno::NOTDIR),
                (false, true) => return Err(Errno::ISDIR),
                _ => {}
            }
            dst_upper_dir = dn.is_dir && dn.upper;
            if dn.is_dir && !self.list_locked(&mut t, d)?.items.is_empty() {
                return Err(Errno::NOTEMPTY);
            }
        }
        if deep {
            self.copy_up_tree(&mut t, src)?;
        } else {
            self.ensure_upper(&mut t, src)?;
        }
        self.ensure_upper(&mut t, newdir)?;
        let old_rel = Self::child_rel(&t, olddir, oldname)?;
        let new_rel = Self::child_rel(&t, newdir, newname)?;
        if dst_upper_dir {
            self.purge(&new_rel)?;
        } else if dst.is_none() && self.upper.stat(&new_rel).is_ok() {
            // A whiteout: a directory cannot be renamed over it.
            self.upper.unlink(&new_rel)?;
        }
        let need_whiteout = self.lower_has(&t, olddir, oldname)?;
        if need_whiteout {
            match self.upper.rename(&old_rel, &new_rel, RenameFlags::WHITEOUT) {
                Ok(()) => {}
                Err(Errno::INVAL | Errno::PERM | Errno::NOSYS) => {
                    self.upper
                        .rename(&old_rel, &new_rel, RenameFlags::empty())?;
                    self.upper.make_whiteout(&old_rel)?;
                }
                Err(e) => return Err(e),
            }
        } else {
            self.upper
                .rename(&old_rel, &new_rel, RenameFlags::empty())?;
        }
        if src_dir && (deep || self.lower_has(&t, newdir, newname)?) {
            self.upper.set_opaque(&new_rel)?;
        }
        if dst.is_some() {
            Self::unname(&mut t, newdir, newname);
        }
        t.children.remove(&(olddir, oldname.to_vec()));
        t.children.insert((newdir, newname.to_vec()), src);
        if let Some(n) = t.nodes.get_mut(&src) {
            if n.parent == olddir && n.name == oldname {
                n.parent = newdir;
                n.name = newname.to_vec();
            }
        }
        Ok(())
    }

    /// Changes node `id`'s attributes (`fd`: the open file a request came
    /// through, used where the node has no name left).
    pub fn set_attr(&self, id: u64, a: SetAttr, fd: Option<&OwnedFd>) -> UpperResult<Found> {
        let mut t = self.tree.lock();
        if !t.nodes.contains_key(&id) {
            let fd = fd.ok_or(Errno::NOENT)?;
            return Self::set_attr_fd(id, a, fd);
        }
        self.ensure_upper(&mut t, id)?;
        let rel = Self::rel(&t, id)?;
        if a.uid.is_some() || a.gid.is_some() {
            self.upper.set_owner(&rel, a.uid, a.gid)?;
        }
        if let Some(m) = a.mode {
            self.upper.set_mode(&rel, m)?;
        }
        if let Some(size) = a.size {
            match fd {
                Some(fd) => rustix::fs::ftruncate(fd, size)?,
                None => {
                    let f = self.upper.open_at(&rel, OFlags::WRONLY, 0)?;
                    rustix::fs::ftruncate(&f, size)?;
                }
            }
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = Timestamps {
                last_access: timespec(a.atime),
                last_modification: timespec(a.mtime),
            };
            self.upper.set_times(&rel, &ts)?;
        }
        let attrs = self.attrs_locked(&t, id)?;
        Ok(Found { id, attrs })
    }

    fn set_attr_fd(id: u64, a: SetAttr, fd: &OwnedFd) -> UpperResult<Found> {
        if a.uid.is_some() || a.gid.is_some() {
            let (u, g) = (
                a.uid.map(rustix::fs::Uid::from_raw),
                a.gid.map(rustix::fs::Gid::from_raw),
            );
            rustix::fs::fchown(fd, u, g)?;
        }
        if let Some(m) = a.mode {
            rustix::fs::fchmod(fd, Mode::from_raw_mode(m & 0o7777))?;
        }
        if let Some(size) = a.size {
            rustix::fs::ftruncate(fd, size)?;
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = Timestamps {
                last_access: timespec(a.atime),
                last_modification: timespec(a.mtime),
            };
            rustix::fs::futimens(fd, &ts)?;
        }
        Found::of_open_file(id, fd)
    }

    /// One xattr of node `id`, `None` when absent.
    pub fn get_xattr(&self, id: u64, name: &[u8]) -> UpperResult<Option<Vec<u8>>> {
        if private_xattr(name) {
            return Ok(None);
        }
        let t = self.tree.lock();
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if !n.upper {
            let node = n.lower.as_ref().ok_or(Errno::IO)?;
            let all = self
                .lower
                .xattrs(node)
                .map_err(|e| Errno::from_raw_os_error(e.errno()))?;
            return Ok(all.into_iter().find(|x| x.name == name).map(|x| x.value));
        }
        let rel = Self::rel(&t, id)?;
        self.upper.get_xattr(&rel, OsStr::from_bytes(name))
    }

    /// The names of node `id`'s xattrs.
    pub fn list_xattrs(&self, id: u64) -> UpperResult<Vec<Vec<u8>>> {
        let t = self.tree.lock();
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        let mut names = if !n.upper {
            let node = n.lower.as_ref().ok_or(Errno::IO)?;
            self.lower
                .xattrs(node)
                .map_err(|e| Errno::from_raw_os_error(e.errno()))?
                .into_iter()
                .map(|x| x.name)
                .collect()
        } else {
            self.upper.list_xattrs(&Self::rel(&t, id)?)?
        };
        names.retain(|n| !private_xattr(n));
        Ok(names)
    }

    /// Sets an xattr (`flags`: setxattr's XATTR_CREATE / XATTR_REPLACE).
    pub fn set_xattr(&self, id: u64, name: &[u8], value: &[u8], flags: u32) -> UpperResult<()> {
        if private_xattr(name) {
            return Err(Errno::PERM);
        }
        let mut t = self.tree.lock();
        self.ensure_upper(&mut t, id)?;
        let rel = Self::rel(&t, id)?;
        self.upper.set_xattr(
            &rel,
            OsStr::from_bytes(name),
            value,
            XattrFlags::from_bits_retain(flags),
        )
    }

    /// Removes an xattr.
    pub fn remove_xattr(&self, id: u64, name: &[u8]) -> UpperResult<()> {
        if private_xattr(name) {
            return Err(Errno::NODATA);
        }
        let mut t = self.tree.lock();
        self.ensure_upper(&mut t, id)?;
        let rel = Self::rel(&t, id)?;
        self.upper.remove_xattr(&rel, OsStr::from_bytes(name))
    }

    /// The upper filesystem's space, as statfs reports it.
    pub fn statfs(&self) -> UpperResult<StatVfs> {
        rustix::fs::fstatvfs(self.upper.root_fd())
    }
}
