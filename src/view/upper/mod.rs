//! The writable top layer: a real directory laid out as kernel overlayfs
//! lays out its `upperdir`, so that the same directory can later be
//! mounted by overlayfs or fuse-overlayfs, or packed as a layer.
//!
//! - A deleted lower name is a whiteout: a 0/0 character device (Linux
//!   lets unprivileged users make those since 5.8), or where even that is
//!   refused, an empty file with the `overlay.whiteout` xattr in a
//!   directory marked `overlay.whiteouts` (overlayfs 6.7+'s xattr
//!   whiteouts).
//! - A directory that hides the lower ones carries `overlay.opaque=y`.
//! - overlayfs's xattrs are `trusted.overlay.*` when the server runs as
//!   root, `user.overlay.*` otherwise (rootless overlayfs's `userxattr`).
//! - An owner the upper's filesystem refuses to a rootless server is kept
//!   in `user.containers.override_stat` (`UID:GID:0MODE`), as
//!   fuse-overlayfs and containers/storage keep it.
//!
//! Every path here is relative to the upper directory and names entries
//! the merged tree resolved, so its components are the upper's own
//! directories. No I/O of the lower layers happens here (see
//! [`copyup`]).

mod calls;
pub mod copyup;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, XattrFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the writable layer's operations fail with: the system call's errno.
pub type UpperResult<T> = std::result::Result<T, Errno>;

/// The xattr a rootless server keeps refused owners in.
pub const OVERRIDE_STAT: &str = "user.containers.override_stat";

/// Names of copy-ups in progress where the upper's filesystem has no
/// O_TMPFILE: never shown, and removed when found at start.
pub const TEMP_PREFIX: &[u8] = b".sqfuse-copyup.";

/// An owner and mode kept in [`OVERRIDE_STAT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverrideStat {
    /// The owner shown.
    pub uid: u32,
    /// The group shown.
    pub gid: u32,
    /// Permission bits (and setuid, setgid, sticky).
    pub mode: u32,
}

impl OverrideStat {
    /// Reads `UID:GID:MODE` (mode octal, as containers/storage writes it).
    pub fn parse(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?;
        let mut it = s.trim_end_matches('\0').split(':');
        let uid = it.next()?.parse().ok()?;
        let gid = it.next()?.parse().ok()?;
        let mode = u32::from_str_radix(it.next()?.trim_start_matches("0o"), 8).ok()?;
        Some(OverrideStat {
            uid,
            gid,
            mode: mode & 0o7777,
        })
    }

    /// The xattr's value.
    pub fn encode(&self) -> String {
        format!("{}:{}:0{:o}", self.uid, self.gid, self.mode & 0o7777)
    }
}

/// The upper directory (and optionally a work directory on the same
/// filesystem, for copy-ups of filesystems without O_TMPFILE).
pub struct UpperDir {
    root: OwnedFd,
    root_path: PathBuf,
    work: Option<(OwnedFd, PathBuf)>,
    /// Running as root: owners are set as asked, overlayfs xattrs are
    /// `trusted.`.
    privileged: bool,
    temp_seq: AtomicU64,
}

