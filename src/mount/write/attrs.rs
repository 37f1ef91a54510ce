//! What a writable mount tells the kernel about a node: the upper's own
//! stat, or the lower node's attributes as a read-only mount gives them.

pub(crate) use crate::mount::fs::kind;
use crate::mount::fs::SqFs;
use crate::view::writable::{sq_type, Attrs, Found};
use fuser::{Errno, FileAttr, INodeNo};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The request's errno for a system call's.
pub fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_i32(e.raw_os_error())
}

fn time(secs: i64, nanos: i64) -> SystemTime {
    let nanos = nanos.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::new(0, nanos)
    }
}

/// The attributes of `f`, numbered as the view numbers it.
pub fn file_attr(f: &Found, ro: &SqFs) -> Result<FileAttr, Errno> {
    match &f.attrs {
        Attrs::Lower(n) => {
            let mut a = ro.attr(n)?;
            a.ino = INodeNo(f.id);
            Ok(a)
        }
        Attrs::Upper { st, owner, merged } => {
            let (mut uid, mut gid, mut perm) = (st.st_uid, st.st_gid, st.st_mode & 0o7777);
            if let Some(o) = owner {
                (uid, gid, perm) = (o.uid, o.gid, o.mode);
            }
            let (uid, gid) = ro.shown_owner(uid, gid);
            let nlink = if *merged { 1 } else { st.st_nlink as u32 };
            Ok(FileAttr {
                ino: INodeNo(f.id),
                size: st.st_size as u64,
                blocks: st.st_blocks as u64,
                atime: time(st.st_atime, st.st_atime_nsec as i64),
                mtime: time(st.st_mtime, st.st_mtime_nsec as i64),
                ctime: time(st.st_ctime, st.st_ctime_nsec as i64),
                crtime: time(st.st_ctime, st.st_ctime_nsec as i64),
                kind: kind(sq_type(st.st_mode)),
                perm: perm as u16,
                nlink,
                uid,
                gid,
                rdev: st.st_rdev as u32,
                blksize: st.st_blksize as u32,
                flags: 0,
            })
        }
    }
}
