//! Connecting a FUSE session to a mountpoint, three ways:
//! - as root, mount(2) directly (type `fuse.SUBTYPE`, source FSNAME, as
//!   libfuse does);
//! - otherwise, and always for `auto_unmount`, through the setuid
//!   `fusermount3` helper, which mounts and passes the /dev/fuse descriptor
//!   back over a socket (with `auto_unmount` it stays, watching the socket,
//!   and unmounts once this process is gone);
//! - a mountpoint `/dev/fd/N` names a /dev/fuse descriptor the caller has
//!   already mounted (libfuse 3.3's convention; Apptainer's setuid mode).

use crate::error::{Error, Result};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What to mount, and how.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub fsname: String,
    pub subtype: String,
    pub allow_other: bool,
    pub allow_root: bool,
    pub auto_unmount: bool,
    /// Mounting over a directory with entries is asked for.
    pub nonempty: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// A writable mount (an upper directory): mounted without `ro`.
    pub writable: bool,
}

/// Where the connection is mounted, which decides how to unmount it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A directory we mounted on.
    Dir(PathBuf),
    /// A descriptor mounted by our caller, who unmounts it.
    Fd(RawFd),
}

/// A live FUSE connection.
#[derive(Debug)]
pub struct Attached {
    pub fd: OwnedFd,
    pub target: Target,
    /// fusermount3 in auto_unmount mode watches its end of this socket:
    /// kept open for the life of the process.
    pub watch: Option<UnixStream>,
}

const FUSE_DEV: &str = "/dev/fuse";

/// `/dev/fd/N` (or `/proc/self/fd/N`): the descriptor number.
pub fn fd_mountpoint(p: &Path) -> Option<RawFd> {
    let s = p.to_str()?;
    let n = s
        .strip_prefix("/dev/fd/")
        .or_else(|| s.strip_prefix("/proc/self/fd/"))?;
    n.parse().ok().filter(|&n: &RawFd| n >= 0)
}

/// Whether mount(8) started this process (through mount.fuse3, which runs
/// it under /bin/sh): a `mount`, `mount.fuse3` or `mount.fuse` among the
/// nearest ancestors.
pub fn started_by_mount8() -> bool {
    let parent = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let after = &stat[stat.rfind(')')? + 1..];
        after.split_whitespace().nth(1)?.parse().ok()
    };
    let mut pid = std::process::id();
    for _ in 0..4 {
        let Some(p) = parent(pid).filter(|&p| p > 1) else {
            return false;
        };
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if matches!(comm.trim_end(), "mount" | "mount.fuse3" | "mount.fuse") {
            return true;
        }
        pid = p;
    }
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn fusermount_bin() -> Option<&'static str> {
    ["fusermount3", "fusermount"].into_iter().find(|b| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(b).is_file()))
    })
}

/// A mountpoint that cannot be looked at, said once ("does not exist", not
/// "does not exist: No such file or directory").
pub fn mountpoint_error(mountpoint: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::invalid(format!(
            "mountpoint {} does not exist",
            mountpoint.display()
        ))
    } else {
        Error::io(format!("mountpoint {}", mountpoint.display()), e)
    }
}

/// Checks what can be checked before forking into the background: the
/// mountpoint, /dev/fuse, and the helper a mount without root needs.
pub fn precheck(mountpoint: &Path, spec: &Spec) -> Result<()> {
    if let Some(fd) = fd_mountpoint(mountpoint) {
        return check_fuse_fd(fd);
    }
    let m = std::fs::metadata(mountpoint).map_err(|e| mountpoint_error(mountpoint, e))?;
    if !m.is_dir() {
        return Err(Error::invalid(format!(
            "mountpoint {} is not a directory",
            mountpoint.display()
        )));
    }
    // Its entries would be hidden, and a program reading them would read
    // the image instead: as libfuse 2 did, only when asked.
    let has_entries = std::fs::read_dir(mountpoint).is_ok_and(|mut d| d.next().is_some());
    if has_entries && !spec.nonempty {
        let parent = mountpoint.parent().and_then(|p| std::fs::metadata(p).ok());
        if parent.is_some_and(|p| p.dev() != m.dev()) {
            return Err(Error::invalid(format!(
                "mountpoint {0} has a filesystem mounted on it already (unmount it first: fusermount3 -u {0})",
                mountpoint.display()
            )));
        }
        return Err(Error::invalid(format!(
            "mountpoint {} is not empty (-o nonempty mounts over its entries, hiding them)",
            mountpoint.display()
        )));
    }
    if !Path::new(FUSE_DEV).exists() {
        return Err(Error::invalid(
            "/dev/fuse is missing: is the fuse module loaded (or the container given the device)?",
        ));
    }
    check_fuse_access()?;
    let needs_helper = !is_root() || spec.auto_unmount;
    if needs_helper && fusermount_bin().is_none() {
        return Err(Error::invalid(
            "fusermount3 is not installed (Debian: apt-get install fuse3)",
        ));
    }
    Ok(())
}

