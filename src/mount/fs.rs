//! The FUSE filesystem: a thin client of [`Image`]. Requests are served by
//! several fuser threads at once; everything here is `&self` and shared.

use super::pagefill::{Fill, PageFill};
use super::prefetch::{Prefetcher, Stream};
use crate::error::{Error, ErrorKind};
use crate::format::dir::DirEntry;
use crate::format::inode::{FileType, Inode, InodeData};
use crate::format::metadata::MetaRef;
use crate::reader::{Chunk, FileReader, Image};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request,
};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The image never changes while mounted: let the kernel cache entries and
/// attributes for a long time.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// Errors logged at most once per image offset; the set stops growing here.
const MAX_LOGGED: usize = 1000;

/// What the idle timer and the signal handler need to know.
#[derive(Default)]
pub struct Activity {
    /// Open files and directories.
    pub open: AtomicUsize,
    /// Seconds since the epoch of the last request.
    pub last: AtomicU64,
}

impl Activity {
    pub fn touch(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last.store(now, Ordering::Relaxed);
    }
}

struct OpenFile {
    file: Arc<FileReader>,
    stream: Stream,
}

struct OpenDir {
    parent: u64,
    items: Vec<DirEntry>,
}

/// One slot of a directory listing as FUSE sees it: ".", "..", then the
/// stored entries. Offsets handed out: 1 after ".", 2 after "..", k + 3
/// after item k.
enum Slot<'a> {
    Dot,
    DotDot,
    Item(&'a DirEntry),
}

pub struct SqFs {
    img: Arc<Image>,
    /// Image inode number shown as FUSE node 1 (the root, or `subdir`).
    root_number: u32,
    /// Where each inode number seen so far lives, for images without an
    /// export table (with one, the table is asked instead).
    refs: RwLock<HashMap<u32, MetaRef>>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<OpenDir>>>,
    next_fh: AtomicU64,
    uid: Option<u32>,
    gid: Option<u32>,
    pub activity: Arc<Activity>,
    /// Pushes whole blocks into the page cache (started once mounted).
    pub page_fill: Arc<PageFill>,
    /// Decodes the blocks sequential readers reach next (started once mounted).
    pub prefetch: Arc<Prefetcher>,
    logged: Mutex<HashSet<u64>>,
    debug: bool,
}

fn kind(t: FileType) -> fuser::FileType {
    match t {
        FileType::Dir => fuser::FileType::Directory,
        FileType::File => fuser::FileType::RegularFile,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::BlockDev => fuser::FileType::BlockDevice,
        FileType::CharDev => fuser::FileType::CharDevice,
        FileType::Fifo => fuser::FileType::NamedPipe,
        FileType::Socket => fuser::FileType::Socket,
    }
}

impl SqFs {
    pub fn new(
        img: Arc<Image>,
        root: (Inode, MetaRef),
        uid: Option<u32>,
        gid: Option<u32>,
        debug: bool,
    ) -> Self {
        let mut refs = HashMap::new();
        refs.insert(root.0.number, root.1);
        SqFs {
            img,
            root_number: root.0.number,
            refs: RwLock::new(refs),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            uid,
            gid,
            activity: Arc::new(Activity::default()),
            page_fill: Arc::new(PageFill::default()),
            prefetch: Arc::new(Prefetcher::default()),
            logged: Mutex::new(HashSet::new()),
            debug,
        }
    }

    /// The image served.
    pub fn image(&self) -> Arc<Image> {
        self.img.clone()
    }

    /// FUSE node ids are image inode numbers, except that the root (node 1)
    /// swaps places with whatever inode has number 1.
    fn node_of(&self, number: u32) -> u64 {
        if number == self.root_number {
            1
        } else if number == 1 {
            u64::from(self.root_number)
        } else {
            u64::from(number)
        }
    }

    fn number_of(&self, node: INodeNo) -> Option<u32> {
        let n = u32::try_from(node.0).ok()?;
        Some(if n == 1 {
            self.root_number
        } else if n == self.root_number {
            1
        } else {
            n
        })
    }

