//! Walking the source directory into an in-memory tree: bytewise-sorted
//! names, hard links grouped, xattrs read, excludes applied.

use super::exclude::Excludes;
use super::{PackError, PackOptions};
use crate::format::dir::MAX_NAME;
use crate::format::inode::{rdev_encode, FileType};
use crate::format::xattr::{Namespace, Xattr};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum Kind {
    Dir(Vec<Node>),
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
    pub fn file_type(&self) -> FileType {
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
pub fn device_number(path: &Path, major: u32, minor: u32) -> Result<u32, PackError> {
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
pub struct Node {
    pub name: Vec<u8>,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    /// Full names ("user.x") and values, sorted.
    pub xattrs: Vec<Xattr>,
    /// Hard-link group (index into [`Tree::links`]), for non-directories.
    pub link: Option<usize>,
    pub kind: Kind,
}

/// Where a regular file's bytes come from: a whole file, or (for tar
/// input) `size` bytes at `offset` in the spool file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub offset: u64,
    pub size: u64,
    /// Part of a spool: more data follows, so "grew while read" is not checked.
    pub spooled: bool,
}

impl SourceFile {
    /// The file, positioned at its first byte.
    pub fn open(&self) -> Result<std::fs::File, PackError> {
        use std::io::{Seek, SeekFrom};
        let mut f =
            std::fs::File::open(&self.path).map_err(|e| PackError::io(&self.path, "open", e))?;
        if self.offset > 0 {
            f.seek(SeekFrom::Start(self.offset))
                .map_err(|e| PackError::io(&self.path, "seek in", e))?;
        }
        Ok(f)
    }
}

pub struct Tree {
    pub root: Node,
    pub files: Vec<SourceFile>,
    /// Names in the image per hard-link group.
    pub links: Vec<u32>,
    pub newest_mtime: u32,
    pub warnings: Vec<String>,
    /// The root was made to hold several sources: it takes the image's time.
    pub synthetic_root: bool,
}

/// The attributes of `p` that SquashFS can store (user, trusted, security),
/// sorted.
pub fn read_xattrs(p: &Path) -> std::io::Result<Vec<Xattr>> {
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
    out.sort();
    Ok(out)
}

struct Scanner<'a> {
    opts: &'a PackOptions,
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
        .build()
        .map_err(|e| PackError::internal(format!("cannot start scan threads: {e}")))
}

/// Gathers the sources into a tree. One directory: its contents are the
/// image's root. Anything else (several sources, or one that is not a
/// directory), as mksquashfs does it: each source becomes an entry of a
/// root directory (mode 0777, owned by the caller), named after its last
/// component, with `_1`, `_2`... added to a name already taken.
pub fn scan(sources: &[PathBuf], opts: &PackOptions) -> Result<Tree, PackError> {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| Stat::of(&m))
            .map_err(|e| PackError::io(p, "read", e))
    };
    let [first, ..] = sources else {
        return Err(PackError::Usage("no source to pack".into()));
    };
    let root_stat = stat(first)?;
    let walk = Walk {
        opts,
        excludes: Excludes::build(&opts.excludes)?,
        root_dev: root_stat.dev,
    };
    // Gathering is system calls (stat, xattrs, listings) for every entry:
    // spread over the pack's threads. Numbering stays serial and in order.
    let pool = scan_pool(opts)?;
    let single_dir = sources.len() == 1 && root_stat.is_dir();
    let raw = if single_dir {
        pool.install(|| walk.gather(first, Path::new(""), root_stat, Vec::new(), true))?
    } else {
        pool.install(|| walk.sources(sources))?
    };
    let mut s = Scanner {
        opts,
        files: Vec::new(),
        links: Vec::new(),
        by_ino: HashMap::new(),
        group_kind: Vec::new(),
        newest: 0,
        warnings: Vec::new(),
        link_all: !single_dir,
    };
    let root = s.node(raw)?;
    Ok(Tree {
        root,
        files: s.files,
        links: s.links,
        newest_mtime: s.newest,
        warnings: s.warnings,
        synthetic_root: !single_dir,
    })
}

/// One entry as the filesystem describes it, before numbering.
struct Raw {
    name: Vec<u8>,
    path: PathBuf,
    stat: Stat,
    xattrs: Vec<Xattr>,
    what: RawKind,
}

enum RawKind {
    /// Children in name order; `None` for one left out (with a warning).
    Dir(Vec<Result<Raw, String>>, Option<String>),
    Symlink(Vec<u8>),
    /// Everything else is described by the metadata alone.
    Plain,
}

