//! Mount errors by exact text: said once, the path first where there is
//! one, with what to do; the same words in the background as in the
//! foreground (the parent prints the child's message as it is).

use crate::{fixture_image, have, is_mounted, is_root, need_fuse, scratch, skip, sqfuse};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `sqfuse ARGS` fails with exactly `want` (one line).
fn fails_with(args: &[&std::ffi::OsStr], want: &str) {
    let out = sqfuse().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), format!("{want}\n"), "{args:?}");
}

#[test]
fn mountpoint_mistakes_are_said_once_with_what_to_do() {
    need_fuse!();
    let Some(img) = fixture_image("messages", &["-comp", "gzip"]) else {
        return;
    };
    let dir = scratch("messages");
    let (busy, empty) = (dir.join("busy"), dir.join("empty"));
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(busy.join("mine"), b"x").unwrap();
    let i = img.as_os_str();
    fails_with(
        &[i, busy.as_os_str()],
        &format!(
            "sqfuse: mountpoint {} is not empty (-o nonempty mounts over its entries, hiding them)",
            busy.display()
        ),
    );
    assert!(!is_mounted(&busy));
    // Asked for, it mounts over them.
    let over = scratch("mnt").join("over");
    std::fs::create_dir_all(&over).unwrap();
    std::fs::write(over.join("hidden"), b"x").unwrap();
    let out = sqfuse()
        .arg(&img)
        .arg(&over)
        .args(["-o", "nonempty"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(over.join("data").is_dir() && !over.join("hidden").exists());
    // A second mount on the same directory.
    fails_with(
        &[i, over.as_os_str()],
        &format!(
            "sqfuse: mountpoint {0} has a filesystem mounted on it already (unmount it first: fusermount3 -u {0})",
            over.display()
        ),
    );
    crate::unmount(&over);
    assert_eq!(std::fs::read(over.join("hidden")).unwrap(), b"x");
    // Missing: said once, not "does not exist: No such file or directory".
    let missing = dir.join("missing");
    fails_with(
        &[i, missing.as_os_str()],
        &format!("sqfuse: mountpoint {} does not exist", missing.display()),
    );
    // subdir= names the option and the image.
    let canon = std::fs::canonicalize(&img).unwrap();
    let e = empty.as_os_str();
    fails_with(
        &[i, e, "-o".as_ref(), "subdir=nope".as_ref()],
        &format!(
            "sqfuse: subdir=nope: {} has no such directory",
            canon.display()
        ),
    );
    fails_with(
        &[i, e, "-o".as_ref(), "subdir=data/text".as_ref()],
        &format!(
            "sqfuse: subdir=data/text: not a directory in {}",
            canon.display()
        ),
    );
    // Not an image: the path first, as `ls` and `info` say it.
    let cargo = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = sqfuse().arg(cargo).arg(&empty).output().unwrap();
    let err = stderr(&out);
    assert!(!is_mounted(&empty));
    assert!(
        err.starts_with(&format!(
            "sqfuse: {cargo}: unsupported image at offset 0 (0x0): bad magic 0x"
        )) && err.lines().count() == 1,
        "{err}"
    );
}

/// A user who may not mount hears why and what to change: /dev/fuse
/// closed to them (containers often make it 0600), or fusermount3's own
/// reason, named once, never behind "invalid request: invalid request:".
#[test]
fn rootless_mount_errors_say_what_to_change() {
    need_fuse!();
    if !is_root() || !have("setpriv") || !have("fusermount3") {
        skip!("needs root (to become nobody), setpriv and fusermount3");
    }
    let Some(img) = fixture_image("messages-rootless", &["-comp", "gzip"]) else {
        return;
    };
    let (mnt, image) = crate::owned_by_nobody("messages-rootless", &img);
    let run = |extra: &[&str]| {
        crate::as_nobody(env!("CARGO_BIN_EXE_sqfuse"))
            .arg(&image)
            .arg(&mnt)
            .args(extra)
            .output()
            .unwrap()
    };
    use std::os::unix::fs::PermissionsExt;
    let _mode_lock = crate::dev_fuse_mode_lock();
    let mode = std::fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o7777;
    if crate::fuse_closed_to_others().is_some() {
        let out = run(&[]);
        assert_eq!(
            stderr(&out),
            format!(
                "sqfuse: cannot open /dev/fuse (mode {mode:04o}): mounting needs read and write access to it; \
                 make it 0666 as most distributions ship it (in a container: --device /dev/fuse), or mount as root\n"
            )
        );
        assert!(!is_mounted(&mnt));
        // The same in a user namespace, where nobody is "root" (it was
        // "invalid request: I/O error: ..." there).
        let userns = crate::as_nobody("unshare")
            .args(["-rm", env!("CARGO_BIN_EXE_sqfuse")])
            .arg(&image)
            .arg(&mnt)
            .output()
            .unwrap();
        let err = stderr(&userns);
        if err.starts_with("unshare:") {
            crate::skipped(&format!("no user namespaces for nobody here: {err}"), true);
            return;
        }
        assert_eq!(err, stderr(&out));
        return;
    }
    // /dev/fuse is open to all: fusermount3 decides about allow_other.
    let out = run(&["-o", "allow_other"]);
    if out.status.success() {
        // user_allow_other is set in /etc/fuse.conf here.
        crate::unmount(&mnt);
        return;
    }
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "sqfuse: cannot mount on {}: fusermount3: ",
            mnt.display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("fusermount3").count(), 1, "{err}");
    assert!(err.contains("user_allow_other"), "{err}");
    assert!(
        !err.contains("invalid request") && err.lines().count() == 1,
        "{err}"
    );
}
