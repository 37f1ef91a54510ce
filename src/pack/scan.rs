//! Walking the source directory into an in-memory tree: bytewise-sorted
//! names, hard links grouped, xattrs read, excludes applied.

use super::exclude::Excludes;
use super::{PackError, PackOptions};
use crate::format::dir::{MAX_DEPTH, MAX_NAME};
use crate::format::inode::{rdev_encode, FileType};
use crate::format::xattr::{Namespace, Xattr};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Dir(Vec<TreeNode>),
    /// `file` indexes [`Tree::files`].
    File {
        file: usize,
    },
    Symlink(Vec<u8>),
    BlockDev(u32),
    CharDev(u32),
    Fifo,
    Socket,
}

impl Kind {
    pub(crate) fn file_type(&self) -> FileType {
        match self {
            Kind::Dir(_) => FileType::Dir,
            Kind::File { .. } => FileType::File,
            Kind::Symlink(_) => FileType::Symlink,
            Kind::BlockDev(_) => FileType::BlockDev,
            Kind::CharDev(_) => FileType::CharDev,
            Kind::Fifo => FileType::Fifo,
            Kind::Socket => FileType::Socket,
        }
    }
}

/// A device's number as SquashFS stores it, or an error naming `path`.
pub(crate) fn device_number(path: &Path, major: u32, minor: u32) -> Result<u32, PackError> {
    rdev_encode(major, minor).ok_or_else(|| {
        PackError::entry(
            path,
            format!(
                "device number {major}:{minor} does not fit SquashFS's 12-bit major, 20-bit minor"
            ),
        )
    })
}

#[derive(Debug, Clone)]
pub(crate) struct TreeNode {
    pub(crate) name: Name,
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u32,
    /// Full names ("user.x") and values, sorted.
    pub(crate) xattrs: Vec<Xattr>,
    /// Hard-link group (index into [`Tree::links`]), for non-directories.
    pub(crate) link: Option<usize>,
    pub(crate) kind: Kind,
}

/// An entry's name, inline when short (most are): one is kept per file
/// until its data is written.
pub(crate) type Name = smallvec::SmallVec<[u8; 16]>;

/// Where a regular file's bytes come from: a file in a directory, or (for
/// tar input) `size` bytes at `offset` in the spool file. Kept for every
/// file until its data is written, so small: the directory's path is
/// shared by its files.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The directory holding the file; the spool file itself when `name`
    /// is empty.
    dir: Arc<Path>,
    name: Name,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    /// Part of a spool: more data follows, so "grew while read" is not checked.
    pub(crate) spooled: bool,
    /// Its holes are reported in the inode (what `stat` counts in blocks):
    /// only if the source was sparse itself, as mksquashfs decides; a file
    /// of written zeros is still stored with holes.
    pub(crate) report_sparse: bool,
}

impl SourceFile {
    /// File `name` in `dir`, `size` bytes long.
    pub(crate) fn in_dir(dir: Arc<Path>, name: &[u8], size: u64) -> Self {
        SourceFile {
            dir,
            name: Name::from_slice(name),
            offset: 0,
            size,
            spooled: false,
            report_sparse: true,
        }
    }

    /// The file at `path` (a source given by path), `size` bytes long.
    pub(crate) fn at(path: &Path, size: u64) -> Self {
        SourceFile {
            dir: path.into(),
            name: Name::new(),
            offset: 0,
            size,
            spooled: false,
            report_sparse: true,
        }
    }

    /// `size` bytes at `offset` in the spool file `spool`.
    pub(crate) fn in_spool(spool: Arc<Path>, offset: u64, size: u64) -> Self {
        SourceFile {
            dir: spool,
            name: Name::new(),
            offset,
            size,
            spooled: true,
            report_sparse: true,
        }
    }

    /// Where the file is (built on demand: only opening and errors need it).
    pub(crate) fn path(&self) -> PathBuf {
        if self.name.is_empty() {
            self.dir.to_path_buf()
        } else {
            self.dir.join(OsStr::from_bytes(&self.name))
        }
    }

