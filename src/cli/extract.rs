//! `sqfuse extract`: recreate the image's tree under DEST.
//!
//! Safety invariants: every name was validated by the directory reader (no
//! '/', NUL, '.', '..' or empty name, no duplicates); every entry is
//! created with exclusive semantics (O_EXCL, mkdir, symlink, mknod all fail
//! on an existing path), so nothing already in DEST, and no symlink the
//! image made, is ever followed or overwritten; directories are entered
//! only once (a second visit is a loop).

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::format::metadata::MetaRef;
use crate::reader::{Chunk, Image, Step};
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Set owners, and create device nodes (needs root).
    pub privileged: bool,
    pub xattrs: bool,
    /// Replace what already exists under DEST: files, links and nodes are
    /// removed first (a symlink is removed, never followed), existing
    /// directories are filled in; a directory never becomes a file.
    pub force: bool,
    /// Of the xattrs, only `user.` ones (unsquashfs's -user-xattrs: what
    /// an unprivileged user may set).
    pub user_xattrs_only: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            privileged: unsafe { libc::geteuid() } == 0,
            xattrs: true,
            force: false,
            user_xattrs_only: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct ExtractReport {
    pub entries: u64,
    pub bytes: u64,
    /// What was made, by kind (unsquashfs prints these).
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub devices: u64,
    pub fifos: u64,
    pub sockets: u64,
    pub hardlinks: u64,
    /// Things skipped on purpose (devices without root, say).
    pub warnings: Vec<String>,
}

/// What an extraction does with an image path (relative to where it
/// starts, components joined by '/').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// This entry and everything below it.
    All,
    /// A directory on the way to picked entries: made, and looked into.
    Parent,
    /// Left out.
    No,
}

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    let shown = crate::error::shown_path(path);
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        // Only without -f: with it, what is in the way is replaced.
        return Error::invalid(format!("{what} {shown}: it exists (-f overwrites)"));
    }
    Error::io(format!("{what} {shown}"), e)
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("path {} holds a NUL byte", p.display())))
}

fn check_rc(rc: libc::c_int, path: &Path, what: &str) -> Result<()> {
    if rc != 0 {
        return Err(io_err(path, what, std::io::Error::last_os_error()));
    }
    Ok(())
}

struct Extractor<'a> {
    img: &'a Image,
    opts: ExtractOptions,
    report: ExtractReport,
    /// Inode number -> first path extracted, for hard links.
    links: HashMap<u32, PathBuf>,
}

/// Extracts `path` of the image into `dest`: the whole image's contents
/// for "/", otherwise the entry itself as DEST/NAME (NAME being the path's
/// last component), a directory with everything below it.
pub fn extract(
    img: &Image,
    dest: &Path,
    path: &str,
    opts: ExtractOptions,
) -> Result<ExtractReport> {
    let (inode, r) = img.lookup_path(path)?;
    prepare_dest(dest)?;
    let mut x = Extractor {
        img,
        opts,
        report: ExtractReport::default(),
        links: HashMap::new(),
    };
    let name = path.split('/').rfind(|c| !c.is_empty() && *c != ".");
    match name {
        None => x.tree(&inode, r, dest, &|_| Pick::All)?,
        Some(name) if inode.is_dir() => {
            let top = dest.join(name);
            x.make_dir(&top)?;
            x.tree(&inode, r, &top, &|_| Pick::All)?;
        }
        Some(name) => x.entry(&inode, &dest.join(name))?,
    }
    Ok(x.report)
}

/// Extracts the entries `pick` selects from the whole image into `dest`,
/// paths kept (unsquashfs's way: `DEST/a/b` for `a/b`).
pub fn extract_picked(
    img: &Image,
    dest: &Path,
    opts: ExtractOptions,
    pick: &dyn Fn(&[u8]) -> Pick,
) -> Result<ExtractReport> {
    prepare_dest(dest)?;
    let mut x = Extractor {
        img,
        opts,
        report: ExtractReport::default(),
        links: HashMap::new(),
    };
    x.report.dirs += 1; // DEST, as unsquashfs counts it
    x.tree(&img.root()?, img.root_ref(), dest, pick)?;
    Ok(x.report)
}

