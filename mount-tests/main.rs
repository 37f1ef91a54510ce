//! Tests that really mount images: sqfuse through FUSE, compared with the
//! source tree and with the kernel's squashfs driver (loop mount, as root).

mod corrupt; // a damaged block is EIO for its reads only; the mount stays up; the damage logged once (syslog, log=FILE)
mod dropin; // other tools' command lines as they write them: launchers, fd mode, loop devices, fstab, namespaces
mod layers; // several images as one tree: the same as the kernel's overlayfs, for every whiteout form
mod messages; // mount errors by exact text, the same in the background: said once, with what to do
mod options; // offset, subdir, uid/gid, timeout, notify_pipe, signals, fstab-style options
mod prefetch; // sequential readers with blocks decoded ahead, damaged blocks among them
mod privileges; // a root mount for every user: setuid ignored, devices refused, modes enforced (unless -o suid,dev)
mod profiles; // start-up profiles recorded and replayed, hostile ones; requests the kernel stops sending
mod registry_faults; // registry mounts vs the kernel, through redirects, expiring tokens, a registry restart; bytes one file costs
mod registry_mounts; // images mounted straight from a registry: lazy range reads, merged layers, blocks verified against recorded root hashes
mod remote; // images mounted from nginx: equal to the kernel mount, EIO while the server is down, recovery
mod stress; // 16 threads reading random ranges, every byte checked
mod trees; // mounted trees equal the source and the kernel's view, for every image
mod umount; // sqfuse umount: busy mounts named with their holders, -l, dead servers, a user's own mount
mod verity; // mounts verified against a dm-verity root: served as the source, tampering EIO, veritysetup trees
mod writable; // writable mounts: the same as kernel overlayfs after the same operations; its upper mounts there; pack --layer; faults

#[path = "../tests/common/mod.rs"]
mod common;
pub use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Why mounting cannot be tested here, if it cannot.
pub fn cannot_mount() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    if !is_root() && !have("fusermount3") {
        return Some("not root and no fusermount3".into());
    }
    None
}

/// Skips the test (loudly) when FUSE mounts are impossible here.
#[macro_export]
macro_rules! need_fuse {
    () => {
        if let Some(why) = $crate::cannot_mount() {
            $crate::skip!("cannot mount: {why}");
        }
    };
}

/// Held by every test that changes /dev/fuse's mode or depends on it (as
/// `nobody`): one changing it while another reads it would make both flaky.
pub static DEV_FUSE_MODE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The [`DEV_FUSE_MODE`] lock (a panic while another held it is no reason
/// to fail here).
pub fn dev_fuse_mode_lock() -> std::sync::MutexGuard<'static, ()> {
    DEV_FUSE_MODE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits up to `limit` for `cond`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// The pid of the server mounted on `dir` (its command line names it).
pub fn server_pid(dir: &Path) -> Option<u32> {
    let want = dir.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let is_server = cmd.split(|&b| b == 0).any(|a| a == want)
            && cmd.split(|&b| b == 0).any(|a| a.ends_with(b"sqfuse"));
        is_server.then_some(pid)
    })
}

/// `sqfuse IMAGE... DIR -o OPT...` for a fresh DIR named `name` below the
/// scratch mounts, not yet run: the directory and the command.
pub fn mount_command(images: &[&Path], name: &str, opts: &[&str]) -> (PathBuf, Command) {
    let dir = scratch("mnt").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = sqfuse();
    cmd.args(images).arg(&dir);
    for o in opts {
        cmd.args(["-o", o]);
    }
    (dir, cmd)
}

/// An sqfuse mount, unmounted on drop.
pub struct Mounted {
    pub dir: PathBuf,
}

impl Mounted {
    /// `sqfuse IMAGE DIR -o OPTS` in the background; returns once it is ready.
    pub fn new(image: &Path, name: &str, opts: &[&str]) -> Mounted {
        Self::layers(&[image], name, opts)
    }

    /// `sqfuse TOP ... BOTTOM DIR -o OPTS`: the union of the images.
    pub fn layers(images: &[&Path], name: &str, opts: &[&str]) -> Mounted {
        let (dir, mut cmd) = mount_command(images, name, opts);
        let image = images[0];
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "mount {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            is_mounted(&dir),
            "sqfuse returned 0 but {} is not mounted",
            dir.display()
        );
        Mounted { dir }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount(&self.dir);
    }
}

/// A copy of `img` and an empty mountpoint, both `nobody`'s, in a scratch
/// directory `name` that `nobody` can reach: (mountpoint, image).
pub fn owned_by_nobody(name: &str, img: &Path) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let (mnt, image) = (dir.join("mnt"), dir.join("img.sqfs"));
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::copy(img, &image).unwrap();
    reachable_by_nobody(&dir);
    assert!(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    (mnt, image)
}

/// Packs the fixture tree with mksquashfs (None, with a SKIPPED line, if
/// squashfs-tools is missing).
pub fn fixture_image(name: &str, opts: &[&str]) -> Option<PathBuf> {
    if !have("mksquashfs") {
        skipped("mksquashfs missing (apt-get install squashfs-tools)", false);
        return None;
    }
    let img = scratch("images").join(format!("{name}.sqfs"));
    if !img.exists() {
        // Built under a name of this thread's own and renamed: tests
        // running at once that share an image never see it half written.
        let tmp = img.with_extension(format!("tmp-{:?}", std::thread::current().id()));
        run(Command::new("mksquashfs")
            .arg(fixture())
            .arg(&tmp)
            .args(["-noappend", "-quiet", "-no-progress", "-processors", "2"])
            .args(opts));
        std::fs::rename(&tmp, &img).unwrap();
    }
    Some(img)
}

/// `user.sqfuse.stats` of a mount, by name.
pub fn stats(dir: &Path) -> std::collections::HashMap<String, u64> {
    let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 8192];
    // SAFETY: valid C strings and a buffer of the length given.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.sqfuse.stats".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert!(n > 0, "no user.sqfuse.stats on {}", dir.display());
    String::from_utf8_lossy(&buf[..n as usize])
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}