/// How a relative path is spelled for the *at calls: "." for the root.
pub fn at(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

impl UpperDir {
    /// Opens `dir` (which must be a directory) as the writable layer,
    /// `work` (same filesystem) for temporary copies.
    pub fn open(dir: &Path, work: Option<&Path>) -> UpperResult<Self> {
        let open_dir = |p: &Path| {
            rustix::fs::open(
                p,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let root = open_dir(dir)?;
        // One server per upper: a second would keep its own idea of the tree.
        // Held as long as the descriptor, so for the mount's life.
        rustix::fs::flock(&root, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
        let work = match work {
            Some(w) => {
                let fd = open_dir(w)?;
                if rustix::fs::fstat(&fd)?.st_dev != rustix::fs::fstat(&root)?.st_dev {
                    return Err(Errno::XDEV);
                }
                Some((fd, w.to_path_buf()))
            }
            None => None,
        };
        let root_path = std::fs::canonicalize(dir).map_err(|e| {
            e.raw_os_error()
                .map(Errno::from_raw_os_error)
                .unwrap_or(Errno::IO)
        })?;
        Ok(UpperDir {
            root,
            root_path,
            work,
            privileged: rustix::process::geteuid().is_root(),
            temp_seq: AtomicU64::new(0),
        })
    }

    /// Whether the server may set any owner (runs as root).
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// The upper directory itself.
    pub fn root_fd(&self) -> &OwnedFd {
        &self.root
    }

    /// The upper directory's path.
    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    /// The namespace overlayfs reads this server's xattrs in.
    fn overlay_xattr(&self, key: &str) -> String {
        let ns = if self.privileged { "trusted" } else { "user" };
        format!("{ns}.overlay.{key}")
    }

    /// An xattr of `rel` (not following a symlink), `None` when absent.
    pub fn get_xattr(&self, rel: &Path, name: &OsStr) -> UpperResult<Option<Vec<u8>>> {
        self.proc_path(rel, |p| {
            let mut buf = vec![0u8; 256];
            loop {
                match rustix::fs::lgetxattr(p, name, &mut buf[..]) {
                    Ok(n) => {
                        buf.truncate(n);
                        return Ok(Some(buf));
                    }
                    Err(Errno::NODATA) => return Ok(None),
                    Err(Errno::RANGE) if buf.len() < 1 << 16 => buf.resize(1 << 16, 0),
                    Err(e) => return Err(e),
                }
            }
        })
    }

    /// The names of `rel`'s xattrs.
    pub fn list_xattrs(&self, rel: &Path) -> UpperResult<Vec<Vec<u8>>> {
        let mut buf = vec![0u8; 1024];
        let n = self.proc_path(rel, |p| loop {
            match rustix::fs::llistxattr(p, &mut buf[..]) {
                Ok(n) => break Ok(n),
                Err(Errno::RANGE) if buf.len() < 1 << 16 => buf.resize(1 << 16, 0),
                Err(e) => return Err(e),
            }
        })?;
        Ok(buf[..n]
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// Sets an xattr of `rel` (not following a symlink).
    pub fn set_xattr(
        &self,
        rel: &Path,
        name: &OsStr,
        value: &[u8],
        flags: XattrFlags,
    ) -> UpperResult<()> {
        self.proc_path(rel, |p| rustix::fs::lsetxattr(p, name, value, flags))
    }

    /// Removes an xattr of `rel` (not following a symlink).
    pub fn remove_xattr(&self, rel: &Path, name: &OsStr) -> UpperResult<()> {
        self.proc_path(rel, |p| rustix::fs::lremovexattr(p, name))
    }

    /// Whether `rel` (stat `st`) is a whiteout, in either form.
    pub fn is_whiteout(&self, rel: &Path, st: &Stat) -> UpperResult<bool> {
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::CharacterDevice && st.st_rdev == 0 {
            return Ok(true);
        }
        if ft != FileType::RegularFile || st.st_size != 0 {
            return Ok(false);
        }
        for ns in ["trusted", "user"] {
            let name = format!("{ns}.overlay.whiteout");
            match self.get_xattr(rel, OsStr::new(&name)) {
                Ok(Some(_)) => return Ok(true),
                Ok(None) | Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Whether directory `rel` hides the lower layers' directories.
    pub fn is_opaque(&self, rel: &Path) -> UpperResult<bool> {
        for ns in ["trusted", "user"] {
            let name = format!("{ns}.overlay.opaque");
            match self.get_xattr(rel, OsStr::new(&name)) {
                Ok(Some(v)) if v == b"y" => return Ok(true),
                Ok(_) | Err(Errno::NOTSUP | Errno::PERM | Errno::ACCESS) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Marks directory `rel` opaque.
    pub fn set_opaque(&self, rel: &Path) -> UpperResult<()> {
        let name = self.overlay_xattr("opaque");
        self.set_xattr(rel, OsStr::new(&name), b"y", XattrFlags::empty())
    }

    /// Puts a whiteout at `rel` (where nothing is).
    pub fn make_whiteout(&self, rel: &Path) -> UpperResult<()> {
        match self.mknod(rel, FileType::CharacterDevice, 0, 0) {
            Err(Errno::PERM) => {}
            other => return other,
        }
        // Refused a device even of 0/0: overlayfs's xattr whiteout.
        let fd = self.open_at(rel, OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY, 0)?;
        drop(fd);
        let parent = rel.parent().unwrap_or(Path::new(""));
        let marked = self.set_xattr(
            parent,
            OsStr::new(&self.overlay_xattr("whiteouts")),
            b"",
            XattrFlags::empty(),
        );
        let made = marked.and_then(|()| {
            self.set_xattr(
                rel,
                OsStr::new(&self.overlay_xattr("whiteout")),
                b"",
                XattrFlags::empty(),
            )
        });
        if let Err(e) = made {
            let _ = self.unlink(rel);
            return Err(e);
        }
        Ok(())
    }

    /// The owner kept for a rootless server, if any.
    pub fn override_stat(&self, rel: &Path) -> Option<OverrideStat> {
        if self.privileged {
            return None;
        }
        let v = self.get_xattr(rel, OsStr::new(OVERRIDE_STAT)).ok()??;
        OverrideStat::parse(&v)
    }

    /// Sets `rel`'s owner; a rootless server refused it keeps it in
    /// [`OVERRIDE_STAT`] (with the mode it has now).
    pub fn set_owner(&self, rel: &Path, uid: Option<u32>, gid: Option<u32>) -> UpperResult<()> {
        match self.chown_raw(rel, uid, gid) {
            Err(Errno::PERM | Errno::INVAL) if !self.privileged => {
                let st = self.stat(rel)?;
                let old = self.override_stat(rel).unwrap_or(OverrideStat {
                    uid: st.st_uid,
                    gid: st.st_gid,
                    mode: st.st_mode & 0o7777,
                });
                let new = OverrideStat {
                    uid: uid.unwrap_or(old.uid),
                    gid: gid.unwrap_or(old.gid),
                    mode: old.mode,
                };
                self.set_xattr(
                    rel,
                    OsStr::new(OVERRIDE_STAT),
                    new.encode().as_bytes(),
                    XattrFlags::empty(),
                )
            }
            other => other,
        }
    }

    /// Sets `rel`'s permission bits (kept in the override too, if one is kept).
    pub fn set_mode(&self, rel: &Path, mode: u32) -> UpperResult<()> {
        if let Some(mut o) = self.override_stat(rel) {
            o.mode = mode & 0o7777;
            self.set_xattr(
                rel,
                OsStr::new(OVERRIDE_STAT),
                o.encode().as_bytes(),
                XattrFlags::empty(),
            )?;
        }
        self.chmod_raw(rel, mode)
    }

    /// A file for a copy-up's data, invisible until [`UpperDir::publish`]:
    /// O_TMPFILE in the target's directory where the filesystem has it,
    /// else a named temporary in the work directory (or, without one, in the
    /// target's directory under [`TEMP_PREFIX`]).
    pub fn temp_file(&self, parent: &Path) -> UpperResult<(OwnedFd, Option<PathBuf>)> {
        match self.open_at(parent, OFlags::RDWR | OFlags::TMPFILE, 0o600) {
            Ok(fd) => return Ok((fd, None)),
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        let n = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let mut name = TEMP_PREFIX.to_vec();
        name.extend_from_slice(format!("{}.{n}", std::process::id()).as_bytes());
        let name = PathBuf::from(OsStr::from_bytes(&name));
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL;
        match &self.work {
            Some((w, _)) => {
                let fd = rustix::fs::openat(
                    w,
                    &name,
                    flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o600),
                )?;
                Ok((fd, Some(name)))
            }
            None => {
                let rel = parent.join(&name);
                Ok((self.open_at(&rel, flags, 0o600)?, Some(rel)))
            }
        }
    }

    /// Gives the temporary file `fd` (from [`UpperDir::temp_file`]) its
    /// name `rel`, atomically.
    pub fn publish(&self, fd: &OwnedFd, temp: Option<&Path>, rel: &Path) -> UpperResult<()> {
        match (temp, &self.work) {
            (None, _) => {
                let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
                self.at_rel(rel, |d, n| {
                    rustix::fs::linkat(
                        rustix::fs::CWD,
                        proc.as_str(),
                        d,
                        n,
                        AtFlags::SYMLINK_FOLLOW,
                    )
                })
            }
            (Some(t), Some((w, _))) => self.at_rel(rel, |d, n| {
                rustix::fs::renameat_with(w, t, d, n, rustix::fs::RenameFlags::NOREPLACE)
            }),
            (Some(t), None) => self.rename(t, rel, rustix::fs::RenameFlags::NOREPLACE),
        }
    }

    /// Removes a temporary that will not be published.
    pub fn discard(&self, temp: Option<&Path>) {
        match (temp, &self.work) {
            (Some(t), Some((w, _))) => {
                let _ = rustix::fs::unlinkat(w, t, AtFlags::empty());
            }
            (Some(t), None) => {
                let _ = self.unlink(t);
            }
            (None, _) => {}
        }
    }

    /// Whether a name of the upper is this server's temporary.
    pub fn is_temp_name(name: &[u8]) -> bool {
        name.starts_with(TEMP_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_stat_reads_what_containers_storage_writes() {
        let o = OverrideStat::parse(b"0:0:0755").unwrap();
        assert_eq!((o.uid, o.gid, o.mode), (0, 0, 0o755));
        assert_eq!(OverrideStat::parse(o.encode().as_bytes()), Some(o));
        assert_eq!(OverrideStat::parse(b"1000:x:0644"), None);
        assert_eq!(OverrideStat::parse(b"1:2"), None);
    }
}
