use crate::tree::{assert_same, snapshot};
use crate::{
    corpora, fixture, fixture_image, have, is_mounted, is_root, need_fuse, scratch, server_pid,
    skip, sqfuse, wait_for, Mounted,
};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sif() -> std::path::PathBuf {
    corpora().join("images/sylabs-sif/one-group.sif")
}

#[test]
fn offset_given_and_auto_read_the_embedded_image() {
    need_fuse!();
    let sif = sif();
    let plain = Mounted::new(
        &corpora().join("images/sylabs-sif/root.squashfs"),
        "sif-plain",
        &[],
    );
    let given = Mounted::new(&sif, "sif-given", &["offset=36864"]);
    let auto = Mounted::new(&sif, "sif-auto", &["offset=auto"]);
    assert_same("offset=36864", &snapshot(&plain.dir), &snapshot(&given.dir));
    assert_same("offset=auto", &snapshot(&plain.dir), &snapshot(&auto.dir));

    // An AppImage-like file: an executable stub, then the image.
    let Some(img) = fixture_image("offset-src", &["-comp", "lz4"]) else {
        return;
    };
    let wrapped = scratch("offset").join("app.AppImage");
    let mut bytes: Vec<u8> = std::fs::read("/bin/true").unwrap();
    bytes.resize(bytes.len().next_multiple_of(4096) + 123, 0);
    bytes.extend(std::fs::read(&img).unwrap());
    std::fs::write(&wrapped, &bytes).unwrap();
    let m = Mounted::new(&wrapped, "appimage", &["offset=auto"]);
    assert_same(
        "AppImage offset=auto",
        &snapshot(fixture()),
        &snapshot(&m.dir),
    );
}

