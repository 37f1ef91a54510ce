//! A root mount serving every user (allow_other, as fstab, services and
//! container runtimes mount) hands out none of the image's privileges:
//! setuid bits do not raise anyone, device nodes do not open, and file
//! modes hold. Checked as `nobody`, and checked to change with `-o suid,dev`
//! (so the checks can fail).

use crate::{have, is_mounted, is_root, need_fuse, scratch, skip, sqfuse, Mounted};
use std::path::{Path, PathBuf};

/// A tree holding a setuid-root copy of id(1), a 0666 character device
/// naming /dev/null's device (1:3) and a root-only file; packed once.
fn privileged_image() -> PathBuf {
    static IMAGE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    IMAGE.get_or_init(make_privileged_image).clone()
}

fn make_privileged_image() -> PathBuf {
    let dir = scratch("privileges");
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy("/usr/bin/id", src.join("id")).unwrap();
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid paths; results checked.
    unsafe {
        assert_eq!(libc::chown(c(&src.join("id")).as_ptr(), 0, 0), 0);
        assert_eq!(libc::chmod(c(&src.join("id")).as_ptr(), 0o4755), 0);
        let null = src.join("null");
        assert_eq!(
            libc::mknod(
                c(&null).as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(1, 3)
            ),
            0
        );
        assert_eq!(libc::chmod(c(&null).as_ptr(), 0o666), 0);
    }
    std::fs::write(src.join("secret"), "root only\n").unwrap();
    std::fs::set_permissions(
        src.join("secret"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let img = dir.join("priv.sqfs");
    crate::run(sqfuse().args(["pack", "-q", "-f"]).arg(&src).arg(&img));
    img
}

fn nobody(program: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    crate::as_nobody(program).args(args).output().unwrap()
}

fn mount_line(mnt: &Path) -> String {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(1) == mnt.to_str())
        .unwrap_or_default()
        .to_string()
}

/// What `nobody` gets from the mount: id's output, whether the device
/// opened, whether the root-only file read.
fn as_nobody_sees(mnt: &Path) -> (String, bool, bool) {
    let id = nobody(mnt.join("id").to_str().unwrap(), &[]);
    assert!(
        id.status.success(),
        "running id from the mount: {}",
        String::from_utf8_lossy(&id.stderr)
    );
    let dev = nobody(
        "sh",
        &[
            "-c".as_ref(),
            "exec 3>\"$1\"".as_ref(),
            "sh".as_ref(),
            mnt.join("null").as_os_str(),
        ],
    );
    let secret = nobody("cat", &[mnt.join("secret").as_os_str()]);
    (
        String::from_utf8_lossy(&id.stdout).into_owned(),
        dev.status.success(),
        secret.status.success(),
    )
}

#[test]
fn root_mount_with_allow_other_hands_out_no_privileges() {
    need_fuse!();
    if !is_root() || !have("setpriv") {
        skip!("needs root (to mount for others and become nobody) and setpriv");
    }
    let img = privileged_image();
    crate::reachable_by_nobody(img.parent().unwrap());
    // Mounted directly (mount(2)) and through fusermount3 (auto_unmount).
    for (name, extra) in [("direct", None), ("helper", Some("auto_unmount"))] {
        let mut opts = vec!["allow_other"];
        opts.extend(extra);
        let m = Mounted::new(&img, &format!("priv-{name}"), &[&opts.join(",")]);
        crate::reachable_by_nobody(m.dir.parent().unwrap());
        let line = mount_line(&m.dir);
        assert!(
            line.contains("nosuid") && line.contains("nodev"),
            "{name}: {line}"
        );
        let (id, dev_opened, secret_read) = as_nobody_sees(&m.dir);
        assert!(!id.contains("euid=0"), "{name}: setuid bit honoured: {id}");
        assert!(id.contains("uid=65534"), "{name}: {id}");
        assert!(!dev_opened, "{name}: a device node in the image opened");
        assert!(!secret_read, "{name}: a 0600 root file was read by nobody");
        drop(m);
    }
    // Asked for, the same image does raise and open: the checks above see
    // the difference.
    let m = Mounted::new(&img, "priv-asked", &["allow_other,suid,dev"]);
    crate::reachable_by_nobody(m.dir.parent().unwrap());
    let line = mount_line(&m.dir);
    assert!(
        !line.contains("nosuid") && !line.contains("nodev"),
        "{line}"
    );
    let (id, dev_opened, secret_read) = as_nobody_sees(&m.dir);
    assert!(id.contains("euid=0"), "suid asked for, not honoured: {id}");
    assert!(dev_opened, "dev asked for, the device did not open");
    assert!(!secret_read);
    drop(m);
    assert!(!is_mounted(&scratch("mnt").join("priv-asked")));
}

/// An fstab line through mount(8) and mount.fuse3, which adds `dev,suid`
/// to every line not saying otherwise: still nosuid,nodev, unless the line
/// says allow_suid,allow_dev.
#[test]
fn fstab_mount_hands_out_no_privileges_unless_the_line_allows_them() {
    need_fuse!();
    if !is_root() || !have("setpriv") || !have("mount.fuse3") {
        skip!("needs root, setpriv and mount.fuse3 (fuse3)");
    }
    let img = privileged_image();
    crate::reachable_by_nobody(img.parent().unwrap());
    // mount(8) resets PATH: the binary is named in the source.
    let source = format!("{}#{}", env!("CARGO_BIN_EXE_sqfuse"), img.display());
    for (name, opts, privileged) in [
        ("fstab-defaults", "defaults,allow_other", false),
        ("fstab-allowed", "allow_other,allow_suid,allow_dev", true),
    ] {
        let mnt = scratch("mnt").join(name);
        std::fs::create_dir_all(&mnt).unwrap();
        crate::run(
            std::process::Command::new("mount")
                .args(["-t", "fuse", "-o", opts])
                .arg(&source)
                .arg(&mnt),
        );
        let _unmount = Unmount(mnt.clone());
        crate::reachable_by_nobody(scratch("mnt").as_path());
        let line = mount_line(&mnt);
        assert_eq!(
            line.contains("nosuid") && line.contains("nodev"),
            !privileged,
            "{name}: {line}"
        );
        let (id, dev_opened, secret_read) = as_nobody_sees(&mnt);
        assert_eq!(id.contains("euid=0"), privileged, "{name}: {id}");
        assert_eq!(dev_opened, privileged, "{name}: device opened");
        assert!(!secret_read, "{name}");
    }
}

/// Unmounts on drop, also when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        crate::unmount(&self.0);
    }
}