    /// Maps a library error to the errno for the request, logging damage
    /// to the image once per offset.
    fn fail(&self, op: &str, e: Error) -> Errno {
        if matches!(
            e.kind,
            ErrorKind::Corrupt | ErrorKind::Io | ErrorKind::Unsupported
        ) {
            let key = e.offset.unwrap_or(u64::MAX);
            let mut logged = self.logged.lock();
            if logged.len() < MAX_LOGGED && logged.insert(key) {
                eprintln!("sqfuse: {op}: {}", crate::error::Report(&e));
            }
        }
        Errno::from_i32(e.errno())
    }

    fn inode(&self, node: INodeNo) -> Result<(Inode, MetaRef), Errno> {
        let number = self.number_of(node).ok_or(Errno::ENOENT)?;
        let known = self.refs.read().get(&number).copied();
        let r = match known {
            Some(r) => r,
            None if self.img.has_export_table() => self
                .img
                .inode_ref_by_number(number)
                .map_err(|e| self.fail("inode", e))?,
            None => return Err(Errno::ENOENT),
        };
        let i = self.img.inode(r).map_err(|e| self.fail("inode", e))?;
        if i.number != number {
            let at = self.img.sb.inode_table_start + r.block();
            return Err(self.fail(
                "inode",
                Error::corrupt(at, format!("inode {number} is stored as {}", i.number)),
            ));
        }
        Ok((i, r))
    }

    /// Records where inode `number` lives. With an export table the image
    /// answers that itself, so the map (the one structure that grows with the
    /// image rather than the caches) stays empty but for the root.
    fn remember(&self, number: u32, r: MetaRef) {
        if self.img.has_export_table() {
            return;
        }
        if self.refs.read().get(&number) != Some(&r) {
            self.refs.write().insert(number, r);
        }
    }

    fn attr(&self, i: &Inode) -> Result<FileAttr, Errno> {
        let uid = match self.uid {
            Some(u) => u,
            None => self.img.uid(i).map_err(|e| self.fail("getattr", e))?,
        };
        let gid = match self.gid {
            Some(g) => g,
            None => self.img.gid(i).map_err(|e| self.fail("getattr", e))?,
        };
        let size = i.size();
        // As the kernel driver computes i_blocks: 512-byte units of the
        // non-sparse part of regular files, plus the xattr list's size.
        let mut blocks = match &i.data {
            InodeData::File(f) => {
                let stored = f.size.saturating_sub(f.sparse);
                if stored == 0 {
                    0
                } else {
                    ((stored - 1) >> 9) + 1
                }
            }
            _ => 0,
        };
        if i.xattr.is_some() {
            let xs = self
                .img
                .xattr_size(i)
                .map_err(|e| self.fail("getattr", e))?;
            blocks += u64::from(xs.wrapping_sub(1) >> 9) + 1;
        }
        let t = UNIX_EPOCH + Duration::from_secs(u64::from(i.mtime));
        Ok(FileAttr {
            ino: INodeNo(self.node_of(i.number)),
            size,
            blocks,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: kind(i.file_type()),
            perm: i.perm & 0o7777,
            nlink: i.nlink,
            uid,
            gid,
            rdev: i.rdev(),
            blksize: 4096,
            flags: 0,
        })
    }

    fn fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn log(&self, what: std::fmt::Arguments<'_>) {
        if self.debug {
            eprintln!("sqfuse: {what}");
        }
    }

    /// The attributes of what directory entry `e` names (remembered, for
    /// images without an export table).
    fn entry_attr(&self, op: &str, e: &DirEntry) -> Result<FileAttr, Errno> {
        let i = self.img.entry_inode(e).map_err(|err| self.fail(op, err))?;
        self.remember(i.number, e.inode_ref);
        self.attr(&i)
    }

