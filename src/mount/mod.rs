//! `sqfuse IMAGE... MOUNTPOINT`: mount an image (or the union of several)
//! read-only through FUSE.
//!
//! Everything that can be checked is checked before the process forks
//! into the background, so most mistakes are a one-line error on the
//! terminal; the child reports the mount's success or failure back through
//! a pipe and the parent exits 0 or 1 accordingly.

pub(crate) mod attach;
pub(crate) mod fill_ahead;
pub(crate) mod fs;
pub mod log;
pub mod options;
pub(crate) mod pagefill;
pub(crate) mod prefetch;
pub(crate) mod preload;
pub(crate) mod record;
pub(crate) mod upper;
pub(crate) mod write;

pub use attach::unmount;

use crate::error::{Error, ErrorKind, Result};
use crate::open::{Caches, Credentials, Named, OpenError, OpenRequest};
use crate::profile::Profile;
use crate::reader::remote::shown_name;
use crate::reader::verity::VerityOptions;
use crate::reader::Image;
use crate::view::{ImageView, View};
use attach::Target;
use options::MountOpts;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::io::FromRawFd;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to mount, where, and how: what [`mount`] takes.
#[derive(Debug, Clone)]
pub struct MountRequest {
    /// One image, or several layers, the top one first.
    pub images: Vec<PathBuf>,
    /// The directory to mount on, or `/dev/fd/N` for a /dev/fuse descriptor the caller mounted.
    pub mountpoint: PathBuf,
    /// Serve in this process instead of going to the background.
    pub foreground: bool,
    /// Serve requests on one thread.
    pub single_thread: bool,
    /// Log every request (and stay in the foreground).
    pub debug: bool,
    /// The `-o` options.
    pub opts: MountOpts,
}

/// What the mount opens: its images, with the `-o` settings that say how.
fn open_request(a: &MountRequest) -> Result<OpenRequest> {
    let o = &a.opts;
    let mut remote = crate::reader::remote::RemoteOptions::from_env()?;
    for s in &o.remote {
        remote.apply(s.clone());
    }
    remote.log_requests = a.debug || o.debug;
    let creds = match &o.creds {
        Some(f) => Credentials::File(f.clone()),
        None => Credentials::Stored,
    };
    let images: Vec<Named> = a.images.iter().map(|p| Named::of(p)).collect();
    Ok(OpenRequest {
        verity: verity_roots(o, images.len())?,
        offset: o.offset,
        require_verity: o.require_verity,
        remote,
        registry: crate::open::registry_access(o.insecure, &creds)?,
        // The budget is the mount's, not each layer's.
        caches: Caches::Total {
            bytes: o.cache_mb.unwrap_or(options::DEFAULT_CACHE_MB) << 20,
            min_blocks: match o.cache_mb {
                None => options::DEFAULT_CACHE_BLOCKS,
                Some(_) => 0,
            },
        },
        pread: true,
        images,
    })
}

/// A refusal in the mount options' own words.
fn refused(e: OpenError, o: &MountOpts) -> Error {
    let words = match &e {
        OpenError::VerityForRegistry(_) => {
            "verity=, verity_roothash_file= and verity_hash= are for image files: a registry image is verified against the root hashes its layers record".to_string()
        }
        OpenError::OffsetForRegistry(r) => {
            format!("{r}: offset= is for image files (a SIF artifact's image is found in it)")
        }
        OpenError::RootHashCount { given, images } => format!(
            "{} names {given} root hashes for {images} layers (separate them with ':', top layer first)",
            if o.verity_root.is_some() {
                "verity="
            } else {
                "verity_roothash_file="
            }
        ),
        OpenError::DetachedTreeLayered => {
            "verity_hash= names one detached tree; a layered mount needs each layer's tree appended"
                .to_string()
        }
        OpenError::Unverified { .. } => format!("{e} (require_verity; push with --verity)"),
        _ => return e.into(),
    };
    Error::invalid(words)
}

