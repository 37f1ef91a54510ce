//! The command lines other tools run, as they write them: squashfuse_ll
//! launcher lines with auto_unmount, Apptainer's setuid fd mode, images on
//! block devices, fstab through mount(8), /proc/mounts' type, and a user
//! namespace. Each mounted tree is compared with the kernel driver's.

use crate::tree::{assert_same, snapshot};
use crate::{
    fixture_image, have, is_mounted, is_root, need_fuse, personality, scratch, skip, sqfuse,
    unmount, wait_for, KernelMount,
};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The fixture image, and a copy wrapped 4096 bytes into a bigger file (an
/// AppImage-like layout).
fn images(name: &str) -> Option<(PathBuf, PathBuf)> {
    let img = fixture_image(name, &["-comp", "gzip"])?;
    let wrapped = img.with_extension("wrapped");
    if !wrapped.exists() {
        let mut bytes = b"\x7fELF".to_vec();
        bytes.resize(4096, 0x55);
        bytes.extend(std::fs::read(&img).unwrap());
        let tmp = wrapped.with_extension(format!("tmp-{:?}", std::thread::current().id()));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &wrapped).unwrap();
    }
    Some((img, wrapped))
}

/// The tree under `mnt` equals the kernel's mount of `img` (when this
/// machine can loop-mount; root only).
fn same_as_kernel(what: &str, img: &Path, mnt: &Path) {
    let got = snapshot(mnt);
    assert!(got.len() > 100, "{what}: only {} entries", got.len());
    if let Some(k) = KernelMount::new(img, &format!("k-{what}")) {
        assert_same(&format!("{what} vs kernel"), &snapshot(&k.dir), &got);
    }
}

