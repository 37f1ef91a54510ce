//! `sqfuse pack`: images read back by the kernel, unsquashfs and sqfuse
//! equal the source; output is byte-identical for any -j; errors leave
//! nothing behind.

use crate::tree::{assert_same, snapshot};
use crate::{expected_fixture, fixture, have, is_root, run, scratch, skip, sqfuse};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn pack(name: &str, src: &Path, args: &[&str]) -> PathBuf {
    let img = scratch("pack").join(format!("{name}.sqfs"));
    let _ = std::fs::remove_file(&img);
    run(sqfuse().arg("pack").arg(src).arg(&img).arg("-q").args(args));
    img
}

fn sha256(p: &Path) -> String {
    let d = Sha256::digest(std::fs::read(p).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn packed_equals_source(name: &str, args: &[&str]) {
    let img = pack(name, fixture(), args);
    let want = expected_fixture(if args.contains(&"--no-xattrs") {
        &["-no-xattrs"]
    } else {
        &[]
    });
    crate::assert_reads_back(name, &img, &want);
    // The kernel driver (where it cannot mount, the skip is recorded).
    if let Some(k) = crate::KernelMount::new(&img, name) {
        assert_same(
            &format!("{name}: kernel mount vs source"),
            &want,
            &snapshot(&k.dir),
        );
    }
}

macro_rules! pack_tests {
    ($($name:ident: $args:expr;)*) => {$(
        #[test]
        fn $name() {
            packed_equals_source(stringify!($name), &$args);
        }
    )*};
}

pack_tests! {
    pack_gzip_4k: ["-c", "gzip", "-b", "4K"];
    pack_gzip_128k: ["-c", "gzip"];
    pack_gzip_1m: ["-c", "gzip", "-b", "1M", "-l", "1"];
    pack_xz_4k: ["-c", "xz", "-b", "4K", "-l", "1"];
    pack_xz_128k: ["-c", "xz", "--xz-filter", "x86"];
    pack_xz_1m: ["-c", "xz", "-b", "1M", "-l", "2"];
    pack_lz4_4k: ["-c", "lz4", "-b", "4K"];
    pack_lz4_128k: ["-c", "lz4"];
    pack_lz4_1m: ["-c", "lz4", "-b", "1M"];
    pack_zstd_4k: ["-b", "4K"];
    pack_zstd_128k: [];
    pack_zstd_1m: ["-b", "1M", "-l", "19"];
    pack_lzo_4k: ["-c", "lzo", "-b", "4K"];
    pack_lzo_128k: ["-c", "lzo"];
    pack_lzo_1m: ["-c", "lzo", "-b", "1M"];
    pack_no_fragments: ["--no-fragments", "--no-dedup", "--no-sparse"];
    pack_always_fragments: ["--always-fragments", "--no-exports"];
    pack_no_xattrs: ["--no-xattrs", "-c", "lz4"];
}

#[test]
fn output_is_identical_for_any_thread_count() {
    let a = sha256(&pack("j1", fixture(), &["-j", "1", "-b", "64K"]));
    let b = sha256(&pack("j2", fixture(), &["-j", "2", "-b", "64K"]));
    let c = sha256(&pack("j8", fixture(), &["-j", "8", "-b", "64K"]));
    let d = sha256(&pack("j8-again", fixture(), &["-j", "8", "-b", "64K"]));
    assert_eq!(a, b, "-j 1 vs -j 2");
    assert_eq!(a, c, "-j 1 vs -j 8");
    assert_eq!(c, d, "two runs");
    // Read-ahead (how the disk is asked ahead of the reader) never changes
    // the bytes: without it, with reads, with advice (the default above).
    for mode in ["off", "read", "advise"] {
        let img = scratch("pack").join(format!("prefetch-{mode}.sqfs"));
        let _ = std::fs::remove_file(&img);
        run(sqfuse()
            .env("SQFUSE_PREFETCH", mode)
            .args(["pack", "-q", "-j", "8", "-b", "64K"])
            .arg(fixture())
            .arg(&img));
        assert_eq!(a, sha256(&img), "SQFUSE_PREFETCH={mode} vs -j 1");
    }
}

/// Sparse files become holes; duplicates share data; tails share fragments.
#[test]
fn sparse_holes_and_duplicates_are_stored_once() {
    let img = pack("sharing", fixture(), &["-c", "lz4"]);
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let file = |p: &str| {
        let (i, _) = image.lookup_path(p).unwrap();
        image.open_file(&i).unwrap().info().clone()
    };
    let sparse = file("data/sparse");
    assert!(
        sparse.sparse >= 5 * 1048576 - 131072,
        "sparse bytes {}",
        sparse.sparse
    );
    assert!(sparse.blocks.iter().filter(|w| w.is_sparse()).count() >= 38);
    let (a, b) = (file("data/random"), file("data/random-copy"));
    assert_eq!(
        (a.blocks_start, &a.blocks, a.fragment),
        (b.blocks_start, &b.blocks, b.fragment),
        "duplicate files share data"
    );
    let zeros = file("data/zeros");
    assert!(
        zeros.blocks.iter().all(|w| w.is_sparse()),
        "an all-zero file is all holes"
    );
    let (ta, tb) = (file("data/tail-a"), file("data/tail-b"));
    assert!(
        ta.fragment.is_none(),
        "a file over a block keeps its tail in a block by default"
    );
    let _ = tb;
    let always = pack(
        "sharing-always",
        fixture(),
        &["-c", "lz4", "--always-fragments"],
    );
    let image2 = sqfuse::Image::open(&always, &Default::default()).unwrap();
    let frag = |p: &str| {
        image2
            .open_file(&image2.lookup_path(p).unwrap().0)
            .unwrap()
            .info()
            .fragment
    };
    assert!(frag("data/tail-a").is_some());
    assert_eq!(
        frag("data/tail-a"),
        frag("data/tail-b"),
        "identical tails share one fragment slot"
    );
}

/// Catches accidental format drift: a small fixed tree, fixed options.
#[test]
fn golden_image_hash() {
    let src = scratch("golden").join("tree");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("dir/sub")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::write(src.join("hello"), b"hello, squashfs\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("dir/big"), &big).unwrap();
    std::fs::write(src.join("dir/sub/copy"), b"hello, squashfs\n").unwrap();
    std::os::unix::fs::symlink("../hello", src.join("dir/link")).unwrap();
    std::fs::hard_link(src.join("hello"), src.join("hardlink")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        ("hello", 0o644),
        ("dir/big", 0o600),
        ("dir/sub/copy", 0o444),
        ("dir", 0o755),
        ("dir/sub", 0o700),
        ("empty", 0o755),
        (".", 0o755),
    ] {
        std::fs::set_permissions(src.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for p in [
        "hello",
        "dir/big",
        "dir/sub/copy",
        "dir/link",
        "dir/sub",
        "dir",
        "empty",
        ".",
    ] {
        // (hardlink shares hello's inode and times)
        let c = std::ffi::CString::new(src.join(p).as_os_str().as_encoded_bytes()).unwrap();
        let t = libc::timespec {
            tv_sec: 1_234_567_890,
            tv_nsec: 0,
        };
        unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                [t, t].as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
    }
    let img = pack(
        "golden",
        &src,
        &[
            "-c",
            "gzip",
            "--all-root",
            "--mkfs-time",
            "1700000000",
            "--no-xattrs",
            "-j",
            "3",
        ],
    );
    assert_eq!(
        sha256(&img),
        GOLDEN,
        "format drift: if intended, update GOLDEN"
    );
}

const GOLDEN: &str = "7e14d4bfdd05517ad7e3287419e1ff13177fc15197160b56df20b145c2ad34b3";

#[test]
fn existing_image_needs_force_and_bad_options_fail() {
    let src = scratch("pack-errors").join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let img = scratch("pack-errors").join("out.sqfs");
    std::fs::write(&img, b"precious").unwrap();
    let out = sqfuse().arg("pack").arg(&src).arg(&img).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&img).unwrap(),
        b"precious",
        "an existing image is never touched without -f"
    );
    run(sqfuse().arg("pack").arg(&src).arg(&img).args(["-f", "-q"]));
    assert!(sqfuse::Image::open(&img, &Default::default()).is_ok());
    for bad in [
        &["-b", "3K"][..],
        &["-b", "2M"],
        &["-c", "bogus"],
        &["-l", "99"],
        &["--xz-filter", "x86"],
        &["--no-fragments", "--always-fragments"],
    ] {
        let out = sqfuse()
            .arg("pack")
            .arg(&src)
            .arg(scratch("pack-errors").join("bad.sqfs"))
            .args(bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{bad:?}: {err}");
        assert!(!scratch("pack-errors").join("bad.sqfs").exists());
    }
    let leftovers: Vec<_> = std::fs::read_dir(scratch("pack-errors"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An unreadable source file is an error naming it (or a warning with
/// --skip-unreadable); no image is left behind.
#[test]
fn unreadable_source_file_is_named() {
    if !is_root() || !have("setpriv") {
        skip!("needs root to run pack as nobody against a root-only file");
    }
    let dir = scratch("unreadable");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"fine").unwrap();
    std::fs::write(src.join("secret"), b"root only").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let _ = Command::new("chown")
        .arg("65534:65534")
        .arg(&out_dir)
        .status();
    crate::reachable_by_nobody(&dir);
    let _ = Command::new("chmod").arg("o+rx").arg(&src).status();
    let as_nobody = |extra: &[&str]| {
        crate::as_nobody(env!("CARGO_BIN_EXE_sqfuse"))
            .arg("pack")
            .arg(&src)
            .arg(out_dir.join("img.sqfs"))
            .args(extra)
            .output()
            .unwrap()
    };
    let out = as_nobody(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && err.contains("failed to execute") {
        skip!("nobody cannot run the test binary here");
    }
    assert!(!out.status.success(), "packed an unreadable file");
    assert!(err.contains("secret"), "{err}");
    assert!(!out_dir.join("img.sqfs").exists());
    assert_eq!(
        std::fs::read_dir(&out_dir).unwrap().count(),
        0,
        "temporary file left behind"
    );
    let out = as_nobody(&["--skip-unreadable"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret"));
}

/// A pack started on enough incompressible data that xz at -j 1 takes
/// seconds: its scratch directory, source, image path and process.
fn slow_pack(name: &str) -> (PathBuf, PathBuf, PathBuf, std::process::Child) {
    let dir = scratch(name);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = crate::noise(0x1234_5678_9abc_def0, 48 << 20);
    std::fs::write(src.join("random"), &data).unwrap();
    let img = dir.join("img.sqfs");
    let child = sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(&img)
        .args(["-c", "xz", "-l", "9", "-j", "1"])
        .spawn()
        .unwrap();
    (dir, src, img, child)
}

/// Ctrl-C during a pack leaves neither the image nor a temporary file.
#[test]
fn interrupted_pack_leaves_nothing() {
    let (dir, _src, img, mut child) = slow_pack("interrupt");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let st = child.wait().unwrap();
    assert!(
        !st.success(),
        "pack finished before the interrupt: make the input bigger"
    );
    assert_eq!(
        st.code(),
        Some(130),
        "Ctrl-C exits 130, as shells report it"
    );
    assert!(!img.exists());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "src")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A pack killed with SIGKILL (no handler runs) leaves no temporary
/// file: the image is written unnamed (O_TMPFILE) until it is complete.
#[test]
fn killed_pack_leaves_no_temporary_file() {
    let (dir, src, _img, mut child) = slow_pack("killed");
    // Wait until the image file is open (as /proc shows it), then kill.
    let fds = format!("/proc/{}/fd", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let writing = || {
        std::fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|t| t.starts_with(&dir) && !t.starts_with(&src))
            })
    };
    while !writing() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let st = child.wait().unwrap();
    assert!(
        !st.success(),
        "pack finished before the kill: make the input bigger"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "src")
        .collect();
    assert!(left.is_empty(), "left behind by a killed pack: {left:?}");
}

/// `--tar`: every tar in the corpus packs to the same contents tar2sqfs
/// produced for it (extracted and compared entry by entry).
#[test]
fn tar_input_matches_tar2sqfs() {
    let tars = crate::corpora().join("tar");
    let refs = crate::corpora().join("images/sqfs-ng-tar2sqfs/data");
    let mut n = 0;
    for t in crate::image_files(&tars)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
    {
        let rel = t.strip_prefix(&tars).unwrap();
        if rel.starts_with("file-size") {
            continue; // truncated on purpose: see tar_truncated_member_is_an_error
        }
        let reference = refs.join(rel).with_extension("sqfs");
        if !reference.exists() {
            continue;
        }
        let name = rel.to_string_lossy().replace('/', "_");
        let img = scratch("pack-tar").join(format!("{name}.sqfs"));
        let _ = std::fs::remove_file(&img);
        run(sqfuse().args(["pack", "--tar", "-q"]).arg(&t).arg(&img));
        let (ours, theirs) = (
            scratch("pack-tar").join(format!("{name}-ours")),
            scratch("pack-tar").join(format!("{name}-ref")),
        );
        run(sqfuse().arg("extract").arg(&img).arg(&ours));
        run(sqfuse().arg("extract").arg(&reference).arg(&theirs));
        assert_same(
            &format!("{}: pack --tar vs tar2sqfs", rel.display()),
            &snapshot(&theirs),
            &snapshot(&ours),
        );
        n += 1;
    }
    assert!(n >= 25, "only {n} tars compared");
    // Standard input works the same.
    let simple = tars.join("write/simple.tar");
    let img = scratch("pack-tar").join("stdin.sqfs");
    let _ = std::fs::remove_file(&img);
    let out = sqfuse()
        .args(["pack", "--tar", "-q", "-"])
        .arg(&img)
        .stdin(std::fs::File::open(&simple).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = scratch("pack-tar").join("stdin-x");
    run(sqfuse().arg("extract").arg(&img).arg(&ours));
    let theirs = scratch("pack-tar").join("stdin-ref");
    run(sqfuse()
        .arg("extract")
        .arg(refs.join("write/simple.sqfs"))
        .arg(&theirs));
    assert_same("stdin tar", &snapshot(&theirs), &snapshot(&ours));
}

/// A tar whose member claims more data than the archive holds is a clean
/// error naming the member; nothing is left behind.
#[test]
fn tar_truncated_member_is_an_error() {
    let dir = crate::corpora().join("tar/file-size");
    for t in crate::image_files(&dir) {
        let out_dir = scratch("pack-tar-trunc").join(t.file_stem().unwrap());
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = sqfuse()
            .args(["pack", "--tar"])
            .arg(&t)
            .arg(out_dir.join("img.sqfs"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", t.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("tar member"), "{err}");
        assert_eq!(
            std::fs::read_dir(&out_dir).unwrap().count(),
            0,
            "left behind in {}",
            out_dir.display()
        );
    }
}

fn paths(img: &Path) -> Vec<String> {
    let out = run(sqfuse().args(["ls", "-R"]).arg(img));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// -e: unanchored patterns match at any depth, a leading '/' anchors at
/// SOURCE, `**` spans directories.
#[test]
fn excludes_match_like_documented() {
    let src = scratch("exclude").join("src");
    let _ = std::fs::remove_dir_all(&src);
    for p in [
        "a/keep.c",
        "a/drop.o",
        "b/c/drop.o",
        "build/x/y",
        "top.o",
        "a/build/keep",
    ] {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, p).unwrap();
    }
    let img = pack(
        "exclude",
        &src,
        &["-e", "*.o", "-e", "/build/**", "-e", "/build"],
    );
    let got = paths(&img);
    for gone in ["a/drop.o", "b/c/drop.o", "top.o", "build", "build/x/y"] {
        assert!(
            !got.iter().any(|p| p == gone),
            "{gone} should be excluded: {got:?}"
        );
    }
    for kept in ["a/keep.c", "a/build/keep", "b/c"] {
        assert!(got.iter().any(|p| p == kept), "{kept} should stay: {got:?}");
    }
    let bad = sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(scratch("exclude").join("bad.sqfs"))
        .args(["-e", "a[b"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// --all-root, --force-uid/gid, --all-time, --mkfs-time and SOURCE_DATE_EPOCH.
#[test]
fn ownership_and_time_overrides() {
    let image_of = |p: &Path| sqfuse::Image::open(p, &Default::default()).unwrap();
    let every = |img: &sqfuse::Image, f: &mut dyn FnMut(&sqfuse::format::inode::Inode)| {
        let mut stack = vec![img.root().unwrap()];
        while let Some(d) = stack.pop() {
            f(&d);
            for e in img.read_dir(&d).unwrap() {
                let i = img.inode(e.unwrap().inode_ref).unwrap();
                if i.is_dir() {
                    stack.push(i);
                } else {
                    f(&i);
                }
            }
        }
    };
    let img = pack(
        "root",
        fixture(),
        &[
            "--all-root",
            "--all-time",
            "12345",
            "--mkfs-time",
            "777",
            "-c",
            "lz4",
        ],
    );
    let image = image_of(&img);
    assert_eq!(image.sb.mkfs_time, 777);
    assert_eq!(image.ids(), &[0]);
    every(&image, &mut |i| assert_eq!(i.mtime, 12345));
    let img = pack(
        "forced",
        fixture(),
        &["--force-uid", "4000000000", "--force-gid", "7", "-c", "lz4"],
    );
    let image = image_of(&img);
    every(&image, &mut |i| {
        assert_eq!(
            (image.uid(i).unwrap(), image.gid(i).unwrap()),
            (4_000_000_000, 7)
        )
    });
    // SOURCE_DATE_EPOCH: the image time, and mtimes clamped to it.
    let out = scratch("pack").join("sde.sqfs");
    let _ = std::fs::remove_file(&out);
    run(sqfuse()
        .arg("pack")
        .arg(fixture())
        .arg(&out)
        .args(["-q", "-c", "lz4"])
        .env("SOURCE_DATE_EPOCH", "1500000000"));
    let image = image_of(&out);
    assert_eq!(image.sb.mkfs_time, 1_500_000_000);
    let mut old = 0;
    every(&image, &mut |i| {
        assert!(i.mtime <= 1_500_000_000);
        old += u32::from(i.mtime < 1_500_000_000);
    });
    assert!(old > 0, "older mtimes are kept");
    // Without any of these, the image time is the newest mtime in the source.
    let plain = image_of(&pack("plain-time", fixture(), &["-c", "lz4"]));
    assert_eq!(
        plain.sb.mkfs_time,
        u32::MAX,
        "the fixture's newest mtime is 2^32-1"
    );
}

/// --one-file-system keeps a mountpoint inside SOURCE but not its contents.
#[test]
fn one_file_system_stops_at_mountpoints() {
    if !is_root() {
        skip!("mounting a tmpfs inside the source needs root");
    }
    let src = scratch("onefs").join("src");
    std::fs::create_dir_all(src.join("other")).unwrap();
    std::fs::write(src.join("here"), b"same fs").unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "none"])
        .arg(src.join("other"))
        .status()
        .unwrap();
    if !st.success() {
        skip!(machine: "cannot mount a tmpfs here");
    }
    std::fs::write(src.join("other/there"), b"other fs").unwrap();
    let both = pack("onefs-both", &src, &["-c", "lz4"]);
    let one = pack("onefs-one", &src, &["-c", "lz4", "--one-file-system"]);
    let _ = Command::new("umount").arg(src.join("other")).status();
    assert_eq!(paths(&both), ["here", "other", "other/there"]);
    assert_eq!(paths(&one), ["here", "other"]);
}

/// An image whose only directory is an empty root has an empty directory
/// table (mksquashfs writes the same); it was refused as corrupt (found by
/// the tar_members fuzz target: what sqfuse packed, sqfuse could not read).
#[test]
fn empty_root_image_with_an_empty_directory_table_reads() {
    let src = scratch("empty-root").join("src");
    std::fs::create_dir_all(&src).unwrap();
    let ours = pack("empty-root", &src, &[]);
    let mut images = vec![ours];
    if have("mksquashfs") {
        let theirs = scratch("empty-root").join("theirs.sqfs");
        let _ = std::fs::remove_file(&theirs);
        run(Command::new("mksquashfs")
            .arg(&src)
            .arg(&theirs)
            .args(["-quiet", "-no-progress"]));
        images.push(theirs);
    }
    for img in images {
        let check = run(sqfuse().arg("check").arg(&img));
        assert!(
            String::from_utf8_lossy(&check.stdout).contains("1 inode, 1 directory, 0 files"),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
        let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
        assert!(ls.stdout.is_empty());
        let out = scratch("empty-root").join("x");
        let _ = std::fs::remove_dir_all(&out);
        run(sqfuse().arg("extract").arg(&img).arg(&out));
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    }
}

/// `--tar` reads gzip, zstd, xz and bzip2 archives (and such a standard
/// input) by their magic: each packs to the very image the plain tar
/// gives. A compressed stream cut short is a one-line error.
#[test]
fn compressed_tar_input_is_known_by_its_magic() {
    use std::io::Write;
    let dir = scratch("tar-compressed");
    let out = run(Command::new("tar")
        .arg("-C")
        .arg(fixture())
        .args(["-cf", "-", "."]));
    let tar = out.stdout;
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let xz = {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let bz2 = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(&tar).unwrap();
        e.finish().unwrap()
    };
    let pack = |name: &str, bytes: &[u8]| -> Vec<u8> {
        let src = dir.join(name);
        std::fs::write(&src, bytes).unwrap();
        let img = dir.join(format!("{name}.sqfs"));
        run(sqfuse()
            .args(["pack", "--tar", "-q", "-f", "--mkfs-time", "0"])
            .arg(&src)
            .arg(&img));
        std::fs::read(img).unwrap()
    };
    let want = pack("plain.tar", &tar);
    for (name, bytes) in [
        ("a.tgz", &gz),
        ("a.tar.zst", &zst),
        ("a.tar.xz", &xz),
        ("a.tar.bz2", &bz2),
    ] {
        assert!(pack(name, bytes) == want, "{name} packs to another image");
    }
    // From standard input, compressed by the real gzip.
    let img = dir.join("stdin.sqfs");
    let sh = format!(
        "tar -C '{}' -cf - . | gzip | '{}' pack --tar - '{}' -q -f --mkfs-time 0",
        fixture().display(),
        env!("CARGO_BIN_EXE_sqfuse"),
        img.display()
    );
    run(Command::new("sh").args(["-c", &sh]));
    assert!(
        std::fs::read(&img).unwrap() == want,
        "gzip on standard input"
    );
    // Cut short: one line, exit 2, no image.
    let cut = dir.join("cut.tgz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let o = sqfuse()
        .args(["pack", "--tar", "-q"])
        .arg(&cut)
        .arg(dir.join("cut.sqfs"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert_eq!(said.trim_end().lines().count(), 1, "{said}");
    assert!(
        said.contains("deflate") || said.contains("unexpected end"),
        "{said}"
    );
    assert!(!dir.join("cut.sqfs").exists());
}
