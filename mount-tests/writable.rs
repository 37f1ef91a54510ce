//! Writable mounts (`-o upper=DIR`): the same operations on lower entries
//! in sqfuse and in kernel overlayfs over the kernel driver give the same
//! merged tree; the upper sqfuse leaves is one kernel overlayfs mounts;
//! `pack --layer` of it over the base shows the same; copy-up of 1 GiB,
//! two writers, a full upper, kill -9, and `upper=tmp` as `nobody`.

use crate::tree::{assert_same, snapshot, Entry};
use crate::{
    as_nobody, have, is_mounted, is_root, need_fuse, noise, reachable_by_nobody, run, scratch,
    server_pid, skip, sqfuse, unmount, wait_for, Mounted,
};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Every entry of the lower tree has this mtime; anything newer was
/// changed by the operations (and gets the time they ran at).
const LOWER_TIME: i64 = 1_600_000_000;

fn set_mtime(p: &Path, t: i64) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let ts = [libc::timespec {
        tv_sec: t,
        tv_nsec: 0,
    }; 2];
    // SAFETY: a valid path and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0, "utimensat {}", p.display());
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid strings and buffer.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {} {name}", p.display());
}

/// The lower tree: files, a hard link pair, a symlink, a FIFO, xattrs,
/// nested and empty directories.
fn lower_tree(root: &Path, extra: &[&str]) -> PathBuf {
    let src = root.join("src");
    for d in ["d", "emptydir", "gone/sub", "dir2/inner", "keep"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    let files: [(&str, &[u8]); 9] = [
        ("a", b"lower a\n"),
        ("big", &[7u8; 300_000]),
        ("c", b"lower c\n"),
        ("d/b", b"lower d/b\n"),
        ("d/b2", b"lower d/b2\n"),
        ("gone/f", b"gone\n"),
        ("gone/sub/g", b"gone too\n"),
        ("dir2/inner/x", b"moved with its directory\n"),
        ("keep/k", b"untouched\n"),
    ];
    for (p, data) in files {
        std::fs::write(src.join(p), data).unwrap();
    }
    std::fs::hard_link(src.join("keep/k"), src.join("keep/k2")).unwrap();
    std::os::unix::fs::symlink("a", src.join("link")).unwrap();
    set_xattr(&src.join("c"), "user.origin", b"lower");
    let img = root.join("lower.sqfs");
    let mut paths = vec![src.clone()];
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    for p in paths {
        set_mtime(&p, LOWER_TIME);
    }
    run(Command::new("mksquashfs")
        .arg(&src)
        .arg(&img)
        .args(["-noappend", "-quiet", "-no-progress"])
        .args(extra));
    img
}

/// The operations, applied to a merged tree at `m`.
fn operate(m: &Path) {
    let p = |s: &str| m.join(s);
    // Copy-up by write, truncate, chmod, chown, utimes, setxattr.
    std::fs::OpenOptions::new()
        .append(true)
        .open(p("a"))
        .unwrap()
        .write_all(b"appended\n")
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(p("big"))
        .unwrap()
        .set_len(100)
        .unwrap();
    std::fs::set_permissions(p("d/b"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::lchown(p("d/b"), Some(1234), Some(5678)).unwrap();
    set_mtime(&p("link"), LOWER_TIME + 5);
    set_xattr(&p("c"), "user.added", b"upper");
    // New entries.
    std::fs::create_dir(p("new")).unwrap();
    std::fs::write(p("new/f"), b"new file\n").unwrap();
    std::os::unix::fs::symlink("f", p("new/l")).unwrap();
    std::fs::hard_link(p("a"), p("a2")).unwrap();
    let fifo = CString::new(p("new/fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    // Deletions: a file, an empty directory, a tree.
    std::fs::remove_file(p("d/b2")).unwrap();
    std::fs::remove_dir(p("emptydir")).unwrap();
    std::fs::remove_dir_all(p("gone")).unwrap();
    // Renames of a lower file and a lower directory with contents.
    std::fs::rename(p("c"), p("new/c")).unwrap();
    std::fs::rename(p("dir2"), p("dir3")).unwrap();
    // Names deleted, then made again: an opaque directory, a symlink.
    std::fs::create_dir(p("gone")).unwrap();
    std::fs::write(p("gone/again"), b"after the deletion\n").unwrap();
    std::os::unix::fs::symlink("b", p("d/b2")).unwrap();
    // A hard link of a lower file that was never copied up.
    std::fs::hard_link(p("keep/k"), p("keep/k3")).unwrap();
}

/// The snapshot with the times the operations set (now) made comparable.
fn normalized(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut s = snapshot(dir);
    for e in s.values_mut() {
        if e.kind == 'd' || e.mtime > LOWER_TIME + 1000 {
            e.mtime = 0;
        }
    }
    s
}

/// A loop mount of `img` and kernel overlayfs over it with `upper`.
struct KernelWritable {
    lower: PathBuf,
    dir: PathBuf,
}

impl KernelWritable {
    fn new(img: &Path, base: &Path, upper: &Path, extra: &str) -> Option<KernelWritable> {
        let lower = base.join("k-lower");
        let work = base.join(format!(
            "k-work-{}",
            upper.file_name().unwrap().to_string_lossy()
        ));
        let dir = base.join(format!(
            "k-mnt-{}",
            upper.file_name().unwrap().to_string_lossy()
        ));
        for d in [&lower, &work, &dir] {
            std::fs::create_dir_all(d).unwrap();
        }
        if !is_mounted(&lower) {
            let st = Command::new("mount")
                .args(["-t", "squashfs", "-o", "loop,ro"])
                .arg(img)
                .arg(&lower)
                .output()
                .unwrap();
            if !st.status.success() {
                crate::skipped(
                    &format!(
                        "kernel overlayfs: loop mount failed: {}",
                        String::from_utf8_lossy(&st.stderr).trim()
                    ),
                    true,
                );
                return None;
            }
        }
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}{extra}",
                lower.display(),
                upper.display(),
                work.display()
            ))
            .arg(&dir)
            .output()
            .unwrap();
        if !st.status.success() {
            unmount(&lower);
            crate::skipped(
                &format!(
                    "kernel overlayfs: mount failed: {}",
                    String::from_utf8_lossy(&st.stderr).trim()
                ),
                true,
            );
            return None;
        }
        Some(KernelWritable { lower, dir })
    }
}

impl Drop for KernelWritable {
    fn drop(&mut self) {
        unmount(&self.dir);
        unmount(&self.lower);
    }
}

#[test]
fn writes_to_lower_entries_match_kernel_overlayfs() {
    need_fuse!();
    if !is_root() {
        skip!("kernel overlayfs comparison: needs root");
    }
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let base = scratch("writable").join("ops");
    std::fs::create_dir_all(&base).unwrap();
    let img = lower_tree(&base, &[]);
    let ours_upper = base.join("upper-sqfuse");
    let kern_upper = base.join("upper-kernel");
    std::fs::create_dir_all(&ours_upper).unwrap();
    std::fs::create_dir_all(&kern_upper).unwrap();

    let m = Mounted::new(
        &img,
        "writable-ops",
        &[&format!("upper={}", ours_upper.display())],
    );
    let before = normalized(&m.dir);
    operate(&m.dir);
    let ours = normalized(&m.dir);
    assert_ne!(before, ours, "the operations changed nothing");
    // Contents from the right places.
    assert_eq!(
        std::fs::read(m.dir.join("a")).unwrap(),
        b"lower a\nappended\n"
    );
    assert_eq!(
        std::fs::read(m.dir.join("dir3/inner/x")).unwrap(),
        b"moved with its directory\n"
    );
    assert_eq!(std::fs::read_dir(m.dir.join("gone")).unwrap().count(), 1);
    // index=on: overlayfs then keeps a lower file's hard links joined
    // after a copy-up, as sqfuse always does.
    let Some(k) = KernelWritable::new(&img, &base, &kern_upper, ",redirect_dir=on,index=on") else {
        return;
    };
    operate(&k.dir);
    assert_same(
        "kernel overlayfs vs sqfuse after the same operations",
        &normalized(&k.dir),
        &ours,
    );
    drop(k);
    drop(m);

    // The upper sqfuse wrote is one kernel overlayfs reads the same.
    let k = KernelWritable::new(&img, &base, &ours_upper, "").expect("mounted above");
    assert_same(
        "kernel overlayfs over sqfuse's upper",
        &normalized(&k.dir),
        &ours,
    );
    drop(k);

    // ...and sqfuse mounts it again the same.
    let again = Mounted::new(
        &img,
        "writable-again",
        &[&format!("upper={}", ours_upper.display())],
    );
    assert_same(
        "sqfuse remounting its upper",
        &normalized(&again.dir),
        &ours,
    );
    // pack --layer refuses an upper that is mounted.
    let layer = base.join("layer.sqfs");
    let out = sqfuse()
        .args(["pack", "-q", "--layer"])
        .arg(&ours_upper)
        .arg(&layer)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "pack --layer of a mounted upper succeeded"
    );
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("unmount it first"), "{msg}");
    assert!(!layer.exists(), "a refused pack left {}", layer.display());
    drop(again);

    // The committed layer over its base shows what the writable mount did.
    run(sqfuse()
        .args(["pack", "-q", "--layer"])
        .arg(&ours_upper)
        .arg(&layer));
    let stacked = Mounted::layers(&[&layer, &img], "writable-layer", &[]);
    assert_same(
        "pack --layer over the base vs the writable mount",
        &ours,
        &normalized(&stacked.dir),
    );
}