    /// The file, positioned at its first byte.
    pub(crate) fn open(&self) -> Result<std::fs::File, PackError> {
        use std::io::{Seek, SeekFrom};
        let path = self.path();
        let mut f = std::fs::File::open(&path).map_err(|e| PackError::io(&path, "open", e))?;
        if self.offset > 0 {
            f.seek(SeekFrom::Start(self.offset))
                .map_err(|e| PackError::io(&path, "seek in", e))?;
        }
        Ok(f)
    }
}

/// A source gathered into a tree, ready to be numbered and written: what [`super::Source::Tree`]
/// builds.
pub struct Tree {
    pub(crate) root: TreeNode,
    pub(crate) files: Vec<SourceFile>,
    /// Names in the image per hard-link group.
    pub(crate) links: Vec<u32>,
    pub(crate) newest_mtime: u32,
    pub(crate) warnings: Vec<String>,
    /// The root was made to hold several sources: it takes the image's time.
    pub(crate) synthetic_root: bool,
}

/// The attributes of `p` that SquashFS can store (user, trusted, security),
/// sorted, or in the order the filesystem lists them (mksquashfs's,
/// under [`Engine::SquashfsTools`](crate::format::compressor::Engine)).
pub(crate) fn read_xattrs(p: &Path, listed_order: bool) -> std::io::Result<Vec<Xattr>> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut names = vec![0u8; 4096];
    let n = loop {
        // SAFETY: buffers valid for the lengths passed.
        let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if n >= 0 {
            break n as usize;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if Namespace::split(name).is_none() {
            continue;
        }
        let cn = CString::new(name).map_err(std::io::Error::other)?;
        let mut val = vec![0u8; 256];
        let m = loop {
            let m = unsafe {
                libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len())
            };
            if m >= 0 {
                break m as usize;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                val.resize(val.len() * 4, 0);
            } else {
                return Err(e);
            }
        };
        val.truncate(m);
        out.push(Xattr {
            name: name.to_vec(),
            value: val,
        });
    }
    if !listed_order {
        out.sort();
    }
    Ok(out)
}

struct Scanner {
    files: Vec<SourceFile>,
    links: Vec<u32>,
    by_ino: HashMap<(u64, u64), usize>,
    /// The kind of each hard-link group's first name (later names share it).
    group_kind: Vec<Kind>,
    newest: u32,
    warnings: Vec<String>,
    /// Look every file up by device and inode, not only those with links:
    /// with several sources one file can be met twice (mksquashfs then
    /// stores it once, hard-linked).
    link_all: bool,
    /// Every name a file of its own.
    no_hardlinks: bool,
}

/// What a pack keeps of an entry's `stat`: the fields the image stores,
/// and device and inode to find hard links (a full `Metadata` is three
/// times the size, kept for every entry until numbering).
#[derive(Debug, Clone, Copy)]
struct Stat {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    nlink: u64,
    dev: u64,
    ino: u64,
    rdev: u64,
    size: u64,
    /// 512-byte units allocated.
    blocks: u64,
}

impl Stat {
    fn of(m: &std::fs::Metadata) -> Self {
        Stat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            mtime: m.mtime(),
            nlink: m.nlink(),
            dev: m.dev(),
            ino: m.ino(),
            rdev: m.rdev(),
            size: m.len(),
            blocks: m.blocks(),
        }
    }
    fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }
}

fn scan_pool(opts: &PackOptions) -> Result<rayon::ThreadPool, PackError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        // The walk recurses per directory level (growing onto the heap when
        // short, see with_stack): room for rayon's frames between levels.
        .stack_size(8 << 20)
        .build()
        .map_err(|e| PackError::internal(format!("cannot start scan threads: {e}")))
}