fn mnt(name: &str) -> PathBuf {
    let d = scratch("dropin").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cmd` to completion within `limit` (a mount that never returns
/// fails the test instead of hanging it).
fn finishes(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    let t = std::time::Instant::now();
    while !waiter.is_finished() {
        if t.elapsed() > limit {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{cmd:?} did not return within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let _ = std::fs::remove_file(p);
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
}

/// Apptainer's and AppImage launchers' line:
/// `squashfuse_ll -ooffset=N -onotify_pipe=P -oauto_unmount -otimeout=1 IMG MNT`
/// (alone, and with allow_root / allow_other). It returns, says 's', serves
/// the tree, unmounts itself when idle, and fusermount3 unmounts it when
/// the server is killed.
#[test]
fn squashfuse_ll_launcher_line_with_auto_unmount() {
    need_fuse!();
    if !have("fusermount3") {
        skip!("auto_unmount needs fusermount3");
    }
    let Some((img, wrapped)) = images("launcher") else {
        return;
    };
    let ll = personality("squashfuse_ll");
    let extra: &[&[&str]] = if is_root() {
        &[&[], &["-oallow_root"], &["-oallow_other"]]
    } else {
        &[&[]]
    };
    for (i, extra) in extra.iter().enumerate() {
        let dir = mnt(&format!("launcher-{i}"));
        let pipe = scratch("dropin").join(format!("notify-{i}"));
        mkfifo(&pipe);
        let reader = {
            let pipe = pipe.clone();
            std::thread::spawn(move || std::fs::read(pipe).unwrap())
        };
        let out = finishes(
            Command::new(&ll)
                .arg("-ooffset=4096")
                .arg(format!("-onotify_pipe={}", pipe.display()))
                .arg("-oauto_unmount")
                .arg("-otimeout=2")
                .args(*extra)
                .arg(&wrapped)
                .arg(&dir),
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(reader.join().unwrap(), b"s", "{extra:?}: notify pipe");
        same_as_kernel(&format!("launcher-{i}"), &img, &dir);
        assert!(
            wait_for(Duration::from_secs(15), || !is_mounted(&dir)),
            "{extra:?}: the idle timeout unmounts"
        );
    }
    // Killed outright, the server cannot unmount: fusermount3 does.
    let dir = mnt("launcher-kill");
    let out = finishes(
        Command::new(&ll)
            .args(["-o", "auto_unmount"])
            .arg(&img)
            .arg(&dir),
        Duration::from_secs(20),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(&dir));
    let pids = Command::new("pgrep")
        .args([
            "-f",
            &format!("squashfuse_ll -o auto_unmount {}", img.display()),
        ])
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .next()
        .expect("the server runs")
        .parse()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(
        wait_for(Duration::from_secs(10), || !is_mounted(&dir)),
        "fusermount3 unmounts after the server died"
    );
}

/// Apptainer's setuid mode: the caller opens /dev/fuse, mounts it with
/// fd=N itself, and runs `squashfuse_ll -f -o ro /proc/self/fd/3 /dev/fd/N`
/// with the image on descriptor 3.
#[test]
fn apptainer_fd_mountpoint() {
    need_fuse!();
    if !is_root() {
        skip!("mounting a /dev/fuse descriptor needs root");
    }
    let Some((img, _)) = images("fdmode") else {
        return;
    };
    let dir = mnt("fdmode");
    let fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .unwrap();
    use std::os::fd::AsRawFd;
    // Well above 3, where the image goes.
    let fd = unsafe { libc::fcntl(fuse.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 20) };
    assert!(fd >= 20);
    drop(fuse);
    let opts = format!("fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other");
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let target = c(dir.to_str().unwrap());
    let rc = unsafe {
        libc::mount(
            c("squashfuse").as_ptr(),
            target.as_ptr(),
            c("fuse.squashfuse").as_ptr(),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            c(&opts).as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mount fd={fd}: {}", std::io::Error::last_os_error());
    let image = std::fs::File::open(&img).unwrap();
    let image_fd = image.as_raw_fd();
    let mut cmd = Command::new(personality("squashfuse_ll"));
    cmd.args(["-f", "-o", "ro", "/proc/self/fd/3"])
        .arg(format!("/dev/fd/{fd}"))
        .stderr(Stdio::piped());
    unsafe {
        cmd.pre_exec(move || {
            // The image on 3 and the fuse descriptor, both kept across exec.
            if image_fd != 3 && libc::dup2(image_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for keep in [3, fd] {
                let flags = libc::fcntl(keep, libc::F_GETFD);
                libc::fcntl(keep, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
            Ok(())
        });
    }
    let mut server = cmd.spawn().unwrap();
    unsafe { libc::close(fd) }; // the server holds it now
    if !wait_for(Duration::from_secs(10), || dir.join("data").exists()) {
        let _ = server.kill();
        let out = server.wait_with_output().unwrap();
        panic!(
            "the fd mount does not serve: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    same_as_kernel("fdmode", &img, &dir);
    unmount(&dir);
    let st = server.wait().unwrap();
    assert!(st.success(), "the server ends cleanly once unmounted");
}

/// An image on a block device (`sqfuse /dev/loop0 MNT`, `sqfuse info
/// /dev/loop0`), with the offset applied by the loop device.
#[test]
fn images_on_block_devices() {
    need_fuse!();
    if !is_root() || !have("losetup") {
        skip!("loop devices need root and losetup");
    }
    let Some((img, wrapped)) = images("blockdev") else {
        return;
    };
    let out = Command::new("losetup")
        .args(["-r", "-f", "--show", "-o", "4096"])
        .arg(&wrapped)
        .output()
        .unwrap();
    if !out.status.success() {
        skip!(machine: "losetup: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    struct Detach(PathBuf);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }
    let _detach = Detach(dev.clone());
    let info = |p: &Path| {
        let o = sqfuse().args(["info", "--json"]).arg(p).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_object_mut().unwrap().remove("image");
        v
    };
    assert_eq!(info(&dev), info(&img), "info of the device and of the file");
    let dir = mnt("blockdev");
    let out = sqfuse().arg(&dev).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_as_kernel("blockdev", &img, &dir);
    unmount(&dir);
}

/// /proc/mounts line for a mountpoint: (source, type, options).
fn mount_line(dir: &Path) -> (String, String, String) {
    let want = std::fs::canonicalize(dir).unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == want.to_str())
        .unwrap_or_else(|| panic!("{} not in /proc/mounts", dir.display()))
        .to_string();
    let f: Vec<&str> = line.split(' ').collect();
    (f[0].into(), f[2].into(), f[3].into())
}

/// fstab's way, through mount(8) and mount.fuse3: `offset=` becomes a loop
/// device (mount(8) applies it), `image_offset=auto` is ours to find,
/// `defaults` passes `rw` (mounted read-only, with a note); the type is
/// fuse.sqfuse and the source the image, so `findmnt -t fuse.sqfuse` sees it.
#[test]
fn fstab_lines_through_mount8() {
    need_fuse!();
    if !is_root() || !have("mount.fuse3") {
        skip!("mount(8) with fuse types needs root and mount.fuse3");
    }
    let Some((img, wrapped)) = images("fstab8") else {
        return;
    };
    // mount(8) runs mount.fuse3 with a fixed PATH, which runs `sqfuse` from
    // it: put the binary where an installation would (unless one is there).
    let installed = Path::new("/usr/local/bin/sqfuse");
    struct Uninstall(Option<PathBuf>);
    impl Drop for Uninstall {
        fn drop(&mut self) {
            if let Some(p) = &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _uninstall = if installed.symlink_metadata().is_err() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sqfuse"), installed).unwrap();
        Uninstall(Some(installed.to_path_buf()))
    } else {
        eprintln!("NOTE: using the sqfuse already in /usr/local/bin for mount(8)");
        Uninstall(None)
    };
    for (i, opts) in [
        "ro,offset=4096",
        "ro,image_offset=auto,allow_other",
        "defaults,image_offset=4096",
    ]
    .iter()
    .enumerate()
    {
        let dir = mnt(&format!("fstab8-{i}"));
        let out = Command::new("mount")
            .args(["-t", "fuse.sqfuse", "-o", opts])
            .arg(&wrapped)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -o {opts}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (source, fstype, mopts) = mount_line(&dir);
        assert_eq!(fstype, "fuse.sqfuse", "{opts}");
        assert!(mopts.starts_with("ro"), "{opts}: {mopts}");
        if opts.contains("offset=4096") && !opts.contains("image_offset") {
            assert!(source.starts_with("/dev/loop"), "{opts}: {source}");
        } else {
            assert_eq!(Path::new(&source), std::fs::canonicalize(&wrapped).unwrap());
        }
        let found = Command::new("findmnt")
            .args(["-n", "-t", "fuse.sqfuse", "-o", "TARGET"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&found.stdout).contains(dir.to_str().unwrap()),
            "findmnt -t fuse.sqfuse"
        );
        if opts.starts_with("defaults") {
            let e = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("data/text"))
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EROFS));
        }
        same_as_kernel(&format!("fstab8-{i}"), &img, &dir);
        let um = Command::new("umount").arg(&dir).status().unwrap();
        assert!(um.success());
    }
}