#[test]
fn two_writers_copy_up_one_file_once() {
    need_fuse!();
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let base = scratch("writable").join("two");
    std::fs::create_dir_all(&base).unwrap();
    let img = lower_tree(&base, &[]);
    let upper = base.join("upper");
    std::fs::create_dir_all(&upper).unwrap();
    let m = Mounted::new(
        &img,
        "writable-two",
        &[&format!("upper={}", upper.display())],
    );
    let path = m.dir.join("big");
    let writers: Vec<_> = (0..2u8)
        .map(|k| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                for round in 0..50u64 {
                    f.seek(SeekFrom::Start(u64::from(k) * 1000 + round))
                        .unwrap();
                    f.write_all(&[b'A' + k]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let got = std::fs::read(&path).unwrap();
    assert_eq!(got.len(), 300_000);
    assert!(
        got[..50].iter().all(|&b| b == b'A'),
        "the first writer's bytes"
    );
    assert!(
        got[1000..1050].iter().all(|&b| b == b'B'),
        "the second writer's bytes"
    );
    assert!(
        got[50..1000].iter().chain(&got[1050..]).all(|&b| b == 7),
        "the lower data around them"
    );
    assert_eq!(
        std::fs::read(upper.join("big")).unwrap(),
        got,
        "the upper holds what the mount shows"
    );
}

#[test]
fn copy_up_of_a_1_gib_file_streams_from_the_image() {
    need_fuse!();
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let base = scratch("writable").join("gib");
    let src = base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    const GIB: u64 = 1 << 30;
    let chunk = noise(42, 1 << 20);
    {
        let mut f = std::fs::File::create(src.join("huge")).unwrap();
        for k in 0..(GIB >> 20) {
            let mut c = chunk.clone();
            c[..8].copy_from_slice(&k.to_le_bytes());
            f.write_all(&c).unwrap();
        }
    }
    let img = base.join("huge.sqfs");
    run(Command::new("mksquashfs").arg(&src).arg(&img).args([
        "-noappend",
        "-quiet",
        "-no-progress",
        "-noD",
        "-noF",
    ]));
    std::fs::remove_dir_all(&src).unwrap();
    let upper = base.join("upper");
    std::fs::create_dir_all(&upper).unwrap();
    let m = Mounted::new(
        &img,
        "writable-gib",
        &[&format!("upper={}", upper.display())],
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(m.dir.join("huge"))
        .unwrap();
    f.write_all(b"tail").unwrap();
    drop(f);
    let mut r = std::fs::File::open(m.dir.join("huge")).unwrap();
    assert_eq!(r.metadata().unwrap().len(), GIB + 4);
    let mut buf = vec![0u8; 1 << 20];
    for k in 0..(GIB >> 20) {
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..8], &k.to_le_bytes(), "MiB {k}");
        assert_eq!(&buf[8..], &chunk[8..], "MiB {k}");
    }
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, b"tail");
    assert_eq!(
        std::fs::metadata(upper.join("huge")).unwrap().len(),
        GIB + 4
    );
}

#[test]
fn full_upper_is_enospc_and_the_mount_stays_up() {
    need_fuse!();
    if !is_root() {
        skip!("a small tmpfs upper: mounting it needs root");
    }
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let base = scratch("writable").join("full");
    std::fs::create_dir_all(&base).unwrap();
    let img = lower_tree(&base, &[]);
    let small = base.join("small");
    std::fs::create_dir_all(&small).unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small));
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            unmount(&self.0);
        }
    }
    let _small = Unmount(small.clone());
    let m = Mounted::new(
        &img,
        "writable-full",
        &[&format!("upper={}", small.display())],
    );
    let mut f = std::fs::File::create(m.dir.join("filler")).unwrap();
    let mut err = None;
    for _ in 0..64 {
        if let Err(e) = f.write_all(&[1u8; 64 << 10]).and_then(|()| f.sync_all()) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("writing 4 MiB to a 1 MiB upper succeeded");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    drop(f);
    // Still serving: lower reads, listings, and writes once there is room.
    assert_eq!(std::fs::read(m.dir.join("keep/k")).unwrap(), b"untouched\n");
    assert!(std::fs::read_dir(&m.dir).unwrap().count() > 5);
    std::fs::remove_file(m.dir.join("filler")).unwrap();
    std::fs::write(m.dir.join("small-file"), b"fits\n").unwrap();
    assert_eq!(std::fs::read(small.join("small-file")).unwrap(), b"fits\n");
    // A copy-up that cannot finish leaves nothing half-written behind.
    std::fs::write(m.dir.join("filler"), vec![1u8; 1000 << 10]).ok();
    let r = std::fs::OpenOptions::new()
        .append(true)
        .open(m.dir.join("big"));
    if r.is_err() {
        assert!(
            !small.join("big").exists(),
            "a failed copy-up left a file in the upper"
        );
        assert_eq!(std::fs::read(m.dir.join("big")).unwrap().len(), 300_000);
    }
}