/// Gathers the sources into a tree. One directory: its contents are the
/// image's root. Anything else (several sources, or one that is not a
/// directory), as mksquashfs does it: each source becomes an entry of a
/// root directory (mode 0777, owned by the caller), named after its last
/// component, with `_1`, `_2`... added to a name already taken.
/// `entries` counts what was found, for a progress display.
pub(crate) fn scan(
    sources: &[PathBuf],
    opts: &PackOptions,
    entries: &std::sync::atomic::AtomicU64,
) -> Result<Tree, PackError> {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| Stat::of(&m))
            .map_err(|e| PackError::io(p, "read", e))
    };
    let [first, ..] = sources else {
        return Err(PackError::Usage("no source to pack".into()));
    };
    let root_stat = stat(first)?;
    let single_dir =
        sources.len() == 1 && root_stat.is_dir() && opts.layout == super::Layout::Contents;
    let walk = Walk {
        opts,
        excludes: Excludes::build(&opts.excludes)?,
        root_dev: root_stat.dev,
        // Several sources sit one level down, under a root of their own.
        base_depth: usize::from(!single_dir),
        entries,
    };
    // Gathering is system calls (stat, xattrs, listings) for every entry:
    // spread over the pack's threads. Numbering stays serial and in order.
    let pool = scan_pool(opts)?;
    let raw = if single_dir {
        pool.install(|| walk.gather(first, Path::new(""), root_stat, Vec::new(), true))?
    } else if opts.layout == super::Layout::FullPaths {
        pool.install(|| walk.full_paths(sources))?
    } else {
        pool.install(|| walk.sources(sources))?
    };
    let mut s = Scanner {
        files: Vec::new(),
        links: Vec::new(),
        by_ino: HashMap::new(),
        group_kind: Vec::new(),
        newest: 0,
        warnings: Vec::new(),
        link_all: !single_dir,
        no_hardlinks: opts.no_hardlinks,
    };
    let root_path: Arc<Path> = if single_dir {
        first.as_path().into()
    } else {
        Path::new("").into()
    };
    let root = s.node(raw, &root_path)?;
    Ok(Tree {
        root,
        files: s.files,
        links: s.links,
        newest_mtime: s.newest,
        warnings: s.warnings,
        // Under full paths the root is a real directory's.
        synthetic_root: !single_dir && opts.layout != super::Layout::FullPaths,
    })
}

/// One entry as gathered, before numbering: its node complete but for a
/// directory's children (below, still to number) and a file's number; and
/// what numbering needs that the image does not keep. No path is kept
/// (numbering rebuilds it from the names): the whole tree of these is in
/// memory at once, so each is kept small.
struct Raw {
    node: TreeNode,
    /// A directory's children in name order; `Err` for one left out (with
    /// a warning, under --skip-unreadable).
    children: Vec<Result<Raw, String>>,
    /// Warnings about this entry, reported in tree order.
    warnings: Option<Box<[String]>>,
    dev: u64,
    ino: u64,
    nlink: u64,
    size: u64,
    /// Fewer bytes allocated than its size: a sparse file.
    sparse_on_disk: bool,
    /// A source given by path (several sources): where it is, as its name
    /// in the image may differ.
    origin: Option<Box<Path>>,
}

impl Raw {
    /// The index of the child named `name`, if there is one.
    fn child(&self, name: &[u8]) -> Option<usize> {
        self.children
            .iter()
            .position(|c| c.as_ref().is_ok_and(|r| r.node.name.as_slice() == name))
    }

    /// Adds `child` in name order; its index.
    fn insert_child(&mut self, child: Raw) -> usize {
        let at = self.children.partition_point(|c| {
            c.as_ref()
                .is_ok_and(|r| r.node.name.as_slice() < child.node.name.as_slice())
        });
        self.children.insert(at, Ok(child));
        at
    }
}

/// The read-only part of the walk, shared by the gathering threads.
struct Walk<'a> {
    opts: &'a PackOptions,
    excludes: Excludes,
    root_dev: u64,
    /// How deep in the image a source's top lies.
    base_depth: usize,
    entries: &'a std::sync::atomic::AtomicU64,
}

