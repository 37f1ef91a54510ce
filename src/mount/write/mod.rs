//! The FUSE filesystem of a writable mount: a thin client of a
//! [`WritableView`]. Each request is one call of the view; reads of files
//! the upper does not hold go to the read-only server ([`SqFs`]) of the
//! lower layers, so they cost what they cost in a read-only mount
//! (its caches, prefetch and page-cache pushes included).

mod attrs;
mod helpers;

use helpers::{fail, open_flags, time_set};

use super::fs::SqFs;
use crate::view::writable::ops::{NewEntry, SetAttr};
use crate::view::writable::{Found, MergedListing, Opened, Owner};
use crate::view::WritableView;
use attrs::kind;
use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use rustix::fs::{FileType, OFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Entries and attributes change: the kernel asks again after this. Every
/// change comes through this server, which the kernel sees, so a second
/// is for what it cannot see (a copy-up's new ctime, other names' link
/// counts).
const TTL: Duration = Duration::from_secs(1);

/// An open file: the lower layers' (read through the read-only server) or
/// the upper's descriptor.
enum Handle {
    Lower,
    Upper(OwnedFd, u64),
}

/// A writable mount's requests.
pub struct WritableFs {
    view: Arc<WritableView>,
    /// The lower layers' server: attributes and data of lower nodes.
    ro: SqFs,
    files: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<MergedListing>>>,
    next_fh: AtomicU64,
}

impl Filesystem for WritableFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_MAX_PAGES,
            InitFlags::FUSE_BIG_WRITES,
        ] {
            let _ = config.add_capabilities(cap);
        }
        if let Err(max) = config.set_max_readahead(1 << 20) {
            let _ = config.set_max_readahead(max);
        }
        if let Err(max) = config.set_max_write(1 << 20) {
            let _ = config.set_max_write(max);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.view.lookup(parent.0, name.as_bytes()) {
            Ok(Some(f)) => self.entry(Ok(f), reply),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let found = self.view.attrs(ino.0).or_else(|e| {
            // A node without a name left (unlinked while open) has only its
            // descriptors: the request's, or any other open one.
            let h = fh
                .and_then(|fh| self.handle(fh))
                .or_else(|| self.open_upper(ino.0));
            match h.as_deref() {
                Some(Handle::Upper(fd, _)) => Found::of_open_file(ino.0, fd),
                _ => Err(e),
            }
        });
        match found.map_err(fail).and_then(|f| self.attr_of(&f)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let a = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: time_set(atime),
            mtime: time_set(mtime),
        };
        let h = fh
            .and_then(|fh| self.handle(fh))
            .or_else(|| self.open_upper(ino.0));
        let fd = match h.as_deref() {
            Some(Handle::Upper(fd, _)) => Some(fd),
            _ => None,
        };
        let r = self.view.set_attr(ino.0, a, fd);
        match r.map_err(fail).and_then(|f| self.attr_of(&f)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.view.readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let perm = mode & 0o7777 & !umask;
        let file_type = FileType::from_raw_mode(mode);
        let what = match file_type {
            FileType::RegularFile => NewEntry::File {
                flags: OFlags::WRONLY,
            },
            FileType::CharacterDevice
            | FileType::BlockDevice
            | FileType::Fifo
            | FileType::Socket => {
                let (major, minor) = crate::format::inode::rdev_split(rdev);
                NewEntry::Special {
                    file_type,
                    rdev: rustix::fs::makedev(major, minor),
                }
            }
            _ => return reply.error(Errno::EINVAL),
        };
        self.make(req, parent, name, perm, what, reply)
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.make(
            req,
            parent,
            name,
            mode & 0o7777 & !umask,
            NewEntry::Dir,
            reply,
        )
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.view.unlink(parent.0, name.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.view.rmdir(parent.0, name.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let target = target.as_os_str().as_bytes();
        self.make(
            req,
            parent,
            link_name,
            0o777,
            NewEntry::Symlink(target),
            reply,
        )
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
            // RENAME_EXCHANGE and RENAME_WHITEOUT are not offered.
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self.view.rename(
            parent.0,
            name.as_bytes(),
            newparent.0,
            newname.as_bytes(),
            noreplace,
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = self.view.link(ino.0, newparent.0, newname.as_bytes());
        self.entry(r, reply)
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let h = if flags.acc_mode() == OpenAccMode::O_RDONLY && flags.0 & libc::O_TRUNC == 0 {
            match self.view.open_read(ino.0) {
                Ok(Opened::Lower(_)) => Handle::Lower,
                Ok(Opened::Upper(fd)) => Handle::Upper(fd, ino.0),
                Err(e) => return reply.error(fail(e)),
            }
        } else {
            match self.view.open_write(ino.0, open_flags(flags.0)) {
                Ok(fd) => Handle::Upper(fd, ino.0),
                Err(e) => return reply.error(fail(e)),
            }
        };
        let fh = self.fh();
        self.files.lock().insert(fh, Arc::new(h));
        self.ro.activity.open.fetch_add(1, Ordering::Relaxed);
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        match &*h {
            Handle::Lower => self.ro.read(
                req,
                ino,
                FileHandle(0),
                offset,
                size,
                flags,
                lock_owner,
                reply,
            ),
            Handle::Upper(fd, _) => {
                let mut buf = vec![0u8; size as usize];
                let mut got = 0;
                while got < buf.len() {
                    match rustix::io::pread(fd, &mut buf[got..], offset + got as u64) {
                        Ok(0) => break,
                        Ok(k) => got += k,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return reply.error(fail(e)),
                    }
                }
                reply.data(&buf[..got])
            }
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let h = match self.upper_fd(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Handle::Upper(fd, _) = &*h else {
            return reply.error(Errno::EBADF);
        };
        let mut done = 0;
        while done < data.len() {
            match rustix::io::pwrite(fd, &data[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(k) => done += k,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) if done == 0 => return reply.error(fail(e)),
                Err(_) => break,
            }
        }
        reply.written(done as u32)
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Writes reach the upper file as they come and locks are the
        // kernel's: nothing to do at close. ENOSYS stops the kernel asking.
        reply.error(Errno::ENOSYS)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        if self.files.lock().remove(&fh.0).is_some() {
            self.ro.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok()
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let Some(h) = self.handle(fh) else {
            return reply.error(Errno::EBADF);
        };
        let r = match &*h {
            Handle::Lower => Ok(()),
            Handle::Upper(fd, _) if datasync => rustix::fs::fdatasync(fd),
            Handle::Upper(fd, _) => rustix::fs::fsync(fd),
        };
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.view.list(ino.0) {
            Ok(l) => {
                let fh = self.fh();
                self.dirs.lock().insert(fh, Arc::new(l));
                self.ro.activity.open.fetch_add(1, Ordering::Relaxed);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(fail(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(d) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let r = self.fill_dir(
            &d,
            offset,
            |item, name, id, next| {
                let k = item.map_or(fuser::FileType::Directory, |i| kind(i.file_type));
                Ok(reply.add(INodeNo(id), next, k, OsStr::from_bytes(name)))
            },
            ino.0,
        );
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let Some(d) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let r = self.fill_dir(
            &d,
            offset,
            |_, name, id, next| {
                let f = self.view.attrs(id).map_err(fail)?;
                let a = self.attr_of(&f)?;
                Ok(reply.add(
                    INodeNo(id),
                    next,
                    OsStr::from_bytes(name),
                    &TTL,
                    &a,
                    Generation(0),
                ))
            },
            ino.0,
        );
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        if self.dirs.lock().remove(&fh.0).is_some() {
            self.ro.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match rustix::fs::fsync(self.view.upper().root_fd()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.view.statfs() {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self
            .view
            .set_xattr(ino.0, name.as_bytes(), value, flags as u32)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let v = if ino.0 == crate::view::ROOT_ID
            && name.as_bytes() == super::fs::STATS_XATTR.as_bytes()
        {
            Ok(Some(self.ro.stats().into_bytes()))
        } else {
            self.view.get_xattr(ino.0, name.as_bytes())
        };
        match v {
            Ok(None) => reply.error(Errno::NO_XATTR),
            Ok(Some(v)) if size == 0 => reply.size(v.len() as u32),
            Ok(Some(v)) if v.len() > size as usize => reply.error(Errno::ERANGE),
            Ok(Some(v)) => reply.data(&v),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.view.list_xattrs(ino.0) {
            Ok(list) => {
                let mut names = Vec::new();
                for n in list {
                    names.extend_from_slice(&n);
                    names.push(0);
                }
                if size == 0 {
                    reply.size(names.len() as u32)
                } else if names.len() > size as usize {
                    reply.error(Errno::ERANGE)
                } else {
                    reply.data(&names)
                }
            }
            Err(e) => reply.error(fail(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.view.remove_xattr(ino.0, name.as_bytes()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // default_permissions: the kernel checks modes itself.
        match self.view.attrs(ino.0) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let who = Owner {
            uid: req.uid(),
            gid: req.gid(),
        };
        let what = NewEntry::File {
            flags: open_flags(flags),
        };
        let r = self
            .view
            .create(parent.0, name.as_bytes(), mode & 0o7777 & !umask, who, what);
        let (found, fd) = match r {
            Ok((f, Some(fd))) => (f, fd),
            Ok((_, None)) => return reply.error(Errno::EIO),
            Err(e) => return reply.error(fail(e)),
        };
        match self.attr_of(&found) {
            Ok(a) => {
                let fh = self.fh();
                self.files
                    .lock()
                    .insert(fh, Arc::new(Handle::Upper(fd, found.id)));
                self.ro.activity.open.fetch_add(1, Ordering::Relaxed);
                reply.created(
                    &TTL,
                    &a,
                    Generation(0),
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE,
                )
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let h = match self.upper_fd(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let Handle::Upper(fd, _) = &*h else {
            return reply.error(Errno::EBADF);
        };
        let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
        match rustix::fs::fallocate(fd, flags, offset, length) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail(e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let (Ok(a), Ok(b)) = (self.upper_fd(fh_in), self.upper_fd(fh_out)) else {
            // From the lower layers: the kernel copies through read and write.
            return reply.error(Errno::EXDEV);
        };
        let (Handle::Upper(fi, _), Handle::Upper(fo, _)) = (&*a, &*b) else {
            return reply.error(Errno::EXDEV);
        };
        let (mut oi, mut oo) = (offset_in, offset_out);
        let len = len.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(fi, Some(&mut oi), fo, Some(&mut oo), len) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(fail(e)),
        }
    }
}
