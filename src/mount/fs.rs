//! The FUSE filesystem: a thin client of a [`View`]. Requests are served by
//! several fuser threads at once; everything here is `&self` and shared.

use super::fill_ahead::FillAhead;
use super::pagefill::{Fill, PageFill};
use super::prefetch::{Prefetcher, Stream};
use super::preload::PreloadStats;
use super::record::Recorder;
use crate::error::{Error, ErrorKind};
use crate::format::inode::{FileType, Inode, InodeData};
use crate::reader::{Chunk, FileReader, Image, PlacedChunk};
use crate::view::{Entry, Listing, Node, View, ROOT_ID};
use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyXattr,
    Request,
};
use parking_lot::Mutex;
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
    /// The layer the file's data is in.
    img: Arc<Image>,
    file: Arc<FileReader>,
    stream: Stream,
}

struct OpenDir {
    listing: Arc<Listing>,
}

/// One slot of a directory listing as FUSE sees it: ".", "..", then the
/// view's entries. Offsets handed out: 1 after ".", 2 after "..", k + 3
/// after item k.
enum Slot<'a> {
    Dot,
    DotDot,
    Item(&'a Entry),
}

pub struct SqFs {
    view: Arc<dyn View>,
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
    /// Pushes the files listed after a file read (started once mounted).
    pub fill_ahead: Arc<FillAhead>,
    logged: Mutex<HashSet<(u64, String)>>,
    debug: bool,
    /// The kernel opens files and directories without asking
    /// (FUSE_NO_OPEN_SUPPORT, FUSE_NO_OPENDIR_SUPPORT, set at init): reads
    /// and listings then come with handle 0 and are served by node.
    no_open: bool,
    /// Offer the kernel's no-open modes (off when the idle timer must count
    /// open files).
    pub want_no_open: bool,
    /// Files and listings served by node, for handle-less requests. A
    /// bounded memo: cleared when full (entries are cheap to make again).
    implicit_files: Mutex<Memo<OpenFile>>,
    implicit_dirs: Mutex<Memo<OpenDir>>,
    /// Requests answered, by type (see [`OPS`]).
    counts: [AtomicU64; OPS.len()],
    /// `-o record=`: notes what the run reads.
    pub recorder: Option<Arc<Recorder>>,
    /// `-o preload=` (or the image's own profile), checked against the images.
    pub preload: Option<Arc<crate::profile::Profile>>,
    /// `-o preload=`: what the replay has done.
    pub preload_stats: Arc<PreloadStats>,
    /// A one-image mount's image, named in what is logged (a layered
    /// view names the layer itself).
    pub image_name: Option<String>,
}

/// What handle `fh` holds, or for handle 0 what the memo keeps for node
/// `ino` (made by `make` when missing; the memo is cleared when full).
fn by_handle_or_node<T: Footprint>(
    handles: &Mutex<HashMap<u64, Arc<T>>>,
    memo: &Mutex<Memo<T>>,
    ino: INodeNo,
    fh: FileHandle,
    make: impl FnOnce() -> Result<Arc<T>, Errno>,
) -> Result<Arc<T>, Errno> {
    if fh.0 != 0 {
        return handles.lock().get(&fh.0).cloned().ok_or(Errno::EBADF);
    }
    if let Some(x) = memo.lock().map.get(&ino.0) {
        return Ok(x.clone());
    }
    let x = make()?;
    Ok(memo.lock().insert(ino.0, x))
}

/// Files or listings kept per node for handle-less requests, bounded in
/// count and in memory: cleared when full (entries are cheap to make again).
struct Memo<T> {
    map: HashMap<u64, Arc<T>>,
    bytes: usize,
}

impl<T: Footprint> Memo<T> {
    fn new() -> Self {
        Memo {
            map: HashMap::new(),
            bytes: 0,
        }
    }

