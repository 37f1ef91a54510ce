//! `sqfuse IMAGE MOUNTPOINT`: mount an image read-only through FUSE.
//!
//! Everything that can be checked is checked before the process forks
//! into the background, so most mistakes are a one-line error on the
//! terminal; the child reports the mount's success or failure back through
//! a pipe and the parent exits 0 or 1 accordingly.

pub mod fs;
pub mod options;
pub mod pagefill;
pub mod prefetch;

use crate::error::{Error, Result};
use crate::reader::{Image, OpenOptions};
use options::MountOpts;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct MountArgs {
    pub image: PathBuf,
    pub mountpoint: PathBuf,
    pub foreground: bool,
    pub single_thread: bool,
    pub debug: bool,
    pub opts: MountOpts,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn in_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// The image, opened as the mount will use it, and the root to show.
fn prepare(a: &MountArgs) -> Result<(Arc<Image>, fs::SqFs)> {
    let ropts = OpenOptions {
        offset: a.opts.offset,
        pread: true,
        cache_budget: Some(a.opts.cache_mb << 20),
        ..Default::default()
    };
    let img = Arc::new(Image::open(&a.image, &ropts).map_err(|e| Error {
        what: format!("{}: {}", a.image.display(), e.what),
        ..e
    })?);
    let root = match &a.opts.subdir {
        Some(p) => {
            let (i, r) = img.lookup_path(p)?;
            if !i.is_dir() {
                return Err(Error::invalid(format!("subdir {p} is not a directory")));
            }
            (i, r)
        }
        None => (img.root()?, img.root_ref()),
    };
    let fs = fs::SqFs::new(img.clone(), root, a.opts.uid, a.opts.gid, a.debug);
    Ok((img, fs))
}

fn check_mountpoint(p: &Path) -> Result<()> {
    let m =
        std::fs::metadata(p).map_err(|e| Error::io(format!("mountpoint {}", p.display()), e))?;
    if !m.is_dir() {
        return Err(Error::invalid(format!(
            "mountpoint {} is not a directory",
            p.display()
        )));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(Error::invalid(
            "/dev/fuse is missing: is the fuse module loaded (or the container given the device)?",
        ));
    }
    if !is_root() && !in_path("fusermount3") && !in_path("fusermount") {
        return Err(Error::invalid(
            "fusermount3 is not installed (Debian: apt-get install fuse3)",
        ));
    }
    Ok(())
}

fn fuser_config(a: &MountArgs, image: &Path, cores: usize) -> fuser::Config {
    use fuser::MountOption as M;
    let mut c = fuser::Config::default();
    c.mount_options = vec![
        M::RO,
        M::FSName(image.display().to_string()),
        M::Subtype("sqfuse".into()),
        M::DefaultPermissions,
    ];
    let o = &a.opts;
    for (on, opt) in [
        (o.nosuid, M::NoSuid),
        (o.nodev, M::NoDev),
        (o.noexec, M::NoExec),
        (o.auto_unmount, M::AutoUnmount),
    ] {
        if on {
            c.mount_options.push(opt);
        }
    }
    c.acl = if o.allow_other {
        fuser::SessionACL::All
    } else if o.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    };
    c.n_threads = Some(if a.single_thread {
        1
    } else if o.threads > 0 {
        o.threads
    } else {
        (cores * 2).max(4)
    });
    c.clone_fd = true;
    c
}

/// Writes `c` to the notify pipe, if one was asked for.
fn notify(opts: &MountOpts, c: u8) {
    if let Some(p) = &opts.notify_pipe {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(p) {
            let _ = f.write_all(&[c]);
        }
    }
}

