//! `-o preload=FILE`: replays a start-up profile once the mount is up, so
//! what the program will ask for is ready before it asks.
//!
//! Two kinds of work run beside the program, on threads of low priority:
//! - the image ranges the profile lists, in order and coalesced, are
//!   handed to the kernel's read-ahead (a file) or fetched into a URL
//!   image's chunk cache, before any request needs them;
//! - the names, listings and file ranges are walked through the mount
//!   itself, on several threads: lookups leave entries (and absent names)
//!   in the kernel's dentry cache, listings in its directory cache, reads
//!   leave the decompressed data in the page cache. The program then finds
//!   most of its requests answered by the kernel with no round trip.
//!
//! Memory: nothing is kept here; what is brought in lives in the kernel's
//! caches (reclaimable) and the reader's bounded caches. Paths are resolved
//! inside the mount (`openat2` with `RESOLVE_IN_ROOT`, no other mounts, no
//! magic links), and only regular files are read (opened non-blocking), so
//! a hostile profile cannot make the server read anything else.

use crate::profile::{ImageRange, Profile, ProfileStep};
use crate::view::View;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Ranges closer than this are read as one (a short gap costs less than a
/// second request).
const COALESCE_GAP: u64 = 64 << 10;

/// What the preload has done, for `user.sqfuse.stats`.
#[derive(Default)]
pub struct PreloadStats {
    /// Steps replayed (done or failed).
    pub steps: AtomicU64,
    /// File bytes read through the mount.
    pub bytes: AtomicU64,
    pub range_bytes: AtomicU64,
    /// Set once both kinds of work are done (or gave up).
    pub finished: AtomicBool,
}

/// The profile's ranges in first-use order, neighbours merged.
pub fn coalesce(ranges: &[ImageRange]) -> Vec<ImageRange> {
    let mut out: Vec<ImageRange> = Vec::new();
    for r in ranges {
        if let Some(last) = out.last_mut() {
            let end = last.offset + last.len;
            if last.layer == r.layer && r.offset >= last.offset && r.offset <= end + COALESCE_GAP {
                last.len = last.len.max(r.offset + r.len - last.offset);
                continue;
            }
        }
        out.push(*r);
    }
    out
}

/// Starts replaying `profile` over the mount at `root` (`None`: a mount
/// on a descriptor, where only the ranges can be warmed).
pub fn start(
    profile: Arc<Profile>,
    view: Arc<dyn View>,
    root: Option<&Path>,
    threads: usize,
    stats: Arc<PreloadStats>,
) {
    let ranges = coalesce(&profile.ranges);
    let layers = view.layers().to_vec();
    let rstats = stats.clone();
    // The ranges' thread and the steps' workers: the last one out says done.
    let workers = threads.max(1);
    let running = Arc::new(AtomicUsize::new(workers + 1));
    let finish = |running: &AtomicUsize, stats: &PreloadStats| {
        if running.fetch_sub(1, Ordering::Relaxed) == 1 {
            stats.finished.store(true, Ordering::Relaxed);
        }
    };
    let rrunning = running.clone();
    let spawned = std::thread::Builder::new()
        .name("sqfuse-preload".into())
        .spawn(move || {
            lower_priority();
            for r in ranges {
                let Some(img) = layers.get(r.layer) else {
                    continue;
                };
                if img.warm_range(r.offset, r.len).is_err() {
                    break;
                }
                rstats.range_bytes.fetch_add(r.len, Ordering::Relaxed);
            }
            finish(&rrunning, &rstats);
        });
    if spawned.is_err() {
        finish(&running, &stats);
    }
    let Some(root) = root.and_then(|r| open_root(r).ok()) else {
        for _ in 0..workers {
            finish(&running, &stats);
        }
        return;
    };
    let root = Arc::new(root);
    let next = Arc::new(AtomicUsize::new(0));
    for _ in 0..workers {
        let (profile, root, next, done, left) = (
            profile.clone(),
            root.clone(),
            next.clone(),
            stats.clone(),
            running.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("sqfuse-preload".into())
            .spawn(move || {
                lower_priority();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(step) = profile.steps.get(i) else {
                        break;
                    };
                    let r = replay(&root, step, &mut buf);
                    done.steps.fetch_add(1, Ordering::Relaxed);
                    match r {
                        Ok(n) => {
                            done.bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        // The mount went away (or openat2 is missing): stop.
                        Err(e) if e == libc::ENOTCONN || e == libc::ENOSYS => break,
                        Err(_) => {}
                    }
                }
                finish(&left, &done);
            });
        if spawned.is_err() {
            finish(&running, &stats);
        }
    }
}

/// Preloading yields to everything else on the machine.
fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(root.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; the descriptor is owned from here on.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `path` (from the mount's root) as if the mount were `/`: absolute
/// symbolic links stay inside, no other mount is entered.
fn open_in(root: &OwnedFd, path: &[u8], flags: i32) -> Result<OwnedFd, i32> {
    let rel: &[u8] = match path.iter().position(|&b| b != b'/') {
        Some(k) => &path[k..],
        None => b".",
    };
    let c = CString::new(rel).map_err(|_| libc::EINVAL)?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;
    // SAFETY: valid pointers for the call; the result is a new descriptor.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    } as i32;
    if fd < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    // SAFETY: fd was just opened and is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Does one step through the mount; the file bytes read, or the errno
/// that stopped it.
fn replay(root: &OwnedFd, step: &ProfileStep, buf: &mut [u8]) -> Result<u64, i32> {
    match step {
        ProfileStep::Look(p) => match open_in(root, p, libc::O_PATH | libc::O_NOFOLLOW) {
            // Absent names are what the lookup was for (a cached negative entry).
            Ok(_) | Err(libc::ENOENT) => Ok(0),
            Err(e) => Err(e),
        },
        ProfileStep::List(p) => {
            let fd = open_in(root, p, libc::O_RDONLY | libc::O_DIRECTORY)?;
            // getdents64 until the end: fills the kernel's directory cache.
            loop {
                // SAFETY: buf is valid for its length.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        fd.as_raw_fd(),
                        buf.as_mut_ptr(),
                        buf.len(),
                    )
                };
                if n <= 0 {
                    return Ok(0);
                }
            }
        }
        ProfileStep::Read { path, offset, len } => {
            let fd = open_in(
                root,
                path,
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW,
            )?;
            // SAFETY: st is written by fstat before use.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0
                || st.st_mode & libc::S_IFMT != libc::S_IFREG
            {
                return Ok(0);
            }
            let end = offset.saturating_add(*len).min(st.st_size as u64);
            let mut at = *offset;
            let mut done = 0;
            while at < end {
                let want = ((end - at) as usize).min(buf.len());
                // SAFETY: buf is valid for `want` bytes.
                let n = unsafe {
                    libc::pread(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        want,
                        at as libc::off_t,
                    )
                };
                if n <= 0 {
                    break;
                }
                at += n as u64;
                done += n as u64;
            }
            Ok(done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_ranges_are_read_as_one() {
        let r = |layer, offset, len| ImageRange { layer, offset, len };
        let got = coalesce(&[
            r(0, 100, 50),
            r(0, 150, 10),
            r(0, 160 + COALESCE_GAP, 5),
            r(1, 170 + COALESCE_GAP, 5),
            r(0, 10, 5),
        ]);
        assert_eq!(
            got,
            vec![
                r(0, 100, 65 + COALESCE_GAP),
                r(1, 170 + COALESCE_GAP, 5),
                r(0, 10, 5)
            ]
        );
    }
}