impl Walk<'_> {
    /// Several sources under a root of their own.
    fn sources(&self, sources: &[PathBuf]) -> Result<Raw, PackError> {
        use rayon::prelude::*;
        let mut names: Vec<Vec<u8>> = Vec::with_capacity(sources.len());
        for src in sources {
            let base = std::fs::canonicalize(src)
                .ok()
                .and_then(|p| p.file_name().map(|n| n.as_bytes().to_vec()))
                .unwrap_or_else(|| b"root".to_vec());
            let mut name = base.clone();
            let mut pass = 1;
            while names.contains(&name) {
                name = [&base[..], format!("_{pass}").as_bytes()].concat();
                pass += 1;
            }
            names.push(name);
        }
        let mut children: Vec<Result<Raw, String>> = sources
            .par_iter()
            .zip(names)
            .map(|(src, name)| {
                let m =
                    std::fs::symlink_metadata(src).map_err(|e| PackError::io(src, "stat", e))?;
                let mut raw = self.gather(src, Path::new(""), Stat::of(&m), name, true)?;
                raw.origin = Some(src.as_path().into());
                Ok::<_, PackError>(Ok(raw))
            })
            .collect::<Result<_, _>>()?;
        children.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.node.name.cmp(&b.node.name),
            _ => std::cmp::Ordering::Equal,
        });
        let made = self.opts.made_dir;
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Raw {
            node: TreeNode {
                name: Name::new(),
                perm: made.perm.unwrap_or(0o777),
                uid: made.uid.unwrap_or(uid),
                gid: made.gid.unwrap_or(gid),
                mtime: 0, // the image's time, set once known
                xattrs: Vec::new(),
                link: None,
                kind: Kind::Dir(Vec::new()),
            },
            children,
            warnings: None,
            dev: 0,
            ino: 0,
            nlink: 1,
            size: 0,
            sparse_on_disk: false,
            origin: None,
        })
    }

    /// Each source under its own path, as tar keeps it: the leading
    /// directories with their own attributes (not their other entries),
    /// the root `/`'s for an absolute path, else the working directory's.
    fn full_paths(&self, sources: &[PathBuf]) -> Result<Raw, PackError> {
        use std::path::Component;
        let anchor = if sources.iter().any(|s| s.is_absolute()) {
            Path::new("/")
        } else {
            Path::new(".")
        };
        let st = |p: &Path| {
            std::fs::symlink_metadata(p)
                .map(|m| Stat::of(&m))
                .map_err(|e| PackError::io(p, "stat", e))
        };
        let mut root = self.gather(anchor, Path::new(""), st(anchor)?, Vec::new(), false)?;
        for src in sources {
            if src.is_absolute() != anchor.is_absolute() {
                return Err(PackError::Usage(format!(
                    "{}: with full paths kept, the sources are all absolute or all relative",
                    src.display()
                )));
            }
            let mut names = Vec::new();
            for c in src.components() {
                match c {
                    Component::Normal(n) => names.push(n.as_bytes().to_vec()),
                    Component::RootDir | Component::CurDir => {}
                    _ => {
                        return Err(PackError::Usage(format!(
                            "{}: a path with .. cannot be kept as it is",
                            src.display()
                        )))
                    }
                }
            }
            let Some((last, leading)) = names.split_last() else {
                continue; // `/` or `.` itself: the root is it already
            };
            // Down the leading directories, made where not met yet.
            let mut here = &mut root;
            let mut path = anchor.to_path_buf();
            for n in leading {
                path.push(OsStr::from_bytes(n));
                let at = match here.child(n) {
                    Some(i) => i,
                    None => {
                        let dir =
                            self.gather(&path, Path::new(""), st(&path)?, n.clone(), false)?;
                        here.insert_child(dir)
                    }
                };
                here = match &mut here.children[at] {
                    Ok(r) if matches!(r.node.kind, Kind::Dir(_)) => r,
                    _ => {
                        return Err(PackError::entry(
                            &path,
                            "a leading path of a source is not a directory",
                        ))
                    }
                };
            }
            if here.child(last).is_some() {
                continue; // given twice, or below a source given too
            }
            let m = std::fs::symlink_metadata(src).map_err(|e| PackError::io(src, "stat", e))?;
            let mut raw = self.gather(src, Path::new(""), Stat::of(&m), last.clone(), true)?;
            raw.origin = Some(src.as_path().into());
            here.insert_child(raw);
        }
        Ok(root)
    }

    /// Everything about `path` (and, for a directory, below it). `Err(msg)`
    /// inside the result is an entry skipped under --skip-unreadable.
    fn gather(
        &self,
        path: &Path,
        rel: &Path,
        stat: Stat,
        name: Vec<u8>,
        descend: bool,
    ) -> Result<Raw, PackError> {
        let xattrs = if self.opts.no_xattrs {
            Vec::new()
        } else {
            let listed =
                self.opts.tuning.engine == crate::format::compressor::Engine::SquashfsTools;
            read_xattrs(path, listed).map_err(|e| PackError::io(path, "read xattrs of", e))?
        };
        let o = self.opts;
        let mut warnings = Vec::new();
        if stat.mtime < 0 || stat.mtime > i64::from(u32::MAX) {
            warnings.push(format!(
                "{}: mtime {} does not fit SquashFS's 32 bits; clamped",
                path.display(),
                stat.mtime
            ));
        }
        let mut mtime = stat.mtime.clamp(0, i64::from(u32::MAX)) as u32;
        if let Some(t) = o.all_time {
            mtime = t;
        } else if let Some(sde) = o.source_date_epoch {
            mtime = mtime.min(sde);
        }
        let (uid, gid) = if o.all_root {
            (0, 0)
        } else {
            (
                stat.uid.saturating_add(o.id_offset),
                stat.gid.saturating_add(o.id_offset),
            )
        };
        let mut children = Vec::new();
        let ft = stat.file_type();
        let kind = match ft {
            libc::S_IFDIR => {
                if descend {
                    let warning;
                    (children, warning) = self.children(path, rel)?;
                    warnings.extend(warning);
                }
                Kind::Dir(Vec::new())
            }
            libc::S_IFLNK => {
                let t =
                    std::fs::read_link(path).map_err(|e| PackError::io(path, "read link", e))?;
                Kind::Symlink(t.as_os_str().as_bytes().to_vec())
            }
            libc::S_IFREG => Kind::File { file: 0 }, // numbered later
            libc::S_IFBLK | libc::S_IFCHR => {
                let r = device_number(path, libc::major(stat.rdev), libc::minor(stat.rdev))?;
                if ft == libc::S_IFBLK {
                    Kind::BlockDev(r)
                } else {
                    Kind::CharDev(r)
                }
            }
            libc::S_IFIFO => Kind::Fifo,
            _ => Kind::Socket,
        };
        let mut perm = (stat.mode & 0o7777) as u16;
        let change = if ft == libc::S_IFDIR {
            &o.dir_mode
        } else {
            &o.file_mode
        };
        if let Some(c) = change {
            perm = c.apply(perm, ft == libc::S_IFDIR);
        }
        Ok(Raw {
            node: TreeNode {
                name: Name::from_slice(&name),
                perm,
                uid: o.force_uid.unwrap_or(uid),
                gid: o.force_gid.unwrap_or(gid),
                mtime,
                xattrs,
                link: None,
                kind,
            },
            children,
            warnings: (!warnings.is_empty()).then(|| warnings.into_boxed_slice()),
            dev: stat.dev,
            ino: stat.ino,
            nlink: stat.nlink,
            size: stat.size,
            sparse_on_disk: stat.blocks.saturating_mul(512) < stat.size,
            origin: None,
        })
    }

    /// The children of `dir`, and a warning if they were skipped.
    #[allow(clippy::type_complexity)]
    fn children(
        &self,
        dir: &Path,
        rel: &Path,
    ) -> Result<(Vec<Result<Raw, String>>, Option<String>), PackError> {
        use rayon::prelude::*;
        let listing = match std::fs::read_dir(dir) {
            Err(e) if self.opts.skip_unreadable => {
                return Ok((
                    Vec::new(),
                    Some(format!("{}: contents skipped: {e}", dir.display())),
                ));
            }
            r => r.map_err(|e| PackError::io(dir, "list", e))?,
        };
        let mut names: Vec<Vec<u8>> = listing
            .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| PackError::io(dir, "list", e))?;
        names.sort();
        let one = |name: Vec<u8>| -> Result<Option<Result<Raw, String>>, PackError> {
            let path = dir.join(OsStr::from_bytes(&name));
            let rel = rel.join(OsStr::from_bytes(&name));
            if name.len() > MAX_NAME {
                return Err(PackError::entry(
                    &path,
                    format!("a name longer than {MAX_NAME} bytes cannot be stored"),
                ));
            }
            if self.base_depth + rel.components().count() > MAX_DEPTH {
                return Err(PackError::entry(
                    &path,
                    format!("nested deeper than {MAX_DEPTH} directories, the most sqfuse packs"),
                ));
            }
            if self.excludes.by_path(&rel) {
                return Ok(None);
            }
            let m = match std::fs::symlink_metadata(&path) {
                Ok(m) => Stat::of(&m),
                Err(e) if self.opts.skip_unreadable => {
                    return Ok(Some(Err(format!("{}: skipped: {e}", path.display()))));
                }
                Err(e) => return Err(PackError::io(&path, "stat", e)),
            };
            if self.excludes.by_inode(m.dev, m.ino) {
                return Ok(None);
            }
            self.entries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if self.opts.skip_unreadable && m.file_type() == libc::S_IFREG {
                if let Err(e) = std::fs::File::open(&path) {
                    return Ok(Some(Err(format!("{}: skipped: {e}", path.display()))));
                }
            }
            // Under --one-file-system a mountpoint stays, empty.
            let descend = !(self.opts.one_file_system && m.is_dir() && m.dev != self.root_dev);
            super::with_stack(|| self.gather(&path, &rel, m, name, descend)).map(|r| Some(Ok(r)))
        };
        // In name order whatever ran first, so the first error reported is
        // the first in the tree, as a serial walk would report it.
        let results: Vec<_> = names.into_par_iter().map(one).collect();
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            if let Some(x) = r? {
                out.push(x);
            }
        }
        Ok((out, None))
    }
}

