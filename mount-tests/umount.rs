//! `sqfuse umount`: a mount unmounted, a busy one refused naming what
//! holds it (and let go lazily with -l), a dead server's mount cleaned
//! up, and a user's own mount unmounted through fusermount3.

use crate::{
    fixture_image, have, is_mounted, is_root, mount_command, need_fuse, server_pid, skip, sqfuse,
    wait_for, Mounted,
};
use std::process::{Child, Command};
use std::time::Duration;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A child process killed (and reaped) when dropped, also when a test
/// fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn umount_refuses_a_busy_mount_naming_its_holder_and_lazy_detaches_it() {
    need_fuse!();
    let Some(img) = fixture_image("umount", &["-comp", "lz4"]) else {
        return;
    };
    let m = Mounted::new(&img, "umount-busy", &[]);
    let mnt = m.dir.clone();
    let server = server_pid(&mnt).expect("the server runs");
    let holder = Killed(
        Command::new("sleep")
            .arg("600")
            .current_dir(mnt.join("data"))
            .spawn()
            .unwrap(),
    );
    let out = sqfuse().arg("umount").arg(&mnt).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "sqfuse: {0} is busy: in use by {1} (sleep, working directory); `sqfuse umount -l {0}` detaches it now and unmounts it once they let go\n",
            mnt.display(),
            holder.0.id()
        )
    );
    assert!(is_mounted(&mnt), "a refused unmount leaves the mount");
    // The other spelling, lazily: gone from the namespace at once; the
    // holder keeps its directory, and the server ends once it lets go.
    let out = sqfuse().args(["unmount", "-l"]).arg(&mnt).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_mounted(&mnt));
    assert!(server_alive(server), "served until the holder lets go");
    drop(holder);
    assert!(
        wait_for(Duration::from_secs(10), || !server_alive(server)),
        "the server exits once the last user is gone"
    );
    let out = sqfuse().arg("umount").arg(&mnt).output().unwrap();
    assert_eq!(
        stderr(&out),
        format!("sqfuse: {} is not a mountpoint\n", mnt.display())
    );
    let out = sqfuse().args(["umount", "/no/such/dir"]).output().unwrap();
    assert_eq!(stderr(&out), "sqfuse: /no/such/dir does not exist\n");
}

/// A live process (not a zombie its parent has yet to reap).
fn server_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// The mount a killed server leaves ("Transport endpoint is not
/// connected") is the one most in need of unmounting.
#[test]
fn umount_cleans_up_after_a_dead_server() {
    need_fuse!();
    let Some(img) = fixture_image("umount", &["-comp", "lz4"]) else {
        return;
    };
    let (mnt, mut cmd) = mount_command(&[&img], "umount-dead", &[]);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = server_pid(&mnt).expect("the server runs");
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::metadata(&mnt).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
    }));
    let out = sqfuse().arg("umount").arg(&mnt).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_mounted(&mnt));
    assert!(std::fs::read_dir(&mnt).unwrap().next().is_none());
}

/// A user's own mount goes through fusermount3 (no umount(2) for them).
#[test]
fn umount_as_a_user_goes_through_fusermount3() {
    need_fuse!();
    if !is_root() || !have("setpriv") || !have("fusermount3") {
        skip!("needs root (to become nobody), setpriv and fusermount3");
    }
    let _mode_lock = crate::dev_fuse_mode_lock();
    if let Some(why) = crate::fuse_closed_to_others() {
        skip!(machine: "{why}");
    }
    let Some(img) = fixture_image("umount", &["-comp", "lz4"]) else {
        return;
    };
    let (mnt, image) = crate::owned_by_nobody("umount-user", &img);
    let bin = env!("CARGO_BIN_EXE_sqfuse");
    let out = crate::as_nobody(bin)
        .arg(&image)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_mounted(&mnt));
    let out = crate::as_nobody(bin)
        .arg("umount")
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_for(Duration::from_secs(5), || !is_mounted(&mnt)));
}