/// The root hashes `verity=` or `verity_roothash_file=` name: one per
/// image, separated by ':' in layer order; `verity_hash=` a detached tree
/// (for one image).
fn verity_roots(o: &MountOpts, n: usize) -> Result<Vec<VerityOptions>> {
    let tree = o.verity_hash.clone();
    let one = |v: VerityOptions| Ok(vec![v]);
    match (&o.verity_root, &o.verity_root_file) {
        (Some(hex), _) if n == 1 => one(VerityOptions::from_hex(hex, tree)?),
        (None, Some(f)) if n == 1 => one(VerityOptions::from_root_hash_file(f, tree)?),
        (Some(hex), _) => hex
            .split(':')
            .map(|h| VerityOptions::from_hex(h, tree.clone()))
            .collect(),
        (None, Some(f)) => f
            .to_string_lossy()
            .split(':')
            .map(|f| VerityOptions::from_root_hash_file(f.as_ref(), tree.clone()))
            .collect(),
        (None, None) if tree.is_some() => Err(Error::invalid(
            "a detached hash tree needs the root hash (verity= or verity_roothash_file=)",
        )),
        (None, None) => Ok(Vec::new()),
    }
}

/// The view the mount serves: the image, or the union of the layers.
fn prepare(a: &MountRequest) -> Result<fs::SqFs> {
    let o = &a.opts;
    let opened = crate::open::open_layers(&open_request(a)?).map_err(|e| refused(e, o))?;
    if let Some(note) = opened.unverified_note() {
        eprintln!("sqfuse: note: {note}");
    }
    let layered = opened.layers.len() > 1;
    if layered && o.subdir.is_some() {
        return Err(Error::invalid(
            "subdir= is for one image, not a layered mount",
        ));
    }
    let view: Arc<dyn View> = match (&opened.layers[..], &o.subdir) {
        ([one], Some(p)) => {
            let (name, img) = (&one.name, &one.image);
            let shown = crate::error::shorten(p);
            let (i, r) = img.lookup_path(p).map_err(|e| match e.kind {
                ErrorKind::NotFound => {
                    Error::invalid(format!("subdir={shown}: {name} has no such directory"))
                }
                _ => e.within(name.clone()),
            })?;
            if !i.is_dir() {
                return Err(Error::invalid(format!(
                    "subdir={shown}: not a directory in {name}"
                )));
            }
            Arc::new(ImageView::new(img.clone(), (i, r)))
        }
        _ => opened.view()?,
    };
    let debug = a.debug || o.debug;
    let mut fs = fs::SqFs::new(view.clone(), o.uid, o.gid, debug);
    if !layered {
        fs.image_name = a.images.first().map(|p| shown_name(p));
    }
    // The idle timer counts open files, which the kernel's no-open mode hides.
    fs.want_no_open = o.idle_timeout.is_none();
    if let Some(path) = &o.record {
        // Nothing is overwritten unasked: a mount option has no -f.
        if path.symlink_metadata().is_ok() {
            return Err(Error::invalid(format!(
                "record={}: the file exists (remove it, or name a new one)",
                crate::error::shown_path(path)
            )));
        }
        fs.recorder = Some(record::Recorder::new(path.clone(), view.layers()));
    }
    fs.preload = startup_profile(a, view.layers())?.map(Arc::new);
    Ok(fs)
}