/// Unmounts `mnt`; lazily (detached until the last open file closes) when
/// `lazy` is set.
pub fn unmount(mnt: &Path, lazy: bool) -> std::io::Result<()> {
    if is_root() {
        let c = CString::new(mnt.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: a valid C string path.
        if unsafe { libc::umount2(c.as_ptr(), flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(());
    }
    let bin = if in_path("fusermount3") {
        "fusermount3"
    } else {
        "fusermount"
    };
    let mut cmd = std::process::Command::new(bin);
    cmd.arg(if lazy { "-uzq" } else { "-uq" })
        .arg(mnt)
        .stderr(std::process::Stdio::null());
    let st = cmd.status()?;
    if st.success() {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EBUSY))
    }
}

/// Mounts and serves until unmounted. Returns in the parent once the mount
/// is ready (or failed) unless `foreground`.
pub fn mount(a: MountArgs) -> Result<()> {
    // fuser gives each session thread a zeroed 16 MiB request buffer. glibc
    // serves that from fresh, untouched mmap pages only while its mmap
    // threshold is below 16 MiB, and the threshold climbs with every large
    // free; pinned, the buffers cost only the pages requests touch. Two
    // arenas instead of one per thread: cached blocks freed by another
    // thread than the one that made them fragmented eight arenas. Server
    // peak RSS after a cold tar of /usr/share: 55-63 -> 43 MiB, of which
    // 32 MiB is the default cache_mb.
    // SAFETY: mallopt only changes allocator tuning.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let image = std::fs::canonicalize(&a.image)
        .map_err(|e| Error::io(format!("cannot open {}", a.image.display()), e))?;
    let mountpoint = std::fs::canonicalize(&a.mountpoint)
        .map_err(|e| Error::io(format!("mountpoint {}", a.mountpoint.display()), e))?;
    let a = MountArgs {
        image,
        mountpoint,
        ..a
    };
    let prepared = prepare(&a).and_then(|p| check_mountpoint(&a.mountpoint).map(|_| p));
    let (_img, fs) = match prepared {
        Ok(p) => p,
        Err(e) => {
            notify(&a.opts, b'f');
            return Err(e);
        }
    };
    if a.foreground || a.debug {
        return serve(&a, fs, None);
    }
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array; no threads exist yet, so fork is safe.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Error::io("pipe", std::io::Error::last_os_error()));
    }
    match unsafe { libc::fork() } {
        -1 => Err(Error::io("fork", std::io::Error::last_os_error())),
        0 => {
            // Child: detach and serve; report through the pipe.
            unsafe {
                libc::close(fds[0]);
                libc::setsid();
            }
            let status = unsafe { std::fs::File::from_raw_fd(fds[1]) };
            let code = match serve(&a, fs, Some(status)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code);
        }
        _ => {
            unsafe { libc::close(fds[1]) };
            let mut status = unsafe { std::fs::File::from_raw_fd(fds[0]) };
            let mut msg = Vec::new();
            let _ = status.read_to_end(&mut msg);
            match msg.split_first() {
                Some((b's', _)) => Ok(()),
                Some((_, m)) => Err(Error::invalid(String::from_utf8_lossy(m).into_owned())),
                None => Err(Error::invalid(
                    "the mount process died before the mount was ready",
                )),
            }
        }
    }
}

fn detach_stdio() {
    let devnull = CString::new("/dev/null").expect("no NUL");
    // SAFETY: plain descriptor juggling on valid descriptors.
    unsafe {
        let fd = libc::open(devnull.as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for target in 0..3 {
                libc::dup2(fd, target);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
        let _ = libc::chdir(c"/".as_ptr());
    }
}

fn serve(a: &MountArgs, fs: fs::SqFs, mut status: Option<std::fs::File>) -> Result<()> {
    let activity = fs.activity.clone();
    let page_fill = fs.page_fill.clone();
    let (prefetch, img) = (fs.prefetch.clone(), fs.image());
    // Signals arrive as events on the loop's channel (no polling: an idle
    // mount sleeps until a signal, the session's end or the idle deadline).
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| Error::io("installing signal handlers", e))?;
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if sig_tx.send(Event::Signal).is_err() {
                return;
            }
        }
    });
    // Asked once: it reads cgroup files, and the mount is waiting.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = fuser_config(a, &a.image, cores);
    let session = match fuser::Session::new(fs, &a.mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("cannot mount on {}: {e}", a.mountpoint.display());
            notify(&a.opts, b'f');
            if let Some(mut s) = status.take() {
                let _ = write!(s, "f{msg}");
            }
            return Err(Error::invalid(msg));
        }
    };
    if a.opts.page_fill {
        page_fill.start(session.notifier());
    }
    prefetch.start(img, cores, a.opts.prefetch);
    notify(&a.opts, b's');
    if let Some(mut s) = status.take() {
        let _ = s.write_all(b"s");
        drop(s);
        detach_stdio();
    }
    std::thread::spawn(move || {
        let _ = tx.send(Event::Ended(session.run()));
    });
    activity.touch(); // the idle clock starts now
    let idle_secs = || unix_now().saturating_sub(activity.last.load(Ordering::Relaxed));
    let mut unmounting = false;
    loop {
        use std::sync::mpsc::RecvTimeoutError;
        // Wake only when the idle deadline could have passed.
        let event = match a.opts.idle_timeout.filter(|_| !unmounting) {
            Some(t) => rx.recv_timeout(Duration::from_secs(t.saturating_sub(idle_secs()).max(1))),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Ended(r)) => return r.map_err(|e| Error::io("serving the mount", e)),
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Ok(Event::Signal) if !unmounting => {
                // Files still open: detach now, keep serving them until closed.
                if unmount(&a.mountpoint, false).is_err() {
                    let _ = unmount(&a.mountpoint, true);
                }
                unmounting = true;
            }
            Ok(Event::Signal) => {}
            Err(RecvTimeoutError::Timeout) => {
                let t = a.opts.idle_timeout.unwrap_or(u64::MAX);
                if activity.open.load(Ordering::Relaxed) == 0
                    && idle_secs() >= t
                    && unmount(&a.mountpoint, false).is_ok()
                {
                    unmounting = true;
                }
            }
        }
    }
}

/// What the serving loop waits for.
enum Event {
    /// The FUSE session ended (unmounted), with its result.
    Ended(std::io::Result<()>),
    /// SIGINT, SIGTERM or SIGHUP.
    Signal,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