/// The mount's /proc/mounts entry: type fuse.sqfuse and the image as the
/// source, as root (mounted directly) and through fusermount3 (as nobody);
/// fsname= and subtype= are honoured.
#[test]
fn proc_mounts_names_the_image_and_type() {
    need_fuse!();
    let Some((img, _)) = images("procmounts") else {
        return;
    };
    let dir = mnt("procmounts");
    let out = sqfuse().arg(&img).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (source, fstype, _) = mount_line(&dir);
    assert_eq!(fstype, "fuse.sqfuse");
    assert_eq!(Path::new(&source), std::fs::canonicalize(&img).unwrap());
    unmount(&dir);
    let out = sqfuse()
        .arg(&img)
        .arg(&dir)
        .args(["-o", "fsname=tools,subtype=apps"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mount_line(&dir).0.as_str(),
        "tools",
        "fsname= is the source"
    );
    assert_eq!(mount_line(&dir).1, "fuse.apps");
    unmount(&dir);
    let _mode_lock = crate::dev_fuse_mode_lock();
    if let Some(why) = crate::fuse_closed_to_others() {
        crate::skipped(&format!("rootless /proc/mounts check: {why}"), true);
    } else if is_root() && have("setpriv") && have("fusermount3") {
        let d = scratch("procmounts-nobody");
        let (m, copy) = (d.join("mnt"), d.join("img.sqfs"));
        std::fs::create_dir_all(&m).unwrap();
        std::fs::copy(&img, &copy).unwrap();
        crate::reachable_by_nobody(&d);
        Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&d)
            .status()
            .unwrap();
        let out = crate::as_nobody(env!("CARGO_BIN_EXE_sqfuse"))
            .arg(&copy)
            .arg(&m)
            .output()
            .unwrap();
        if out.status.success() {
            let (source, fstype, _) = mount_line(&m);
            assert_eq!(fstype, "fuse.sqfuse", "through fusermount3");
            assert_eq!(Path::new(&source), copy.as_path());
            unmount(&m);
        } else {
            panic!(
                "rootless mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    } else {
        crate::skipped(
            "rootless /proc/mounts check: needs root (to become nobody), setpriv and fusermount3",
            false,
        );
    }
}

/// An unprivileged user in a user and mount namespace (`unshare -rm`) is
/// root there and mounts directly; the tree is the kernel's.
#[test]
fn unprivileged_user_namespace_mount() {
    need_fuse!();
    if !is_root() || !have("unshare") || !have("setpriv") {
        skip!("needs root (to become nobody), unshare and setpriv");
    }
    let Some((img, _)) = images("userns") else {
        return;
    };
    // Distributions ship /dev/fuse as 0666 (this is what lets a user
    // namespace open it); some containers make it 0600: as shipped, for now.
    use std::os::unix::fs::PermissionsExt;
    let _mode_lock = crate::dev_fuse_mode_lock();
    let mode = std::fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o777;
    struct Restore(u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(self.0));
        }
    }
    let _restore = (mode != 0o666).then(|| {
        eprintln!(
            "NOTE: /dev/fuse is {mode:o} here; 0666 (as distributions ship it) for this test"
        );
        std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666)).unwrap();
        Restore(mode)
    });
    let d = scratch("userns");
    let (m, copy) = (d.join("mnt"), d.join("img.sqfs"));
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy(&img, &copy).unwrap();
    crate::reachable_by_nobody(&d);
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&d)
        .status()
        .unwrap();
    // /dev/fuse closed to others (as some containers have it): the error
    // names /dev/fuse, not the mountpoint.
    std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = crate::as_nobody("unshare")
        .args(["-rm"])
        .arg(env!("CARGO_BIN_EXE_sqfuse"))
        .arg(&copy)
        .arg(&m)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("unshare failed") {
        skip!(machine: "unprivileged user namespaces are off here: {}", err.trim());
    }
    assert!(!out.status.success());
    assert_eq!(
        err,
        "sqfuse: cannot open /dev/fuse (mode 0600): mounting needs read and write access to it; \
         make it 0666 as most distributions ship it (in a container: --device /dev/fuse), or mount as root\n"
    );
    std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666)).unwrap();
    // Inside: mount, list every path with its size, unmount.
    let script = format!(
        "{bin} {img} {m} -o offset=0 && (cd {m} && find . -printf '%p %s %m\\n' | sort) && fusermount3 -u {m} 2>/dev/null || umount {m}",
        bin = env!("CARGO_BIN_EXE_sqfuse"),
        img = copy.display(),
        m = m.display()
    );
    let out = crate::as_nobody("unshare")
        .args(["-rm", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (err.contains("unshare failed") || err.contains("Operation not permitted"))
    {
        skip!(machine: "unprivileged user namespaces are off here: {}", err.trim());
    }
    assert!(out.status.success(), "{err}");
    let inside = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(k) = KernelMount::new(&img, "k-userns") else {
        return;
    };
    let want = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . -printf '%p %s %m\\n' | sort",
            k.dir.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        inside,
        String::from_utf8_lossy(&want.stdout),
        "the namespace's mount lists what the kernel's does"
    );
}