/// Every mount opens /dev/fuse as the user who asks (fusermount3 too): a
/// device this user may not open gets a message that says what to change,
/// not the bare "Permission denied" the helper would print.
fn check_fuse_access() -> Result<()> {
    let path = cstring(FUSE_DEV.as_bytes(), FUSE_DEV)?;
    // SAFETY: a valid C string; access(2) only reads it.
    if unsafe { libc::access(path.as_ptr(), libc::R_OK | libc::W_OK) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if !matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) {
        return Ok(()); // opening it will say what is wrong
    }
    let mode = std::fs::metadata(FUSE_DEV).map_or(0, |m| m.mode() & 0o7777);
    Err(Error::invalid(format!(
        "cannot open {FUSE_DEV} (mode {mode:04o}): mounting needs read and write access to it; \
         make it 0666 as most distributions ship it (in a container: --device /dev/fuse), \
         or mount as root"
    )))
}

/// The descriptor must be open and be /dev/fuse (character device 10:229).
fn check_fuse_fd(fd: RawFd) -> Result<()> {
    // SAFETY: fstat on any integer is safe; it fails with EBADF if unused.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(Error::io(
            format!("mountpoint /dev/fd/{fd}: no such open descriptor"),
            std::io::Error::last_os_error(),
        ));
    }
    let fuse = std::fs::metadata(FUSE_DEV).map(|m| m.rdev()).ok();
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || Some(st.st_rdev) != fuse {
        return Err(Error::invalid(format!(
            "mountpoint /dev/fd/{fd} is not an open /dev/fuse descriptor"
        )));
    }
    Ok(())
}