#[test]
fn subdir_mounts_a_subtree() {
    need_fuse!();
    let Some(img) = fixture_image("subdir", &["-comp", "zstd"]) else {
        return;
    };
    let m = Mounted::new(&img, "subdir", &["subdir=/links"]);
    assert_same(
        "subdir=/links",
        &snapshot(&fixture().join("links")),
        &snapshot(&m.dir),
    );
    let deep = Mounted::new(&img, "subdir-deep", &["subdir=deep/level0/level1"]);
    assert!(deep.dir.join("level2").is_dir());
    let bad = sqfuse()
        .arg(&img)
        .arg(scratch("mnt").join("subdir"))
        .args(["-o", "subdir=/data/text"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn uid_and_gid_override_every_owner() {
    need_fuse!();
    let Some(img) = fixture_image("owners", &["-comp", "gzip"]) else {
        return;
    };
    for (uid, gid) in [(0u32, 0u32), (1234, 5678)] {
        let m = Mounted::new(
            &img,
            &format!("owner{uid}"),
            &[&format!("uid={uid},gid={gid}")],
        );
        for p in ["modes/owner-big", "modes", "data/text", "symlinks/relative"] {
            let full = m.dir.join(p);
            if !full.exists() && std::fs::symlink_metadata(&full).is_err() {
                continue;
            }
            let md = std::fs::symlink_metadata(&full).unwrap();
            assert_eq!((md.uid(), md.gid()), (uid, gid), "{p}");
        }
    }
}

#[test]
fn idle_timeout_unmounts_by_itself() {
    need_fuse!();
    let Some(img) = fixture_image("timeout", &["-comp", "lz4"]) else {
        return;
    };
    let m = Mounted::new(&img, "timeout", &["timeout=1"]);
    assert!(
        wait_for(Duration::from_secs(10), || !is_mounted(&m.dir)),
        "still mounted after the idle timeout"
    );
    // A mount with an open file stays up past the timeout.
    let m2 = Mounted::new(&img, "timeout-open", &["timeout=1"]);
    let f = std::fs::File::open(m2.dir.join("data/text")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(is_mounted(&m2.dir), "unmounted with a file open");
    drop(f);
    assert!(wait_for(Duration::from_secs(10), || !is_mounted(&m2.dir)));
}

/// Voluntary context switches of all the process's threads.
fn wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .map(|t| {
            let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            st.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// An idle mount sleeps: no thread wakes up while nothing happens (the
/// serving loop used to poll five times a second), with and without an
/// idle timeout pending.
#[test]
fn idle_mount_does_not_wake_up() {
    need_fuse!();
    let Some(img) = fixture_image("timeout", &["-comp", "lz4"]) else {
        return;
    };
    for (name, opts) in [("sleep", vec![]), ("sleep-timeout", vec!["timeout=600"])] {
        let m = Mounted::new(&img, name, &opts);
        assert!(std::fs::read(m.dir.join("data/text")).is_ok());
        let pid = server_pid(&m.dir).expect("the server's process");
        std::thread::sleep(Duration::from_millis(300)); // let the page-fill push settle
        let before = wakeups(pid);
        std::thread::sleep(Duration::from_secs(2));
        let woke = wakeups(pid) - before;
        assert!(woke <= 2, "{opts:?}: {woke} wake-ups in 2 idle seconds");
    }
}

fn read_notify(pipe: &Path) -> std::thread::JoinHandle<Vec<u8>> {
    let pipe = pipe.to_path_buf();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        std::fs::File::open(&pipe)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        v
    })
}

#[test]
fn notify_pipe_says_s_or_f() {
    need_fuse!();
    let Some(img) = fixture_image("notify", &["-comp", "lz4"]) else {
        return;
    };
    let dir = scratch("notify");
    let pipe = dir.join("pipe");
    let c = std::ffi::CString::new(pipe.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = read_notify(&pipe);
    let opt = format!("notify_pipe={}", pipe.display());
    let m = Mounted::new(&img, "notify", &[&opt]);
    assert_eq!(reader.join().unwrap(), b"s");
    drop(m);
    let reader = read_notify(&pipe);
    let mnt = scratch("mnt").join("notify-fail");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = sqfuse()
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .arg(&mnt)
        .args(["-o", &opt])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(reader.join().unwrap(), b"f");
}

/// SIGTERM with a file open: the mount goes away at once (lazily), the open
/// file still reads, and the server exits 0 once it is closed.
/// What arrives on the FIFO within `limit` (the FIFO held open for reading
/// the whole time, so a writer never blocks and a missing write cannot
/// hang the test).
fn notified_within(pipe: &Path, limit: Duration) -> Vec<u8> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(pipe)
        .unwrap();
    let mut got = Vec::new();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    while start.elapsed() < limit {
        match f.read(&mut buf) {
            Ok(0) if !got.is_empty() => break, // written and closed
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("reading {}: {e}", pipe.display()),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    got
}

/// Every failure once notify_pipe is named writes one 'f': squashfuse's
/// own smoke test waits on the pipe with a mountpoint that does not exist.
#[test]
fn notify_pipe_hears_f_for_every_failure() {
    need_fuse!();
    let Some(img) = fixture_image("notify-f", &["-comp", "lz4"]) else {
        return;
    };
    let dir = scratch("notify-f");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let ll = crate::personality("squashfuse_ll");
    let cases: Vec<(&str, Command)> = vec![
        ("no mountpoint, foreground", {
            let mut c = Command::new(&ll);
            c.arg("-f").arg(&img).arg(dir.join("nonexistent"));
            c
        }),
        ("no mountpoint, background", {
            let mut c = Command::new(&ll);
            c.arg(&img).arg(dir.join("nonexistent"));
            c
        }),
        ("no image", {
            let mut c = sqfuse();
            c.arg(dir.join("missing.sqfs")).arg(&mnt);
            c
        }),
        ("unknown option after the pipe", {
            let mut c = sqfuse();
            c.arg(&img).arg(&mnt).args(["-o", "frobnicate"]);
            c
        }),
        ("unknown option, squashfuse_ll", {
            let mut c = Command::new(&ll);
            c.args(["-o", "frobnicate"]).arg(&img).arg(&mnt);
            c
        }),
    ];
    for (i, (what, mut cmd)) in cases.into_iter().enumerate() {
        let pipe = dir.join(format!("pipe{i}"));
        let c = std::ffi::CString::new(pipe.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // The pipe comes first: options after it fail with it known.
        let mut full = Command::new(cmd.get_program());
        full.args(["-o", &format!("notify_pipe={}", pipe.display())])
            .args(cmd.get_args());
        let _ = &mut cmd;
        let mut child = full
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let got = notified_within(&pipe, Duration::from_secs(10));
        let status = wait_child(&mut child, Duration::from_secs(10));
        if status.is_none() {
            let _ = child.kill();
        }
        assert_eq!(got, b"f", "{what}: the pipe heard {got:?}");
        assert!(
            matches!(status, Some(s) if s != 0),
            "{what}: exit {status:?}"
        );
        assert!(!is_mounted(&mnt));
    }
}

#[test]
fn sigterm_with_a_file_open_unmounts_lazily_and_exits_zero() {
    need_fuse!();
    let Some(img) = fixture_image("sigterm", &["-comp", "zstd"]) else {
        return;
    };
    let mnt = scratch("mnt").join("sigterm");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut child = sqfuse()
        .arg(&img)
        .arg(&mnt)
        .arg("-f")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || is_mounted(&mnt)),
        "foreground mount did not come up"
    );
    let mut f = std::fs::File::open(mnt.join("data/text")).unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(
        wait_for(Duration::from_secs(10), || !is_mounted(&mnt)),
        "still mounted after SIGTERM"
    );
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, std::fs::read(fixture().join("data/text")).unwrap());
    assert!(
        child.try_wait().unwrap().is_none(),
        "server exited with a file still open"
    );
    drop(f);
    let st = wait_child(&mut child, Duration::from_secs(10));
    assert_eq!(st, Some(0), "exit status after SIGTERM");
    // SIGINT with nothing open exits promptly too.
    let mut child = sqfuse().arg(&img).arg(&mnt).arg("-f").spawn().unwrap();
    assert!(wait_for(Duration::from_secs(10), || is_mounted(&mnt)));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(wait_child(&mut child, Duration::from_secs(10)), Some(0));
    assert!(!is_mounted(&mnt));
}

fn wait_child(c: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let mut code = None;
    wait_for(limit, || match c.try_wait() {
        Ok(Some(s)) => {
            code = s.code();
            true
        }
        _ => false,
    });
    code
}

#[test]
fn fstab_style_options_are_accepted_and_rw_mounts_read_only() {
    need_fuse!();
    let Some(img) = fixture_image("fstab", &["-comp", "gzip"]) else {
        return;
    };
    let m = Mounted::new(
        &img,
        "fstab",
        &["ro,nosuid,nodev,noatime,user,noauto,_netdev,x-systemd.automount,allow_other"],
    );
    assert!(m.dir.join("data/text").is_file());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.contains(m.dir.to_str().unwrap()))
        .unwrap();
    assert!(
        line.contains("ro,") && line.contains("nosuid") && line.contains("nodev"),
        "{line}"
    );
    assert!(line.contains("allow_other"), "{line}");
    // Writes are refused by a read-only mount.
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(m.dir.join("data/text"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    // fstab's `defaults` makes mount(8) pass `rw`: mounted read-only, as
    // the kernel driver does, with a one-line note.
    let mnt = scratch("mnt").join("fstab-rw");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = sqfuse()
        .arg(&img)
        .arg(&mnt)
        .args(["-o", "rw,dev,suid"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("read-only"), "{err}");
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("data/text"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    crate::unmount(&mnt);

    // Through mount(8) and mount.fuse3, as an fstab line would. mount(8)
    // resets PATH, so name the binary: `fuse` type with `PROGRAM#IMAGE`.
    if is_root() && have("mount.fuse3") {
        let via = scratch("mnt").join("via-mount");
        std::fs::create_dir_all(&via).unwrap();
        let source = format!("{}#{}", env!("CARGO_BIN_EXE_sqfuse"), img.display());
        let out = Command::new("mount")
            .args(["-t", "fuse", "-o", "ro,allow_other,noatime,nodev"])
            .arg(&source)
            .arg(&via)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount -t fuse: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(via.join("data/text").is_file());
        crate::unmount(&via);
    } else {
        crate::skipped("mount -t fuse: needs root and mount.fuse3", false);
    }
}

#[test]
fn mount_errors_are_one_line_and_nonzero() {
    need_fuse!();
    let Some(img) = fixture_image("errors", &["-comp", "gzip"]) else {
        return;
    };
    let mnt = scratch("mnt").join("errors");
    std::fs::create_dir_all(&mnt).unwrap();
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["/no/such/image".into(), mnt.clone().into()],
            "cannot open",
        ),
        (
            vec![
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into(),
                mnt.clone().into(),
            ],
            "not a SquashFS",
        ),
        (
            vec![img.clone().into(), "/no/such/mountpoint".into()],
            "mountpoint",
        ),
        (
            vec![
                img.clone().into(),
                mnt.clone().into(),
                "-o".into(),
                "bogus".into(),
            ],
            "unknown mount option",
        ),
    ];
    for (args, want) in cases {
        let out = sqfuse().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!is_mounted(&mnt));
}

/// getxattr of a name the entry lacks is ENODATA; size probing works.
#[test]
fn absent_xattrs_are_enodata_and_sizes_can_be_probed() {
    need_fuse!();
    let Some(img) = fixture_image("xattr-probe", &["-comp", "gzip"]) else {
        return;
    };
    let m = Mounted::new(&img, "xattr-probe", &[]);
    let p =
        std::ffi::CString::new(m.dir.join("xattrs/file").as_os_str().as_encoded_bytes()).unwrap();
    let name = |n: &str| std::ffi::CString::new(n).unwrap();
    let get = |n: &str, buf: &mut [u8]| unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            name(n).as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(get("user.big", &mut []), 3000, "size probe");
    assert_eq!(get("user.empty", &mut [0u8; 8]), 0, "empty value");
    let mut small = [0u8; 10];
    assert_eq!(get("user.big", &mut small), -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ERANGE)
    );
    assert_eq!(get("user.absent", &mut [0u8; 8]), -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ENODATA)
    );
    let plain =
        std::ffi::CString::new(m.dir.join("data/text").as_os_str().as_encoded_bytes()).unwrap();
    let n = unsafe { libc::llistxattr(plain.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(n, 0, "no xattrs on data/text");
}

/// Without root the mount goes through fusermount3 (run as `nobody`).
#[test]
fn rootless_mount_through_fusermount3() {
    need_fuse!();
    if !is_root() || !have("setpriv") || !have("fusermount3") {
        skip!("needs root (to become nobody), setpriv and fusermount3");
    }
    let _mode_lock = crate::dev_fuse_mode_lock();
    if let Some(why) = crate::fuse_closed_to_others() {
        skip!(machine: "{why}");
    }
    let Some(img) = fixture_image("rootless", &["-comp", "lz4"]) else {
        return;
    };
    let (mnt, image) = crate::owned_by_nobody("rootless", &img);
    let as_nobody =
        |args: &[&std::ffi::OsStr]| crate::as_nobody(args[0]).args(&args[1..]).output().unwrap();
    let bin = std::ffi::OsStr::new(env!("CARGO_BIN_EXE_sqfuse"));
    let out = as_nobody(&[bin, image.as_os_str(), mnt.as_os_str()]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // setpriv's own failure to run the binary, not the mount's.
        if err.starts_with("setpriv:") {
            skip!("nobody cannot execute the test binary here: {err}");
        }
        panic!("rootless mount failed: {err}");
    }
    assert!(is_mounted(&mnt));
    let line = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = line
        .lines()
        .find(|l| l.contains(mnt.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(line.contains("user_id=65534"), "{line}");
    let listing = as_nobody(&[std::ffi::OsStr::new("ls"), mnt.as_os_str()]);
    assert!(String::from_utf8_lossy(&listing.stdout).contains("data"));
    let um = as_nobody(&[
        std::ffi::OsStr::new("fusermount3"),
        std::ffi::OsStr::new("-u"),
        mnt.as_os_str(),
    ]);
    assert!(
        um.status.success(),
        "fusermount3 -u as nobody: {}",
        String::from_utf8_lossy(&um.stderr)
    );
    assert!(wait_for(Duration::from_secs(5), || !is_mounted(&mnt)));
}

/// -d stays in the foreground and logs each request to stderr.
#[test]
fn debug_flag_logs_requests_in_the_foreground() {
    need_fuse!();
    let Some(img) = fixture_image("debug", &["-comp", "lz4"]) else {
        return;
    };
    let mnt = scratch("mnt").join("debug");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut child = sqfuse()
        .arg("-d")
        .arg(&img)
        .arg(&mnt)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || is_mounted(&mnt)),
        "-d mount did not come up"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "-d must stay in the foreground"
    );
    assert_eq!(
        std::fs::read(mnt.join("links/one/target")).unwrap(),
        b"hard-linked content\n"
    );
    crate::unmount(&mnt);
    assert_eq!(wait_child(&mut child, Duration::from_secs(10)), Some(0));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("lookup") && log.contains("name=\"target\""),
        "{log}"
    );
    assert!(log.contains("read ino="), "{log}");
}