    /// Keeps `x` for `ino` unless another thread got there first; returns
    /// the one kept.
    fn insert(&mut self, ino: u64, x: Arc<T>) -> Arc<T> {
        if let Some(old) = self.map.get(&ino) {
            return old.clone();
        }
        let cost = x.footprint();
        if self.map.len() >= MAX_IMPLICIT || self.bytes + cost > MAX_IMPLICIT_BYTES {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += cost;
        self.map.insert(ino, x.clone());
        x
    }

    fn remove(&mut self, ino: u64) {
        if let Some(x) = self.map.remove(&ino) {
            self.bytes = self.bytes.saturating_sub(x.footprint());
        }
    }
}

/// What an entry of the handle-less memo costs in memory, roughly.
trait Footprint {
    fn footprint(&self) -> usize;
}

impl Footprint for OpenFile {
    fn footprint(&self) -> usize {
        std::mem::size_of::<Self>() + 16 * self.file.chunk_count()
    }
}

impl Footprint for OpenDir {
    fn footprint(&self) -> usize {
        self.listing.footprint()
    }
}

/// Request types counted, in the order `user.sqfuse.stats` lists them.
const OPS: [&str; 14] = [
    "lookup",
    "getattr",
    "readlink",
    "open",
    "read",
    "release",
    "opendir",
    "readdir",
    "readdirplus",
    "releasedir",
    "statfs",
    "getxattr",
    "listxattr",
    "access",
];

/// Most handle-less files or listings kept, and the most memory they may
/// take (a listing of a huge directory is large), before a memo is
/// cleared. A listing also leaves once read to its end: the kernel keeps
/// it from then on (FOPEN_CACHE_DIR).
const MAX_IMPLICIT: usize = 4096;
const MAX_IMPLICIT_BYTES: usize = 16 << 20;

#[derive(Clone, Copy)]
enum Op {
    Lookup,
    Getattr,
    Readlink,
    Open,
    Read,
    Release,
    Opendir,
    Readdir,
    Readdirplus,
    Releasedir,
    Statfs,
    Getxattr,
    Listxattr,
    Access,
}

/// The kernel's name for an entry's type.
pub(crate) fn kind(t: FileType) -> fuser::FileType {
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
    pub fn new(view: Arc<dyn View>, uid: Option<u32>, gid: Option<u32>, debug: bool) -> Self {
        SqFs {
            view,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            uid,
            gid,
            activity: Arc::new(Activity::default()),
            page_fill: Arc::new(PageFill::default()),
            prefetch: Arc::new(Prefetcher::default()),
            fill_ahead: Arc::new(FillAhead::default()),
            logged: Mutex::new(HashSet::new()),
            debug,
            no_open: false,
            want_no_open: true,
            implicit_files: Mutex::new(Memo::new()),
            implicit_dirs: Mutex::new(Memo::new()),
            counts: Default::default(),
            recorder: None,
            preload: None,
            image_name: None,
            preload_stats: Arc::new(PreloadStats::default()),
        }
    }

    /// Every request starts here: the idle clock and the counters.
    fn begin(&self, op: Op) {
        self.activity.touch();
        self.counts[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters `user.sqfuse.stats` shows: requests by type, blocks
    /// the images decompressed, what a preload did.
    pub fn stats(&self) -> String {
        let mut out = String::new();
        for (name, c) in OPS.iter().zip(&self.counts) {
            out += &format!("{name} {}\n", c.load(Ordering::Relaxed));
        }
        let (mut blocks, mut bytes) = (0, 0);
        for l in self.view.layers() {
            let (b, n) = l.blocks_decompressed();
            blocks += b;
            bytes += n;
        }
        let fa = &self.fill_ahead.stats;
        out += &format!(
            "fill_ahead_files {}\nfill_ahead_bytes {}\n",
            fa.files.load(Ordering::Relaxed),
            fa.bytes.load(Ordering::Relaxed)
        );
        let p = &self.preload_stats;
        out += &format!(
            "blocks_decompressed {blocks}\nbytes_decompressed {bytes}\npreload_done {}\npreload_steps {}\npreload_bytes {}\npreload_image_bytes {}\n",
            u8::from(p.finished.load(Ordering::Relaxed)),
            p.steps.load(Ordering::Relaxed),
            p.bytes.load(Ordering::Relaxed),
            p.range_bytes.load(Ordering::Relaxed),
        );
        out
    }

    /// The open file behind a read: its handle's, or (handle 0, the kernel
    /// opened it without asking) one kept per node.
    fn file_for(&self, ino: INodeNo, fh: FileHandle) -> Result<Arc<OpenFile>, Errno> {
        by_handle_or_node(&self.files, &self.implicit_files, ino, fh, || {
            self.open_node(ino)
        })
    }

    fn open_node(&self, ino: INodeNo) -> Result<Arc<OpenFile>, Errno> {
        let n = self.node(ino)?;
        if !matches!(n.inode.data, InodeData::File(_)) {
            return Err(Errno::EISDIR);
        }
        let img = self.view.image(&n).clone();
        let file = img.open_file(&n.inode).map_err(|e| self.fail("open", e))?;
        Ok(Arc::new(OpenFile {
            img,
            file: Arc::new(file),
            stream: Stream::default(),
        }))
    }

    /// The listing behind a readdir: its handle's, or one kept per node.
    fn dir_for(&self, ino: INodeNo, fh: FileHandle) -> Result<Arc<OpenDir>, Errno> {
        by_handle_or_node(&self.dirs, &self.implicit_dirs, ino, fh, || {
            self.list_node(ino)
        })
    }

    /// The listing a readdir at `offset` continues. A handle-less one asked
    /// past its end has been read whole: the kernel caches it now, the memo
    /// need not.
    fn listing_from(
        &self,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
    ) -> Result<Arc<OpenDir>, Errno> {
        let d = self.dir_for(ino, fh)?;
        if fh.0 == 0 && offset >= d.listing.entries.len() as u64 + 2 {
            self.implicit_dirs.lock().remove(ino.0);
        }
        Ok(d)
    }

    fn list_node(&self, ino: INodeNo) -> Result<Arc<OpenDir>, Errno> {
        let dir = self.node(ino)?;
        if !dir.inode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Some(r) = &self.recorder {
            r.listed(ino.0);
        }
        let listing = self.view.list(&dir).map_err(|e| self.fail("opendir", e))?;
        Ok(Arc::new(OpenDir { listing }))
    }

    /// The view served.
    pub fn view(&self) -> Arc<dyn View> {
        self.view.clone()
    }

    /// Maps a library error to the errno for the request, logging damage
    /// to an image once per offset and message.
    fn fail(&self, op: &str, e: Error) -> Errno {
        let errno = Errno::from_i32(e.errno());
        if matches!(
            e.kind,
            ErrorKind::Corrupt | ErrorKind::Io | ErrorKind::Unsupported
        ) {
            let key = (e.offset.unwrap_or(u64::MAX), e.what.clone());
            let mut logged = self.logged.lock();
            if logged.len() < MAX_LOGGED && logged.insert(key) {
                let e = match &self.image_name {
                    Some(name) => e.within(name.clone()),
                    None => e,
                };
                eprintln!("sqfuse: {op}: {}", crate::error::Report(&e));
            }
        }
        errno
    }

    fn node(&self, ino: INodeNo) -> Result<Node, Errno> {
        self.view.node(ino.0).map_err(|e| self.fail("inode", e))
    }

    /// The owner shown for one an upper entry has (`uid=`/`gid=` win).
    pub(crate) fn shown_owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        (self.uid.unwrap_or(uid), self.gid.unwrap_or(gid))
    }

    pub(crate) fn attr(&self, n: &Node) -> Result<FileAttr, Errno> {
        let img = self.view.image(n);
        let i = &n.inode;
        let uid = match self.uid {
            Some(u) => u,
            None => img.uid(i).map_err(|e| self.fail("getattr", e))?,
        };
        let gid = match self.gid {
            Some(g) => g,
            None => img.gid(i).map_err(|e| self.fail("getattr", e))?,
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
            let xs = img.xattr_size(i).map_err(|e| self.fail("getattr", e))?;
            blocks += u64::from(xs.wrapping_sub(1) >> 9) + 1;
        }
        let t = UNIX_EPOCH + Duration::from_secs(u64::from(i.mtime));
        Ok(FileAttr {
            ino: INodeNo(n.id),
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

    /// The loop readdir and readdirplus share: hands `add` each slot from
    /// `offset` on with the offset after it, until `add` says the reply is
    /// full. An error on the first slot fails the request; a later one ends
    /// the reply early (the kernel asks again from there).
    fn fill_dir(
        &self,
        d: &OpenDir,
        offset: u64,
        mut add: impl FnMut(Slot<'_>, u64) -> Result<bool, Errno>,
    ) -> Result<(), Errno> {
        let items = &d.listing.entries;
        for next in offset..items.len() as u64 + 2 {
            let slot = match next {
                0 => Slot::Dot,
                1 => Slot::DotDot,
                k => Slot::Item(&items[(k - 2) as usize]),
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
}

/// Read on the mount's root (`getfattr -n user.sqfuse.remote MNT`): the
/// fetch and cache counters of each image read from a URL, one line per
/// layer, top first. Not listed, so the tree's own xattrs compare equal.
pub const REMOTE_STATS_XATTR: &str = "user.sqfuse.remote";

/// Read on the mount's root: requests answered by type, blocks
/// decompressed, what a preload did; one `name count` per line. Not listed.
pub const STATS_XATTR: &str = "user.sqfuse.stats";

/// The entry that tells the kernel a name is absent (node id 0).
fn negative_entry() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: fuser::FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

impl SqFs {
    fn remote_stats(&self) -> Option<String> {
        let lines: Vec<String> = self
            .view
            .layers()
            .iter()
            .filter_map(|l| l.remote_stats().map(|s| s.summary()))
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n") + "\n")
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
        // The kernel then opens files and directories by itself: two round
        // trips fewer per open on an image that never changes.
        if self.want_no_open {
            self.no_open = config
                .add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT)
                .is_ok()
                && config
                    .add_capabilities(InitFlags::FUSE_NO_OPENDIR_SUPPORT)
                    .is_ok();
        }
        if let Err(max) = config.set_max_readahead(1 << 20) {
            let _ = config.set_max_readahead(max);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.begin(Op::Lookup);
        self.log(format_args!("lookup parent={} name={name:?}", parent.0));
        let result = (|| {
            let dir = self.node(parent)?;
            if !dir.inode.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            let n = self
                .view
                .lookup(&dir, name.as_bytes())
                .map_err(|e| self.fail("lookup", e))?;
            n.map(|n| self.attr(&n)).transpose()
        })();
        if let (Some(r), Ok(a)) = (&self.recorder, &result) {
            if req.pid() != std::process::id() {
                r.looked_up(parent.0, name.as_bytes(), a.as_ref().map(|a| a.ino.0));
            }
        }
        match result {
            Ok(Some(a)) => reply.entry(&TTL, &a, Generation(0)),
            // An absent name, cached by the kernel as long as a present one:
            // a program probing search paths asks once (node id 0 is the
            // protocol's negative entry).
            Ok(None) => reply.entry(&TTL, &negative_entry(), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.begin(Op::Getattr);
        self.log(format_args!("getattr ino={}", ino.0));
        match self.node(ino).and_then(|n| self.attr(&n)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.begin(Op::Readlink);
        match self.node(ino) {
            Ok(Node {
                inode:
                    Inode {
                        data: InodeData::Symlink(t),
                        ..
                    },
                ..
            }) => reply.data(&t),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.begin(Op::Open);
        self.log(format_args!("open ino={}", ino.0));
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        if self.no_open {
            // The kernel opens by itself from now on (reads come with handle 0).
            return reply.error(Errno::ENOSYS);
        }
        match self.open_node(ino) {
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
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.begin(Op::Read);
        self.log(format_args!("read ino={} off={offset} size={size}", ino.0));
        let f = match self.file_for(ino, fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let len = f.file.size().saturating_sub(offset).min(u64::from(size)) as usize;
        if let Some(r) = &self.recorder {
            if req.pid() != std::process::id() {
                r.read(ino.0, offset, len as u64);
            }
        }
        if offset == 0 {
            self.fill_ahead.on_read_from_start(ino.0);
        }
        let bs = u64::from(f.img.block_size());
        let sequential = self.prefetch.on_read(
            &f.stream,
            &f.img,
            &f.file,
            (offset, offset + len as u64),
            bs,
        );
        let first = match f.img.read_vec(&f.file, offset, len) {
            Ok((buf, first)) => {
                reply.data(&buf);
                first
            }
            Err(e) => return reply.error(self.fail("read", e)),
        };
        // After the reply, offer the whole first block (already decompressed
        // for this read) to the page cache, as the kernel driver keeps it.
        // Not for a sequential stream: the kernel's read-ahead asks for the
        // rest of the block anyway, and the push would only cost time.
        if sequential {
            return;
        }
        if let Some(PlacedChunk {
            file_offset,
            chunk: Chunk::Shared(data, a, b),
        }) = first
        {
            // Nothing to add when the reply held the whole chunk (a small
            // file read at once, as tar and cat read them): pushing it
            // again cost a copy and a kernel call per file.
            let covered = offset == file_offset && len >= b - a;
            if !covered {
                self.page_fill.push(Fill {
                    ino: ino.0,
                    offset: file_offset,
                    data,
                    a,
                    b,
                });
            }
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
        self.begin(Op::Release);
        if self.files.lock().remove(&fh.0).is_some() {
            self.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.begin(Op::Opendir);
        self.log(format_args!("opendir ino={}", ino.0));
        if self.no_open {
            return reply.error(Errno::ENOSYS);
        }
        match self.list_node(ino) {
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
        self.begin(Op::Readdir);
        self.log(format_args!("readdir ino={} off={offset}", ino.0));
        let d = match self.listing_from(ino, fh, offset) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let parent = INodeNo(d.listing.parent);
        let result = self.fill_dir(&d, offset, |slot, next| {
            Ok(match slot {
                Slot::Dot => reply.add(ino, next, fuser::FileType::Directory, "."),
                Slot::DotDot => reply.add(parent, next, fuser::FileType::Directory, ".."),
                Slot::Item(e) => reply.add(
                    INodeNo(e.id),
                    next,
                    kind(e.file_type()),
                    OsStr::from_bytes(e.name()),
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
        self.begin(Op::Readdirplus);
        self.log(format_args!("readdirplus ino={} off={offset}", ino.0));
        let d = match self.listing_from(ino, fh, offset) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        if offset == 0 {
            self.fill_ahead.listed(ino.0, &d.listing);
        }
        let parent = INodeNo(d.listing.parent);
        let result = self.fill_dir(&d, offset, |slot, next| {
            let (name, attr) = match slot {
                Slot::Dot => (OsStr::new("."), self.node(ino).and_then(|n| self.attr(&n))?),
                Slot::DotDot => (
                    OsStr::new(".."),
                    self.node(parent).and_then(|n| self.attr(&n))?,
                ),
                Slot::Item(e) => {
                    let n = self
                        .view
                        .entry_node(ino.0, e)
                        .map_err(|err| self.fail("readdirplus", err))?;
                    if let Some(r) = &self.recorder {
                        r.named(ino.0, e.name(), n.id);
                    }
                    (OsStr::from_bytes(e.name()), self.attr(&n)?)
                }
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
        self.begin(Op::Releasedir);
        if self.dirs.lock().remove(&fh.0).is_some() {
            self.activity.open.fetch_sub(1, Ordering::Relaxed);
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.begin(Op::Statfs);
        // As the kernel driver reports it: blocks of the used size, nothing
        // free (summed over the layers).
        let t = self.view.totals();
        reply.statfs(
            t.blocks,
            0,
            0,
            t.inodes,
            0,
            t.block_size,
            crate::format::dir::MAX_NAME as u32,
            t.block_size,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.begin(Op::Getxattr);
        self.log(format_args!(
            "getxattr ino={} name={name:?} size={size}",
            ino.0
        ));
        if ino.0 == ROOT_ID && name.as_bytes() == STATS_XATTR.as_bytes() {
            let v = self.stats();
            return match size {
                0 => reply.size(v.len() as u32),
                n if v.len() > n as usize => reply.error(Errno::ERANGE),
                _ => reply.data(v.as_bytes()),
            };
        }
        if ino.0 == ROOT_ID && name.as_bytes() == REMOTE_STATS_XATTR.as_bytes() {
            return match self.remote_stats() {
                None => reply.error(Errno::NO_XATTR),
                Some(v) if size == 0 => reply.size(v.len() as u32),
                Some(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
                Some(v) => reply.data(v.as_bytes()),
            };
        }
        let result = self
            .node(ino)
            .and_then(|n| self.view.xattrs(&n).map_err(|e| self.fail("getxattr", e)));
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
        self.begin(Op::Listxattr);
        let result = self
            .node(ino)
            .and_then(|n| self.view.xattrs(&n).map_err(|e| self.fail("listxattr", e)));
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
        self.begin(Op::Access);
        if mask.contains(AccessFlags::W_OK) {
            return reply.error(Errno::EROFS);
        }
        match self.node(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}