/// Connects per `spec`.
pub fn attach(mountpoint: &Path, spec: &Spec) -> Result<Attached> {
    if let Some(fd) = fd_mountpoint(mountpoint) {
        check_fuse_fd(fd)?;
        // SAFETY: the descriptor is open (checked) and handed to us to serve.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        return Ok(Attached {
            fd: owned,
            target: Target::Fd(fd),
            watch: None,
        });
    }
    if is_root() && !spec.auto_unmount {
        match mount_direct(mountpoint, spec) {
            Ok(fd) => {
                return Ok(Attached {
                    fd,
                    target: Target::Dir(mountpoint.to_path_buf()),
                    watch: None,
                })
            }
            // Root without CAP_SYS_ADMIN (a user namespace): the helper may.
            Err(e) if e.source.as_ref().and_then(|s| s.raw_os_error()) == Some(libc::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    mount_fusermount(mountpoint, spec)
}

fn cstring(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{what} contains a NUL byte")))
}

fn open_fuse_dev() -> Result<OwnedFd> {
    let path = cstring(FUSE_DEV.as_bytes(), FUSE_DEV)?;
    // SAFETY: a valid path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Error::io(
            format!("cannot open {FUSE_DEV}"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a descriptor we just opened and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn mount_direct(mountpoint: &Path, spec: &Spec) -> Result<OwnedFd> {
    let dev = open_fuse_dev()?;
    let m = std::fs::metadata(mountpoint)
        .map_err(|e| Error::io(format!("mountpoint {}", mountpoint.display()), e))?;
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!(
        "fd={},rootmode={:o},user_id={uid},group_id={gid},default_permissions",
        dev.as_raw_fd(),
        m.mode() & libc::S_IFMT
    );
    if spec.allow_other || spec.allow_root {
        // The kernel knows only allow_other; allow_root is enforced per request.
        data.push_str(",allow_other");
    }
    let mut flags = if spec.writable { 0 } else { libc::MS_RDONLY };
    for (on, f) in [
        (spec.nosuid, libc::MS_NOSUID),
        (spec.nodev, libc::MS_NODEV),
        (spec.noexec, libc::MS_NOEXEC),
    ] {
        if on {
            flags |= f;
        }
    }
    let target = cstring(mountpoint.as_os_str().as_bytes(), "mountpoint")?;
    let source = cstring(spec.fsname.as_bytes(), "fsname")?;
    let data = cstring(data.as_bytes(), "mount options")?;
    let mut fstype = format!("fuse.{}", spec.subtype);
    loop {
        let t = cstring(fstype.as_bytes(), "subtype")?;
        // SAFETY: valid C strings; data is the kernel's option string.
        let rc = unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                t.as_ptr(),
                flags,
                data.as_ptr().cast(),
            )
        };
        if rc == 0 {
            return Ok(dev);
        }
        let e = std::io::Error::last_os_error();
        // Kernels before fuse subtypes: plain "fuse".
        if e.raw_os_error() == Some(libc::ENODEV) && fstype != "fuse" {
            fstype = "fuse".into();
            continue;
        }
        return Err(Error::io(
            format!("cannot mount on {}", mountpoint.display()),
            e,
        ));
    }
}

/// fusermount's option list: commas and backslashes in values escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace(',', "\\,")
}

fn mount_fusermount(mountpoint: &Path, spec: &Spec) -> Result<Attached> {
    let bin = fusermount_bin().ok_or_else(|| {
        Error::invalid("fusermount3 is not installed (Debian: apt-get install fuse3)")
    })?;
    let mut opts = vec![
        if spec.writable { "rw" } else { "ro" }.to_string(),
        format!("fsname={}", escape(&spec.fsname)),
        format!("subtype={}", escape(&spec.subtype)),
        "default_permissions".to_string(),
    ];
    for (on, o) in [
        // fusermount3 knows only allow_other; allow_root is enforced per
        // request, as libfuse does it.
        (spec.allow_other || spec.allow_root, "allow_other"),
        (spec.auto_unmount, "auto_unmount"),
        (spec.nosuid, "nosuid"),
        (spec.nodev, "nodev"),
        (spec.noexec, "noexec"),
    ] {
        if on {
            opts.push(o.to_string());
        }
    }
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::io("cannot talk to fusermount3", e))?;
    let theirs_fd = theirs.as_raw_fd();
    let mut cmd = Command::new(bin);
    cmd.arg("-o")
        .arg(opts.join(","))
        .arg("--")
        .arg(mountpoint)
        .env("_FUSE_COMMFD", theirs_fd.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe fcntl between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The helper's end must survive exec; everything else is CLOEXEC.
            let flags = libc::fcntl(theirs_fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(theirs_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {bin}"), e))?;
    drop(theirs);
    let received = receive_fd(&ours);
    let helper_error = |child: std::process::Child| {
        let out = child.wait_with_output().ok();
        let msg = out
            .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "no reason given".into());
        let msg = msg.lines().next().unwrap_or_default();
        // The helper names itself; the message names it once.
        let msg = msg.strip_prefix(&format!("{bin}: ")).unwrap_or(msg);
        Error::invalid(format!(
            "cannot mount on {}: {bin}: {msg}",
            mountpoint.display()
        ))
    };
    let fd = match received {
        Ok(fd) => fd,
        Err(_) => return Err(helper_error(child)),
    };
    let watch = if spec.auto_unmount {
        // The helper stays to unmount when we are gone; reap it then.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        Some(ours)
    } else {
        let st = child.wait();
        if !st.is_ok_and(|s| s.success()) {
            return Err(Error::invalid(format!(
                "cannot mount on {}: {bin} failed",
                mountpoint.display()
            )));
        }
        None
    };
    Ok(Attached {
        fd,
        target: Target::Dir(mountpoint.to_path_buf()),
        watch,
    })
}

/// The descriptor fusermount passes back (SCM_RIGHTS).
fn receive_fd(sock: &UnixStream) -> std::io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    #[repr(C, align(8))]
    struct Space([u8; 64]);
    let mut space = Space([0; 64]);
    // SAFETY: msghdr is plain data; pointers set below stay valid for the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = space.0.as_mut_ptr().cast();
    msg.msg_controllen = space.0.len();
    let n = loop {
        // SAFETY: a valid socket and message buffers.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break n;
    };
    if n <= 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "fusermount sent no descriptor",
        ));
    }
    // SAFETY: the control buffer was filled by recvmsg; CMSG_* walk it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "fusermount sent no descriptor",
            ));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Unmounts `mnt`; lazily (detached until the last open file closes) when
/// `lazy` is set.
pub fn unmount(mnt: &Path, lazy: bool) -> std::io::Result<()> {
    if is_root() {
        let c = CString::new(mnt.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: a valid C string path.
        if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(e);
        }
        // Root without CAP_SYS_ADMIN: the helper mounted it, the helper unmounts.
    }
    let bin = fusermount_bin().unwrap_or("fusermount3");
    let out = Command::new(bin)
        .arg(if lazy { "-uz" } else { "-u" })
        .arg("--")
        .arg(OsStr::new(mnt))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    // fusermount3 says why on stderr ("fusermount3: failed to unmount
    // MNT: Device or resource busy"): busy is told apart, anything else
    // passed on in its words.
    let said = String::from_utf8_lossy(&out.stderr);
    let said = crate::error::outside_text(said.trim());
    if said.contains("busy") || said.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
    }
    Err(std::io::Error::other(said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_mountpoints() {
        assert_eq!(fd_mountpoint(Path::new("/dev/fd/7")), Some(7));
        assert_eq!(fd_mountpoint(Path::new("/proc/self/fd/12")), Some(12));
        assert_eq!(fd_mountpoint(Path::new("/dev/fd/x")), None);
        assert_eq!(fd_mountpoint(Path::new("/mnt/fd/7")), None);
        assert!(check_fuse_fd(0).is_err() || !Path::new(FUSE_DEV).exists());
    }

    #[test]
    fn option_values_are_escaped_for_fusermount() {
        assert_eq!(escape("/a,b\\c"), "/a\\,b\\\\c");
    }
}
