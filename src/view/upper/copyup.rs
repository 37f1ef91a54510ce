//! Copy-up: one entry of the lower layers made an entry of the upper
//! directory, with its data streamed from the image (never read back
//! through a mount) and its metadata kept: mode, owner, times, xattrs.
//!
//! A regular file is written into a temporary that is invisible until it
//! is complete (see [`UpperDir::temp_file`]): a copy-up cut short by a
//! full disk or a kill never shows as a half file.

use super::{UpperDir, UpperResult};
use crate::format::inode::{FileType as SqType, InodeData};
use crate::reader::data::Chunk;
use crate::view::{Node, View};
use rustix::fs::{FileType, Mode, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn lower_errno(e: crate::error::Error) -> Errno {
    Errno::from_raw_os_error(e.errno())
}

/// What the lower entry's metadata says, read once.
struct Meta {
    uid: u32,
    gid: u32,
    perm: u32,
    mtime: i64,
    xattrs: Vec<crate::format::xattr::Xattr>,
}

fn meta(lower: &dyn View, n: &Node) -> UpperResult<Meta> {
    let img = lower.image(n);
    Ok(Meta {
        uid: img.uid(&n.inode).map_err(lower_errno)?,
        gid: img.gid(&n.inode).map_err(lower_errno)?,
        perm: u32::from(n.inode.perm) & 0o7777,
        mtime: i64::from(n.inode.mtime),
        xattrs: lower.xattrs(n).map_err(lower_errno)?,
    })
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Sets owner, mode, xattrs and times on the new upper entry `rel` (owner
/// first: a chown clears setuid bits, which the mode then restores).
/// xattrs the upper refuses (a namespace this server may not write) are
/// left out, as overlayfs leaves them out.
fn apply_meta(upper: &UpperDir, rel: &Path, m: &Meta, symlink: bool) -> UpperResult<()> {
    upper.set_owner(rel, Some(m.uid), Some(m.gid))?;
    if !symlink {
        upper.set_mode(rel, m.perm)?;
    }
    for x in &m.xattrs {
        match upper.set_xattr(
            rel,
            OsStr::from_bytes(&x.name),
            &x.value,
            XattrFlags::empty(),
        ) {
            Ok(()) | Err(Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    upper.set_times(rel, &times(m.mtime))
}

/// [`apply_meta`] on a file not yet named.
fn apply_meta_fd(upper: &UpperDir, fd: &OwnedFd, m: &Meta) -> UpperResult<()> {
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(m.uid),
        rustix::fs::Gid::from_raw(m.gid),
    );
    match rustix::fs::fchown(fd, Some(uid), Some(gid)) {
        Err(Errno::PERM | Errno::INVAL) if !upper.privileged() => {
            let o = super::OverrideStat {
                uid: m.uid,
                gid: m.gid,
                mode: m.perm,
            };
            rustix::fs::fsetxattr(
                fd,
                super::OVERRIDE_STAT,
                o.encode().as_bytes(),
                XattrFlags::empty(),
            )?;
        }
        other => other?,
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(m.perm))?;
    for x in &m.xattrs {
        match rustix::fs::fsetxattr(
            fd,
            OsStr::from_bytes(&x.name),
            &x.value,
            XattrFlags::empty(),
        ) {
            Ok(()) | Err(Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    rustix::fs::futimens(fd, &times(m.mtime))
}

/// Streams the lower file's data into `fd`, leaving zero pieces as holes.
/// Each block is written from the reader's own buffer: no copy between.
fn copy_data(lower: &dyn View, n: &Node, fd: &OwnedFd) -> UpperResult<()> {
    let img = lower.image(n);
    let file = img.open_file(&n.inode).map_err(lower_errno)?;
    let size = file.size();
    rustix::fs::ftruncate(fd, size)?;
    let mut off = 0u64;
    let mut failed = None;
    img.for_each_chunk(&file, |chunk| {
        let data = match chunk {
            Chunk::Zeros(k) => {
                off += *k as u64;
                return Ok(());
            }
            Chunk::Shared(v, a, b) => &v[*a..*b],
        };
        if let Err(e) = write_all_at(fd, data, off) {
            failed = Some(e);
            return Err(crate::error::Error::invalid("copy-up write failed"));
        }
        off += data.len() as u64;
        Ok(())
    })
    .map_err(|e| failed.take().unwrap_or_else(|| lower_errno(e)))?;
    if off != size {
        return Err(Errno::IO);
    }
    Ok(())
}

/// Writes `data` at `off` unless it is all zeros (left a hole).
fn write_all_at(fd: &OwnedFd, data: &[u8], off: u64) -> UpperResult<()> {
    if data.iter().all(|b| *b == 0) {
        return Ok(());
    }
    let mut done = 0;
    while done < data.len() {
        match rustix::io::pwrite(fd, &data[done..], off + done as u64) {
            Ok(0) => return Err(Errno::NOSPC),
            Ok(k) => done += k,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies the lower entry `n` to `rel` in the upper (whose parent exists
/// there, and which does not). A directory is made empty: its entries stay
/// in the lower layers and merge below it.
pub fn copy_up(upper: &UpperDir, lower: &dyn View, n: &Node, rel: &Path) -> UpperResult<()> {
    let m = meta(lower, n)?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    match n.inode.file_type() {
        SqType::Dir => {
            upper.mkdir(rel, 0o700)?;
            let r = apply_meta(upper, rel, &m, false);
            if r.is_err() {
                let _ = upper.rmdir(rel);
            }
            r
        }
        SqType::File => {
            let (fd, temp) = upper.temp_file(parent)?;
            // The temporary gets its data and metadata before its name.
            let r = copy_data(lower, n, &fd)
                .and_then(|()| apply_meta_fd(upper, &fd, &m))
                .and_then(|()| upper.publish(&fd, temp.as_deref(), rel));
            if r.is_err() {
                upper.discard(temp.as_deref());
            }
            r
        }
        SqType::Symlink => {
            let InodeData::Symlink(target) = &n.inode.data else {
                return Err(Errno::IO);
            };
            upper.symlink(OsStr::from_bytes(target), rel)?;
            let r = apply_meta(upper, rel, &m, true);
            if r.is_err() {
                let _ = upper.unlink(rel);
            }
            r
        }
        t => {
            let ft = match t {
                SqType::CharDev => FileType::CharacterDevice,
                SqType::BlockDev => FileType::BlockDevice,
                SqType::Fifo => FileType::Fifo,
                _ => FileType::Socket,
            };
            let (major, minor) = crate::format::inode::rdev_split(n.inode.rdev());
            let dev = rustix::fs::makedev(major, minor);
            upper.mknod(rel, ft, 0o600, dev)?;
            let r = apply_meta(upper, rel, &m, false);
            if r.is_err() {
                let _ = upper.unlink(rel);
            }
            r
        }
    }
}