    /// The loop readdir and readdirplus share: hands `add` each slot from
    /// `offset` on with the offset after it, until `add` says the reply is
    /// full. An error on the first slot fails the request; a later one ends
    /// the reply early (the kernel asks again from there).
    fn fill_dir(
        &self,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(Slot<'_>, u64) -> Result<bool, Errno>,
    ) -> Result<(), Errno> {
        let d = self.dirs.lock().get(&fh.0).cloned().ok_or(Errno::EBADF)?;
        for next in offset..d.items.len() as u64 + 2 {
            let slot = match next {
                0 => Slot::Dot,
                1 => Slot::DotDot,
                k => Slot::Item(&d.items[(k - 2) as usize]),
            };
            match add(slot, next + 1) {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) if next == offset => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn dir_parent(&self, fh: FileHandle) -> u64 {
        self.dirs.lock().get(&fh.0).map_or(1, |d| d.parent)
    }
}

impl Filesystem for SqFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        for cap in [
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_MAX_PAGES,
        ] {
            // A kernel without one of these still works, just slower.
            let _ = config.add_capabilities(cap);
        }
        if let Err(max) = config.set_max_readahead(1 << 20) {
            let _ = config.set_max_readahead(max);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.activity.touch();
        self.log(format_args!("lookup parent={} name={name:?}", parent.0));
        let result = (|| {
            let (dir, _) = self.inode(parent)?;
            if !dir.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let e = self
                .img
                .lookup(&dir, name.as_bytes())
                .map_err(|e| self.fail("lookup", e))?
                .ok_or(Errno::ENOENT)?;
            self.entry_attr("lookup", &e)
        })();
        match result {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.activity.touch();
        self.log(format_args!("getattr ino={}", ino.0));
        match self.inode(ino).and_then(|(i, _)| self.attr(&i)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.activity.touch();
        match self.inode(ino) {
            Ok((
                Inode {
                    data: InodeData::Symlink(t),
                    ..
                },
                _,
            )) => reply.data(&t),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.activity.touch();
        self.log(format_args!("open ino={}", ino.0));
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let result = (|| {
            let (i, _) = self.inode(ino)?;
            if !matches!(i.data, InodeData::File(_)) {
                return Err(Errno::EISDIR);
            }
            let file = self.img.open_file(&i).map_err(|e| self.fail("open", e))?;
            Ok(Arc::new(OpenFile {
                file: Arc::new(file),
                stream: Stream::default(),
            }))
        })();
        match result {
            Ok(f) => {
                let fh = self.fh();
                self.files.lock().insert(fh, f);
                self.activity.open.fetch_add(1, Ordering::Relaxed);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.activity.touch();
        self.log(format_args!("read ino={} off={offset} size={size}", ino.0));
        let Some(f) = self.files.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let len = f.file.size().saturating_sub(offset).min(u64::from(size)) as usize;
        let bs = u64::from(self.img.block_size());
        let sequential =
            self.prefetch
                .on_read(&f.stream, &f.file, (offset, offset + len as u64), bs);
        let first = match self.img.read_vec(&f.file, offset, len) {
            Ok((buf, first)) => {
                reply.data(&buf);
                first
            }
            Err(e) => return reply.error(self.fail("read", e)),
        };
        // After the reply, offer the whole first block (already decompressed
        // for this read) to the page cache, as the kernel driver keeps it.
        // Not for a sequential stream: the kernel's read-ahead asks for the
        // rest of the block anyway (the push cost 4% of a 1 GiB 'cat | wc').
        if sequential {
            return;
        }
        if let Some(Chunk::Shared(data, a, b)) = first {
            self.page_fill.push(Fill {
                ino: ino.0,
                offset: offset / bs * bs,
                data,
                a,
                b,
            });
        }
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
        self.activity.touch();
        if self.files.lock().remove(&fh.0).is_some() {
            self.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.activity.touch();
        self.log(format_args!("opendir ino={}", ino.0));
        let result = (|| {
            let (dir, _) = self.inode(ino)?;
            let InodeData::Dir(d) = &dir.data else {
                return Err(Errno::ENOTDIR);
            };
            let parent = if dir.number == self.root_number {
                1
            } else {
                self.node_of(d.parent)
            };
            let items = self
                .img
                .read_dir(&dir)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.fail("opendir", e))?;
            Ok(Arc::new(OpenDir { parent, items }))
        })();
        match result {
            Ok(d) => {
                let fh = self.fh();
                self.dirs.lock().insert(fh, d);
                self.activity.open.fetch_add(1, Ordering::Relaxed);
                reply.opened(
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
                );
            }
            Err(e) => reply.error(e),
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
        self.activity.touch();
        self.log(format_args!("readdir ino={} off={offset}", ino.0));
        let parent = INodeNo(self.dir_parent(fh));
        let result = self.fill_dir(fh, offset, |slot, next| {
            Ok(match slot {
                Slot::Dot => reply.add(ino, next, fuser::FileType::Directory, "."),
                Slot::DotDot => reply.add(parent, next, fuser::FileType::Directory, ".."),
                Slot::Item(e) => reply.add(
                    INodeNo(self.node_of(e.inode_number)),
                    next,
                    kind(e.file_type),
                    OsStr::from_bytes(&e.name),
                ),
            })
        });
        match result {
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
        self.activity.touch();
        self.log(format_args!("readdirplus ino={} off={offset}", ino.0));
        let parent = INodeNo(self.dir_parent(fh));
        let result = self.fill_dir(fh, offset, |slot, next| {
            let (name, attr) = match slot {
                Slot::Dot => (
                    OsStr::new("."),
                    self.inode(ino).and_then(|(i, _)| self.attr(&i))?,
                ),
                Slot::DotDot => (
                    OsStr::new(".."),
                    self.inode(parent).and_then(|(i, _)| self.attr(&i))?,
                ),
                Slot::Item(e) => (
                    OsStr::from_bytes(&e.name),
                    self.entry_attr("readdirplus", e)?,
                ),
            };
            Ok(reply.add(attr.ino, next, name, &TTL, &attr, Generation(0)))
        });
        match result {
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
        self.activity.touch();
        if self.dirs.lock().remove(&fh.0).is_some() {
            self.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.activity.touch();
        let sb = &self.img.sb;
        // As the kernel driver reports it: blocks of the used size, nothing free.
        let blocks = sb.bytes_used.saturating_sub(1) / u64::from(sb.block_size) + 1;
        reply.statfs(
            blocks,
            0,
            0,
            u64::from(sb.inode_count),
            0,
            sb.block_size,
            crate::format::dir::MAX_NAME as u32,
            sb.block_size,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.activity.touch();
        self.log(format_args!(
            "getxattr ino={} name={name:?} size={size}",
            ino.0
        ));
        let result = self
            .inode(ino)
            .and_then(|(i, _)| self.img.xattrs(&i).map_err(|e| self.fail("getxattr", e)));
        match result {
            Ok(list) => match list.into_iter().find(|x| x.name == name.as_bytes()) {
                None => reply.error(Errno::NO_XATTR),
                Some(x) if size == 0 => reply.size(x.value.len() as u32),
                Some(x) if x.value.len() > size as usize => reply.error(Errno::ERANGE),
                Some(x) => reply.data(&x.value),
            },
            Err(e) => reply.error(e),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.activity.touch();
        let result = self
            .inode(ino)
            .and_then(|(i, _)| self.img.xattrs(&i).map_err(|e| self.fail("listxattr", e)));
        match result {
            Ok(list) => {
                let mut names = Vec::new();
                for x in list {
                    names.extend_from_slice(&x.name);
                    names.push(0);
                }
                if size == 0 {
                    reply.size(names.len() as u32);
                } else if names.len() > size as usize {
                    reply.error(Errno::ERANGE);
                } else {
                    reply.data(&names);
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.activity.touch();
        if mask.contains(AccessFlags::W_OK) {
            return reply.error(Errno::EROFS);
        }
        match self.inode(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