/// The profile to replay: `preload=FILE` (an error if unreadable or
/// malformed), else the image's own `IMAGE.profile` beside a local image
/// (a warning if malformed); either is ignored, with a warning, when it was
/// recorded on other images.
fn startup_profile(a: &MountRequest, layers: &[Arc<Image>]) -> Result<Option<Profile>> {
    let o = &a.opts;
    let (path, explicit) = match &o.preload {
        Some(p) => (p.clone(), true),
        None if o.preload_off
            || a.images.len() != 1
            || !matches!(Named::of(&a.images[0]), Named::File(_)) =>
        {
            return Ok(None)
        }
        None => {
            let mut p = a.images[0].clone().into_os_string();
            p.push(".profile");
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Ok(None);
            }
            (p, false)
        }
    };
    let profile = match Profile::load(&path) {
        Ok(p) => p,
        Err(e) if explicit => return Err(e),
        Err(e) => {
            eprintln!(
                "sqfuse: warning: not preloading: {}",
                crate::error::Report(&e)
            );
            return Ok(None);
        }
    };
    if profile.images != Profile::identities(layers) {
        eprintln!(
            "sqfuse: warning: not preloading: {} was recorded on another image",
            crate::error::shown_path(&path)
        );
        return Ok(None);
    }
    Ok(Some(profile))
}

fn spec(a: &MountRequest) -> attach::Spec {
    let o = &a.opts;
    attach::Spec {
        fsname: o.fsname.clone().unwrap_or_else(|| {
            a.images
                .iter()
                .map(|p| shown_name(p))
                .collect::<Vec<_>>()
                .join(":")
        }),
        subtype: o.subtype.clone().unwrap_or_else(|| "sqfuse".into()),
        allow_other: o.allow_other,
        allow_root: o.allow_root,
        auto_unmount: o.auto_unmount,
        nonempty: o.nonempty,
        nosuid: o.nosuid,
        nodev: o.nodev,
        noexec: o.noexec,
        writable: o.upper.is_some(),
    }
}