fn prepare_dest(dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::invalid(format!(
            "{} exists and is not a directory",
            dest.display()
        ))),
        Err(_) => fs::create_dir_all(dest).map_err(|e| io_err(dest, "cannot create", e)),
    }
}

impl Extractor<'_> {
    /// The entries below directory `root` (at `r`) that `pick` selects,
    /// into `root_path`; each directory's own attributes once it is filled,
    /// the root's last.
    fn tree(
        &mut self,
        root: &Inode,
        r: MetaRef,
        root_path: &Path,
        pick: &dyn Fn(&[u8]) -> Pick,
    ) -> Result<()> {
        let at = |rel: &[u8]| {
            if rel.is_empty() {
                root_path.to_path_buf()
            } else {
                root_path.join(OsStr::from_bytes(rel))
            }
        };
        let mut walk = self.img.walk(root, r)?;
        while let Some(step) = walk.next() {
            match step? {
                Step::Entry(e) => match (pick(&e.path), e.inode.is_dir()) {
                    (Pick::No, true) | (Pick::Parent, false) => walk.skip_dir(),
                    (Pick::No, false) => {}
                    (_, true) => self.make_dir(&at(&e.path))?,
                    (Pick::All, false) => self.entry(&e.inode, &at(&e.path))?,
                },
                Step::Leave { dir, path } => self.finish(&dir, &at(&path))?,
            }
        }
        Ok(())
    }

    /// Makes a directory for the image's (or takes an existing one under
    /// --force), owner-writable while it is filled: the stored mode is set
    /// after.
    fn make_dir(&mut self, path: &Path) -> Result<()> {
        let reuse = self.opts.force && self.make_room(path, true)?;
        if !reuse {
            fs::create_dir(path).map_err(|e| io_err(path, "cannot create directory", e))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err(path, "chmod", e))?;
        self.report.entries += 1;
        self.report.dirs += 1;
        Ok(())
    }

    /// Under --force, clears `path` for a new entry; returns whether a real
    /// directory is there to reuse (only when a directory is wanted).
    /// Symlinks are removed, never followed.
    fn make_room(&mut self, path: &Path, want_dir: bool) -> Result<bool> {
        match fs::symlink_metadata(path) {
            Err(_) => Ok(false),
            Ok(m) if m.is_dir() && want_dir => Ok(true),
            Ok(m) if m.is_dir() => Err(Error::invalid(format!(
                "{} is a directory in the way of a file; not replaced",
                path.display()
            ))),
            Ok(_) => fs::remove_file(path)
                .map(|_| false)
                .map_err(|e| io_err(path, "cannot replace", e)),
        }
    }

    /// Creates one non-directory entry and sets its attributes.
    fn entry(&mut self, inode: &Inode, path: &Path) -> Result<()> {
        if self.opts.force {
            self.make_room(path, false)?;
        }
        if let Some(first) = self.links.get(&inode.number) {
            fs::hard_link(first, path).map_err(|e| io_err(path, "cannot link", e))?;
            self.report.entries += 1;
            self.report.hardlinks += 1;
            return Ok(());
        }
        let made = match &inode.data {
            InodeData::File(_) => {
                self.file(inode, path)?;
                true
            }
            InodeData::Symlink(target) => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
                    .map_err(|e| io_err(path, "cannot create symlink", e))?;
                true
            }
            InodeData::Fifo => self.node(path, libc::S_IFIFO, 0, false)?,
            InodeData::Socket => self.node(path, libc::S_IFSOCK, 0, false)?,
            InodeData::BlockDev(rdev) => self.node(path, libc::S_IFBLK, *rdev, true)?,
            InodeData::CharDev(rdev) => self.node(path, libc::S_IFCHR, *rdev, true)?,
            InodeData::Dir(_) => unreachable!("directories are handled by tree()"),
        };
        if made {
            self.report.entries += 1;
            match &inode.data {
                InodeData::File(_) => self.report.files += 1,
                InodeData::Symlink(_) => self.report.symlinks += 1,
                InodeData::Fifo => self.report.fifos += 1,
                InodeData::Socket => self.report.sockets += 1,
                _ => self.report.devices += 1,
            }
            self.finish(inode, path)?;
            self.links.insert(inode.number, path.to_path_buf());
        }
        Ok(())
    }

    fn node(&mut self, path: &Path, kind: u32, rdev: u32, needs_root: bool) -> Result<bool> {
        if needs_root && !self.opts.privileged {
            self.report.warnings.push(format!(
                "{}: skipped (creating it needs root)",
                path.display()
            ));
            return Ok(false);
        }
        let (major, minor) = crate::format::inode::rdev_split(rdev);
        let dev = libc::makedev(major, minor);
        let c = cstr(path)?;
        // SAFETY: a valid NUL-terminated path; mknod does not follow a final symlink.
        check_rc(
            unsafe { libc::mknod(c.as_ptr(), kind | 0o600, dev) },
            path,
            "cannot create node",
        )?;
        Ok(true)
    }

    fn file(&mut self, inode: &Inode, path: &Path) -> Result<()> {
        let f = self.img.open_file(inode)?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| io_err(path, "cannot create", e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut out);
        self.img.for_each_chunk(&f, |c| {
            match c {
                // Holes stay holes: seek past them; set_len covers a trailing one.
                Chunk::Zeros(n) => w.seek(SeekFrom::Current(*n as i64)).map(|_| ()),
                c => w.write_all(&c.bytes()),
            }
            .map_err(|e| io_err(path, "cannot write", e))
        })?;
        w.flush().map_err(|e| io_err(path, "cannot write", e))?;
        drop(w);
        out.set_len(f.size())
            .map_err(|e| io_err(path, "cannot size", e))?;
        self.report.bytes += f.size();
        Ok(())
    }

    /// Owner, xattrs, mode, then times, in that order: chown clears
    /// setuid bits and file capabilities (security.capability), a mode
    /// without write permission would refuse user.* xattrs to a non-root
    /// owner, and every change bumps the times.
    fn finish(&mut self, inode: &Inode, path: &Path) -> Result<()> {
        let is_link = matches!(inode.data, InodeData::Symlink(_));
        let c = cstr(path)?;
        if self.opts.privileged {
            let (uid, gid) = (self.img.uid(inode)?, self.img.gid(inode)?);
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
                .map_err(|e| io_err(path, "cannot chown", e))?;
        }
        if self.opts.xattrs {
            for x in self.img.xattrs(inode)? {
                if self.opts.user_xattrs_only && !x.name.starts_with(b"user.") {
                    continue;
                }
                let name = CString::new(x.name.clone())
                    .map_err(|_| Error::invalid("xattr name with NUL"))?;
                // SAFETY: valid C strings and a value buffer of the given length.
                let rc = unsafe {
                    libc::lsetxattr(
                        c.as_ptr(),
                        name.as_ptr(),
                        x.value.as_ptr().cast(),
                        x.value.len(),
                        0,
                    )
                };
                if rc != 0 {
                    let e = std::io::Error::last_os_error();
                    self.report.warnings.push(format!(
                        "{}: xattr {}: {e}",
                        path.display(),
                        String::from_utf8_lossy(&x.name)
                    ));
                }
            }
        }
        if !is_link {
            // SAFETY: valid path; entries here are never symlinks.
            check_rc(
                unsafe { libc::chmod(c.as_ptr(), libc::mode_t::from(inode.perm & 0o7777)) },
                path,
                "cannot chmod",
            )?;
        }
        let t = libc::timespec {
            tv_sec: libc::time_t::from(inode.mtime),
            tv_nsec: 0,
        };
        let times = [t, t];
        // SAFETY: valid path and a two-element timespec array.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check_rc(rc, path, "cannot set times on")
    }
}