impl Scanner {
    /// Numbers files and hard-link groups in tree order (pre-order, names
    /// sorted), exactly as a serial walk would. `parent` is the path of
    /// the directory holding `raw` (for the root: its own path).
    fn node(&mut self, raw: Raw, parent: &Arc<Path>) -> Result<TreeNode, PackError> {
        let Raw {
            mut node,
            children,
            warnings,
            dev,
            ino,
            nlink,
            size,
            sparse_on_disk,
            origin,
        } = raw;
        self.warnings
            .extend(warnings.into_iter().flat_map(|w| w.into_vec()));
        self.newest = self.newest.max(node.mtime);
        let is_dir = matches!(node.kind, Kind::Dir(_));
        if !is_dir && !self.no_hardlinks && (nlink > 1 || self.link_all) {
            let next = self.links.len();
            let id = *self.by_ino.entry((dev, ino)).or_insert(next);
            if id == next {
                self.links.push(0);
                self.group_kind.push(Kind::Fifo);
            }
            self.links[id] += 1;
            node.link = Some(id);
            if id != next {
                node.kind = self.group_kind[id].clone();
                return Ok(node);
            }
        }
        match &mut node.kind {
            Kind::Dir(out) => {
                let here: Arc<Path> = match &origin {
                    Some(o) => Arc::from(&**o),
                    None if node.name.is_empty() => parent.clone(), // the root
                    None => parent.join(OsStr::from_bytes(&node.name)).into(),
                };
                out.reserve_exact(children.len());
                for c in children {
                    match c {
                        Ok(raw) => out.push(super::with_stack(|| self.node(raw, &here))?),
                        Err(w) => self.warnings.push(w),
                    }
                }
            }
            Kind::File { file } => {
                let mut f = match &origin {
                    Some(o) => SourceFile::at(o, size),
                    None => SourceFile::in_dir(parent.clone(), &node.name, size),
                };
                f.report_sparse = sparse_on_disk;
                self.files.push(f);
                *file = self.files.len() - 1;
            }
            _ => {}
        }
        if let Some(l) = node.link {
            self.group_kind[l] = node.kind.clone();
        }
        Ok(node)
    }
}