fn fuser_config(a: &MountRequest, cores: usize) -> fuser::Config {
    let mut c = fuser::Config::default();
    let o = &a.opts;
    c.acl = acl(o);
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

fn acl(o: &MountOpts) -> fuser::SessionACL {
    if o.allow_other {
        fuser::SessionACL::All
    } else if o.allow_root {
        fuser::SessionACL::RootAndOwner
    } else {
        fuser::SessionACL::Owner
    }
}

/// Whether this process has written to the notify pipe. Written once only:
/// a launcher reads one byte, and a second open of the FIFO with no reader
/// left would block forever.
static NOTIFIED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `c` to the notify pipe, if one was asked for and this process
/// wrote nothing to it yet.
pub fn notify(opts: &MountOpts, c: u8) {
    let Some(pipe) = &opts.notify_pipe else {
        return;
    };
    if NOTIFIED.swap(true, Ordering::SeqCst) {
        return;
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(pipe) {
        let _ = f.write_all(&[c]);
    }
}

/// Mounts and serves until unmounted. Returns in the parent once the mount
/// is ready (or failed) unless `foreground`. Whatever fails, a notify pipe
/// hears 'f' (once). Started by mount(8), setuid bits and devices follow
/// [`MountOpts::as_mount_helper`].
pub fn mount(mut a: MountRequest) -> Result<()> {
    // Only a `suid` or `dev` can be mount(8)'s doing; the ancestry is read
    // only then (reading it costs every mount a few system calls).
    let o = &a.opts;
    let helper_words = (!o.nosuid && !o.allow_suid) || (!o.nodev && !o.allow_dev);
    if helper_words && attach::started_by_mount8() {
        a.opts.as_mount_helper();
    }
    let opts = a.opts.clone();
    let r = mount_and_serve(a);
    if r.is_err() {
        notify(&opts, b'f');
    }
    r
}

fn mount_and_serve(a: MountRequest) -> Result<()> {
    // fuser gives each session thread a zeroed 16 MiB request buffer. glibc
    // serves that from fresh, untouched mmap pages only while its mmap
    // threshold is below 16 MiB, and the threshold climbs with every large
    // free; pinned, the buffers cost only the pages requests touch. Two
    // arenas instead of one per thread: cached blocks freed by another
    // thread than the one that made them fragment many arenas (the server's
    // peak memory is in docs/benchmarks.md).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    if a.opts.rw && a.opts.upper.is_none() {
        eprintln!("sqfuse: note: rw ignored: SquashFS images are mounted read-only");
    }
    if a.images.is_empty() {
        return Err(Error::invalid("no image to mount"));
    }
    let images = a
        .images
        .iter()
        .map(|i| {
            if !matches!(Named::of(i), Named::File(_)) {
                return Ok(i.clone());
            }
            std::fs::canonicalize(i)
                .map_err(|e| Error::io(format!("cannot open {}", i.display()), e))
        })
        .collect::<Result<Vec<_>>>()?;
    // A /dev/fd/N mountpoint is a descriptor, not a path to resolve.
    let mountpoint = if attach::fd_mountpoint(&a.mountpoint).is_some() {
        a.mountpoint.clone()
    } else {
        std::fs::canonicalize(&a.mountpoint)
            .map_err(|e| attach::mountpoint_error(&a.mountpoint, e))?
    };
    let a = MountRequest {
        images,
        mountpoint,
        ..a
    };
    let spec = spec(&a);
    let prepared = prepare(&a)
        .and_then(|p| attach::precheck(&a.mountpoint, &spec).map(|_| p))
        .and_then(|p| a.opts.log.as_ref().map_or(Ok(()), log::check).map(|_| p));
    let fs = match prepared {
        Ok(p) => p,
        Err(e) => {
            notify(&a.opts, b'f');
            return Err(e);
        }
    };
    let fs = match upper::writable(&a.opts, fs) {
        Ok(s) => s,
        Err(e) => {
            notify(&a.opts, b'f');
            return Err(e);
        }
    };
    if a.foreground || a.debug || a.opts.debug {
        return serve(&a, &spec, fs, None);
    }
    // Nothing but this thread may run across the fork: a URL image's
    // network runtime is shut down here and started again by the child.
    for layer in fs.ro().view().layers() {
        layer.before_fork();
    }
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array. No other thread runs now (see
    // above); glibc's allocator is fork-safe. So fork is safe.
    // Close-on-exec: no helper we run (fusermount3 stays running with
    // auto_unmount) may hold the write end, or the parent would wait forever.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
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
            let code = match serve(&a, &spec, fs, Some(status)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code);
        }
        _ => {
            // The child serves, and removes an upper=tmp directory at the end.
            fs.leave_to_child();
            unsafe { libc::close(fds[1]) };
            let mut status = unsafe { std::fs::File::from_raw_fd(fds[0]) };
            let mut msg = Vec::new();
            let _ = status.read_to_end(&mut msg);
            match msg.split_first() {
                Some((b's', _)) => Ok(()),
                Some((_, m)) => {
                    // The child told the pipe before it told us.
                    NOTIFIED.store(true, Ordering::SeqCst);
                    Err(Error::invalid(String::from_utf8_lossy(m).into_owned()))
                }
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

/// Reports a failure to mount: to the notify pipe, the waiting parent, and
/// the caller.
fn failed(a: &MountRequest, status: &mut Option<std::fs::File>, e: Error) -> Error {
    notify(&a.opts, b'f');
    if let Some(mut s) = status.take() {
        let _ = write!(s, "f{}", crate::error::Report(&e));
    }
    e
}

fn serve(
    a: &MountRequest,
    spec: &attach::Spec,
    served: upper::Served,
    mut status: Option<std::fs::File>,
) -> Result<()> {
    // Fill-ahead pushes pages by the read-only view's node ids, which only
    // a read-only mount hands to the kernel (a writable mount's ids also
    // name upper entries that shadow lower ones).
    let read_only = matches!(served, upper::Served::ReadOnly(_));
    let fs = served.ro();
    let activity = fs.activity.clone();
    let recorder = fs.recorder.clone();
    let preload_profile = fs.preload.clone();
    let preload_stats = fs.preload_stats.clone();
    let page_fill = fs.page_fill.clone();
    let prefetch = fs.prefetch.clone();
    let fill_ahead = fs.fill_ahead.clone();
    let view = fs.view();
    let cache_blocks = view
        .layers()
        .iter()
        .map(|l| l.data_cache_blocks())
        .min()
        .unwrap_or(0);
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
    let config = fuser_config(a, cores);
    let attached = match attach::attach(&a.mountpoint, spec) {
        Ok(at) => at,
        Err(e) => return Err(failed(a, &mut status, e)),
    };
    let target = attached.target.clone();
    // Kept to the end: fusermount3 in auto_unmount mode unmounts when it closes.
    let _watch = attached.watch;
    let session = match served.session(attached.fd, config) {
        Ok(s) => s,
        Err(e) => {
            let e = Error::io("the FUSE handshake failed", e);
            if let Target::Dir(d) = &target {
                let _ = unmount(d, true);
            }
            return Err(failed(a, &mut status, e));
        }
    };
    if a.opts.page_fill {
        page_fill.start(session.0.clone());
    }
    prefetch.start(cache_blocks, cores, a.opts.prefetch);
    if read_only {
        fill_ahead.start(
            session.0.clone(),
            view.clone(),
            a.opts.fill_ahead_kb.saturating_mul(1024),
        );
    }
    notify(&a.opts, b's');
    let detached = if let Some(mut s) = status.take() {
        let _ = s.write_all(b"s");
        drop(s);
        detach_stdio();
        true
    } else {
        false
    };
    // In the background stderr leads nowhere: messages go to syslog, or
    // where log= says (in the foreground too).
    let sink = match (&a.opts.log, detached) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => Some(log::LogSink::Syslog),
        (None, false) => None,
    };
    if let Some(s) = sink {
        if let Err(e) = log::redirect_stderr(&s) {
            eprintln!("sqfuse: {}", crate::error::Report(&e));
        }
    }
    std::thread::spawn(move || {
        let _ = tx.send(Event::Ended((session.1)()));
    });
    if let Some(p) = preload_profile {
        let root = match &target {
            Target::Dir(d) => Some(d.as_path()),
            Target::Fd(_) => None,
        };
        preload::start(p, view.clone(), root, cores, preload_stats);
    }
    let save_record = || {
        if let Some(r) = &recorder {
            if let Err(e) = r.save() {
                eprintln!("sqfuse: record: {}", crate::error::Report(&e));
            }
        }
    };
    activity.touch(); // the idle clock starts now
    let idle_secs = || unix_now().saturating_sub(activity.last.load(Ordering::Relaxed));
    // Stops serving: unmounts what we mounted (lazily if files are still
    // open); a descriptor our caller mounted is theirs to unmount, so the
    // process just ends.
    let stop = |lazy_fallback: bool| -> bool {
        match &target {
            Target::Dir(d) => {
                unmount(d, false).is_ok() || (lazy_fallback && unmount(d, true).is_ok())
            }
            Target::Fd(_) => {
                save_record();
                log::finish();
                std::process::exit(0)
            }
        }
    };
    let mut unmounting = false;
    loop {
        use std::sync::mpsc::RecvTimeoutError;
        // Wake only when the idle deadline could have passed.
        let event = match a.opts.idle_timeout.filter(|_| !unmounting) {
            Some(t) => rx.recv_timeout(Duration::from_secs(t.saturating_sub(idle_secs()).max(1))),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match event {
            Ok(Event::Ended(r)) => {
                save_record();
                log::finish();
                return r.map_err(|e| Error::io("serving the mount", e));
            }
            Err(RecvTimeoutError::Disconnected) => {
                save_record();
                log::finish();
                return Ok(());
            }
            Ok(Event::Signal) if !unmounting => {
                // Files still open: detach now, keep serving them until closed.
                stop(true);
                unmounting = true;
            }
            Ok(Event::Signal) => {}
            Err(RecvTimeoutError::Timeout) => {
                let t = a.opts.idle_timeout.unwrap_or(u64::MAX);
                if activity.open.load(Ordering::Relaxed) == 0 && idle_secs() >= t && stop(false) {
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