#[test]
fn kill_9_loses_nothing_fsynced_and_the_upper_mounts_again() {
    need_fuse!();
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let base = scratch("writable").join("kill");
    std::fs::create_dir_all(&base).unwrap();
    let img = lower_tree(&base, &[]);
    let upper = base.join("upper");
    std::fs::create_dir_all(&upper).unwrap();
    let opt = format!("upper={}", upper.display());
    let m = Mounted::new(&img, "writable-kill", &[&opt]);
    let mut f = std::fs::File::create(m.dir.join("kept")).unwrap();
    f.write_all(b"fsynced\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::remove_file(m.dir.join("a")).unwrap();
    let pid = server_pid(&m.dir).expect("the server's pid");
    // SAFETY: signalling a process of ours.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(wait_for(Duration::from_secs(10), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z"))));
    unmount(&m.dir);
    drop(m);
    let again = Mounted::new(&img, "writable-kill-again", &[&opt]);
    assert_eq!(std::fs::read(again.dir.join("kept")).unwrap(), b"fsynced\n");
    assert!(!again.dir.join("a").exists(), "the deletion is kept");
}

#[test]
fn upper_as_nobody_uses_unprivileged_whiteouts_and_upper_tmp_leaves_nothing() {
    need_fuse!();
    if !is_root() {
        skip!("running as nobody needs root to switch");
    }
    if !have("mksquashfs") || !have("setpriv") {
        skip!("mksquashfs or setpriv missing");
    }
    let _lock = crate::dev_fuse_mode_lock();
    if let Some(why) = crate::fuse_closed_to_others() {
        skip!(machine: "{why}");
    }
    let base = scratch("writable-nobody");
    let img = lower_tree(&base, &["-force-uid", "65534", "-force-gid", "65534"]);
    let (upper, mnt, runtime) = (base.join("upper"), base.join("mnt"), base.join("run"));
    for d in [&upper, &mnt, &runtime] {
        std::fs::create_dir_all(d).unwrap();
    }
    reachable_by_nobody(&base);
    assert!(Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&base)
        .status()
        .unwrap()
        .success());
    let sh = |script: &str| {
        let out = as_nobody("sh")
            .arg("-c")
            .arg(script)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("S", env!("CARGO_BIN_EXE_sqfuse"))
            .env("IMG", &img)
            .env("UP", &upper)
            .env("M", &mnt)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh("$S $IMG $M -o upper=$UP && rm $M/d/b && echo mine > $M/d/new && mkdir $M/nd && rm -r $M/gone && fusermount3 -u $M");
    let wh = std::fs::symlink_metadata(upper.join("d/b")).unwrap();
    let device = wh.file_type().is_char_device();
    let xattr =
        crate::tree::xattrs(&upper.join("d/b")).contains_key(b"user.overlay.whiteout".as_slice());
    assert!(
        device || xattr,
        "no whiteout for d/b in the rootless upper: {wh:?}"
    );
    assert!(!crate::tree::xattrs(&upper.join("nd"))
        .keys()
        .any(|k| k.starts_with(b"trusted.")));
    // upper=tmp: a private upper under XDG_RUNTIME_DIR, gone at unmount.
    sh("$S $IMG $M -o upper=tmp && echo x > $M/tmpfile && rm $M/a && test -f $M/tmpfile && fusermount3 -u $M");
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_dir(&runtime)
            .unwrap()
            .next()
            .is_none()),
        "upper=tmp left {:?}",
        std::fs::read_dir(&runtime)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>()
    );
}