/// The read-only part of the walk, shared by the gathering threads.
struct Walk<'a> {
    opts: &'a PackOptions,
    excludes: Excludes,
    root_dev: u64,
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
                self.gather(src, Path::new(""), Stat::of(&m), name, true)
                    .map(Ok)
            })
            .collect::<Result<_, _>>()?;
        children.sort_by(|a, b| match (a, b) {
            (Ok(a), Ok(b)) => a.name.cmp(&b.name),
            _ => std::cmp::Ordering::Equal,
        });
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Raw {
            name: Vec::new(),
            path: PathBuf::new(),
            stat: Stat {
                mode: libc::S_IFDIR | 0o777,
                uid,
                gid,
                mtime: 0, // the image's time, set once known
                nlink: 1,
                dev: 0,
                ino: 0,
                rdev: 0,
                size: 0,
            },
            xattrs: Vec::new(),
            what: RawKind::Dir(children, None),
        })
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
            read_xattrs(path).map_err(|e| PackError::io(path, "read xattrs of", e))?
        };
        let what = match stat.file_type() {
            libc::S_IFDIR if descend => self.children(path, rel)?,
            libc::S_IFDIR => RawKind::Dir(Vec::new(), None),
            libc::S_IFLNK => {
                let t =
                    std::fs::read_link(path).map_err(|e| PackError::io(path, "read link", e))?;
                RawKind::Symlink(t.as_os_str().as_bytes().to_vec())
            }
            _ => RawKind::Plain,
        };
        Ok(Raw {
            name,
            path: path.to_path_buf(),
            stat,
            xattrs,
            what,
        })
    }

    fn children(&self, dir: &Path, rel: &Path) -> Result<RawKind, PackError> {
        use rayon::prelude::*;
        let listing = match std::fs::read_dir(dir) {
            Err(e) if self.opts.skip_unreadable => {
                return Ok(RawKind::Dir(
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
            if self.opts.skip_unreadable && m.file_type() == libc::S_IFREG {
                if let Err(e) = std::fs::File::open(&path) {
                    return Ok(Some(Err(format!("{}: skipped: {e}", path.display()))));
                }
            }
            // Under --one-file-system a mountpoint stays, empty.
            let descend = !(self.opts.one_file_system && m.is_dir() && m.dev != self.root_dev);
            self.gather(&path, &rel, m, name, descend)
                .map(|r| Some(Ok(r)))
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
        Ok(RawKind::Dir(out, None))
    }
}

impl Scanner<'_> {
    /// Numbers files and hard-link groups in tree order (pre-order, names
    /// sorted), exactly as a serial walk would.
    fn node(&mut self, raw: Raw) -> Result<Node, PackError> {
        let Raw {
            name,
            path,
            stat: m,
            xattrs,
            what,
        } = raw;
        let ft = m.file_type();
        let o = self.opts;
        let clamp = |t: i64, w: &mut Vec<String>| -> u32 {
            if t < 0 || t > i64::from(u32::MAX) {
                w.push(format!(
                    "{}: mtime {t} does not fit SquashFS's 32 bits; clamped",
                    path.display()
                ));
            }
            t.clamp(0, i64::from(u32::MAX)) as u32
        };
        let mut mtime = clamp(m.mtime, &mut self.warnings);
        if let Some(t) = o.all_time {
            mtime = t;
        } else if let Some(sde) = o.source_date_epoch {
            mtime = mtime.min(sde);
        }
        self.newest = self.newest.max(mtime);
        let (uid, gid) = if o.all_root { (0, 0) } else { (m.uid, m.gid) };
        let mut node = Node {
            name,
            perm: (m.mode & 0o7777) as u16,
            uid: o.force_uid.unwrap_or(uid),
            gid: o.force_gid.unwrap_or(gid),
            mtime,
            xattrs,
            link: None,
            kind: Kind::Fifo,
        };
        if ft != libc::S_IFDIR && (m.nlink > 1 || self.link_all) {
            let next = self.links.len();
            let id = *self.by_ino.entry((m.dev, m.ino)).or_insert(next);
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
        node.kind = match what {
            RawKind::Dir(children, warning) => {
                self.warnings.extend(warning);
                let mut out = Vec::with_capacity(children.len());
                for c in children {
                    match c {
                        Ok(raw) => out.push(self.node(raw)?),
                        Err(w) => self.warnings.push(w),
                    }
                }
                Kind::Dir(out)
            }
            RawKind::Symlink(t) => Kind::Symlink(t),
            RawKind::Plain if ft == libc::S_IFREG => {
                self.files.push(SourceFile {
                    path,
                    offset: 0,
                    size: m.size,
                    spooled: false,
                });
                Kind::File {
                    file: self.files.len() - 1,
                }
            }
            RawKind::Plain if ft == libc::S_IFBLK || ft == libc::S_IFCHR => {
                let r = device_number(&path, libc::major(m.rdev), libc::minor(m.rdev))?;
                if ft == libc::S_IFBLK {
                    Kind::BlockDev(r)
                } else {
                    Kind::CharDev(r)
                }
            }
            RawKind::Plain if ft == libc::S_IFIFO => Kind::Fifo,
            RawKind::Plain => Kind::Socket,
        };
        if let Some(l) = node.link {
            self.group_kind[l] = node.kind.clone();
        }
        Ok(node)
    }
}
