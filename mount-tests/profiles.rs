//! Start-up profiles and the kernel caching a launch depends on: what
//! `-o record=` writes, that `-o preload=` serves the same bytes with the
//! kernel's caches filled, hostile and foreign profiles, `sqfuse profile`,
//! and requests the kernel stops sending (absent names, opens, listings).

use crate::common::tree::{assert_same, snapshot};
use crate::{need_fuse, run, scratch, sqfuse, stats, wait_for, Mounted};
use sqfuse::profile::{Profile, ProfileStep};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small application tree: files read at start in a known order, a big
/// file, a directory listed, and entries a hostile profile could aim at
/// (an absolute symbolic link to /etc, a FIFO).
fn app_image(name: &str) -> (PathBuf, PathBuf) {
    let src = scratch("profile-src").join(name);
    std::fs::create_dir_all(src.join("app/lib")).unwrap();
    std::fs::write(src.join("app/a.txt"), b"alpha\n".repeat(1000)).unwrap();
    std::fs::write(src.join("app/b.txt"), format!("{name}\n").repeat(50)).unwrap();
    let big = crate::noise(0x9e3779b97f4a7c15, 3 << 20);
    std::fs::write(src.join("app/lib/big.so"), big).unwrap();
    for k in 0..20 {
        std::fs::write(src.join(format!("app/lib/m{k}.py")), format!("# {k}\n")).unwrap();
    }
    std::os::unix::fs::symlink("/etc", src.join("etc-link")).unwrap();
    let fifo = std::ffi::CString::new(src.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let img = scratch("profile-img").join(format!("{name}.sqfs"));
    run(sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(&img)
        .args(["-f", "-q", "-c", "zstd", "-b", "128K"]));
    (src, img)
}

/// The launch the tests record: b, then a, a name that is not there, a
/// listing, the start of the big file.
fn launch(root: &Path) {
    std::fs::read(root.join("app/b.txt")).unwrap();
    std::fs::read(root.join("app/a.txt")).unwrap();
    assert!(root.join("app/nope.py").symlink_metadata().is_err());
    assert_eq!(std::fs::read_dir(root.join("app/lib")).unwrap().count(), 21);
    let mut f = std::fs::File::open(root.join("app/lib/big.so")).unwrap();
    let mut buf = vec![0u8; 200_000];
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
}

/// Records `launch` on `img` into a new profile.
fn record(img: &Path, name: &str) -> PathBuf {
    let profile = scratch("profiles").join(format!("{name}.profile"));
    let opt = format!("record={}", profile.display());
    {
        let m = Mounted::new(img, &format!("rec-{name}"), &[&opt]);
        launch(&m.dir);
    }
    // Written by the server as it ends, after the unmount.
    assert!(
        wait_for(Duration::from_secs(10), || profile.exists()),
        "no profile written to {}",
        profile.display()
    );
    profile
}

/// Mounts in the background, returning the mount and what sqfuse said.
fn mount_saying(img: &Path, name: &str, opts: &[&str]) -> (Option<Mounted>, String) {
    let (dir, mut cmd) = crate::mount_command(&[img], name, opts);
    let out = cmd.output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success().then_some(Mounted { dir }), said)
}

#[test]
fn record_writes_what_a_run_read_in_the_order_it_read_it() {
    need_fuse!();
    let (_, img) = app_image("order");
    let profile = record(&img, "order");
    let p = Profile::load(&profile).unwrap();
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    assert_eq!(p.images, vec![sqfuse::profile::identity(&image)]);
    let pos = |want: &ProfileStep| {
        p.steps
            .iter()
            .position(|s| s == want)
            .unwrap_or_else(|| panic!("{want:?} not in {:?}", p.steps))
    };
    let read = |path: &str, len: u64| ProfileStep::Read {
        path: path.as_bytes().to_vec(),
        offset: 0,
        len,
    };
    let b = pos(&read("/app/b.txt", 6 * 50));
    let a = pos(&read("/app/a.txt", 6000));
    let nope = pos(&ProfileStep::Look(b"/app/nope.py".to_vec()));
    let list = pos(&ProfileStep::List(b"/app/lib".to_vec()));
    assert!(b < a && a < nope && nope < list, "{:?}", p.steps);
    // The big file: read from 0, at least what was asked (read-ahead adds).
    assert!(p.steps.iter().any(|s| matches!(s,
        ProfileStep::Read { path, offset: 0, len } if path == b"/app/lib/big.so" && *len >= 200_000)));
    // Image ranges: inside the image, and the metadata among them.
    assert!(!p.ranges.is_empty());
    let size = image.sb.bytes_used;
    assert!(
        p.ranges.iter().all(|r| r.offset + r.len <= size),
        "{:?}",
        p.ranges
    );
    assert!(p
        .ranges
        .iter()
        .any(|r| r.offset + r.len > image.sb.inode_table_start));
    assert_eq!(
        p.file_order()[..2],
        [b"app/b.txt".to_vec(), b"app/a.txt".to_vec()]
    );
    // A mount option has no -f: an existing profile is never overwritten.
    let opt = format!("record={}", profile.display());
    let (m, said) = mount_saying(&img, "rec-again", &[&opt]);
    assert!(m.is_none(), "mounted over an existing record file");
    assert_eq!(
        said,
        format!(
            "sqfuse: record={}: the file exists (remove it, or name a new one)\n",
            profile.display()
        )
    );
}

#[test]
fn preload_serves_the_same_bytes_from_the_kernels_caches() {
    need_fuse!();
    let (src, img) = app_image("preload");
    let profile = record(&img, "preload");
    let steps = Profile::load(&profile).unwrap().steps.len() as u64;
    let opt = format!("preload={}", profile.display());
    let m = Mounted::new(&img, "preload", &[&opt]);
    assert!(
        wait_for(Duration::from_secs(20), || stats(&m.dir)["preload_steps"]
            >= steps),
        "preload did not finish: {:?}",
        stats(&m.dir)
    );
    let s = stats(&m.dir);
    assert!(s["preload_bytes"] >= 6000 + 300 + 200_000, "{s:?}");
    assert!(s["preload_image_bytes"] > 0, "{s:?}");
    // The launch now finds its names, listings and data in the kernel.
    let before = stats(&m.dir);
    launch(&m.dir);
    let after = stats(&m.dir);
    for op in [
        "lookup",
        "read",
        "readdir",
        "readdirplus",
        "open",
        "opendir",
    ] {
        assert_eq!(
            after[op], before[op],
            "{op} requests during a preloaded launch: {before:?} -> {after:?}"
        );
    }
    // Every byte as the source has it, and as a mount without the profile.
    let plain = Mounted::new(&img, "preload-plain", &["preload=none"]);
    assert_same(
        "preloaded mount vs source",
        &snapshot(&src),
        &snapshot(&m.dir),
    );
    assert_same(
        "preloaded vs plain mount",
        &snapshot(&plain.dir),
        &snapshot(&m.dir),
    );
}

#[test]
fn profile_of_another_image_is_ignored_with_a_warning() {
    need_fuse!();
    let (_, one) = app_image("one");
    let (_, other) = app_image("other");
    let profile = record(&one, "one");
    let opt = format!("preload={}", profile.display());
    let (m, said) = mount_saying(&other, "foreign", &[&opt]);
    let m = m.unwrap_or_else(|| panic!("mount failed: {said}"));
    assert!(
        said.contains("not preloading") && said.contains("was recorded on another image"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&m.dir)["preload_steps"], 0);
}

#[test]
fn hostile_profiles_are_errors_and_never_reach_outside_the_image() {
    need_fuse!();
    let (src, img) = app_image("hostile");
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let id = sqfuse::profile::identity(&image);
    let dir = scratch("profiles");
    // Malformed: the mount refuses, one line naming the file and line.
    for (name, text, want) in [
        ("empty", String::new(), "not a sqfuse profile"),
        (
            "garbage",
            "\u{7f}ELF\u{2}\u{1}\n".into(),
            "line 1: not a sqfuse profile",
        ),
        (
            "number",
            format!("sqfuse-profile 1\nimage 0 {id}\nread /app/a.txt x 1\n"),
            "line 3: 'x' is not a number",
        ),
        (
            "escape",
            format!("sqfuse-profile 1\nimage 0 {id}\nlook /%zz\n"),
            "line 3: bad %-escape",
        ),
        (
            "long",
            format!(
                "sqfuse-profile 1\nimage 0 {id}\nlook /{}\n",
                "a".repeat(20000)
            ),
            "line 3: longer than",
        ),
        (
            "layer",
            format!("sqfuse-profile 1\nimage 0 {id}\nrange 7 0 1\n"),
            "line 3: range of layer 7",
        ),
    ] {
        let p = dir.join(format!("bad-{name}.profile"));
        std::fs::write(&p, text).unwrap();
        let opt = format!("preload={}", p.display());
        let (m, said) = mount_saying(&img, &format!("bad-{name}"), &[&opt]);
        assert!(m.is_none(), "{name}: mounted");
        assert!(
            said.contains(want) && said.contains(&p.display().to_string()),
            "{name}: {said}"
        );
        assert_eq!(said.trim_end().lines().count(), 1, "{name}: {said}");
    }
    // Well-formed, this image's, aimed outside: through an absolute link to
    // /etc, up past the root, at a FIFO, past a file's end, at a huge range.
    let past = image.sb.bytes_used + 1_000_000;
    let p = dir.join("outside.profile");
    std::fs::write(
        &p,
        format!(
            "sqfuse-profile 1\nimage 0 {id}\nrange 0 {past} 4096\nrange 0 0 18446744073709551615\n\
             look /etc-link/passwd\nread /etc-link/passwd 0 4096\nread /../../../../etc/passwd 0 4096\n\
             list /etc-link\nread /pipe 0 100\nlist /pipe\nread /app/a.txt 1000000 10\nread /app 0 10\n"
        ),
    )
    .unwrap();
    let opt = format!("preload={}", p.display());
    let m = Mounted::new(&img, "outside", &[&opt]);
    assert!(
        wait_for(Duration::from_secs(20), || stats(&m.dir)["preload_steps"]
            >= 8),
        "preload hung: {:?}",
        stats(&m.dir)
    );
    // Nothing outside the image was read: no step found a file to read.
    assert_eq!(stats(&m.dir)["preload_bytes"], 0, "{:?}", stats(&m.dir));
    assert_same(
        "mount after a hostile preload",
        &snapshot(&src),
        &snapshot(&m.dir),
    );
    // A malformed IMAGE.profile beside the image is a warning, not an error.
    let copy = scratch("profile-img").join("beside-bad.sqfs");
    std::fs::copy(&img, &copy).unwrap();
    std::fs::write(
        scratch("profile-img").join("beside-bad.sqfs.profile"),
        "junk\n",
    )
    .unwrap();
    let (m, said) = mount_saying(&copy, "beside-bad", &[]);
    assert!(m.is_some(), "{said}");
    assert!(
        said.contains("warning: not preloading") && said.contains("line 1"),
        "{said}"
    );
}

#[test]
fn profile_beside_the_image_is_preloaded_unless_preload_none() {
    need_fuse!();
    let (_, img) = app_image("beside");
    let profile = record(&img, "beside");
    let copy = scratch("profile-img").join("beside-copy.sqfs");
    std::fs::copy(&img, &copy).unwrap();
    std::fs::copy(
        &profile,
        scratch("profile-img").join("beside-copy.sqfs.profile"),
    )
    .unwrap();
    let m = Mounted::new(&copy, "beside", &[]);
    assert!(
        wait_for(Duration::from_secs(20), || stats(&m.dir)["preload_steps"]
            > 0),
        "IMAGE.profile not replayed"
    );
    let off = Mounted::new(&copy, "beside-off", &["preload=none"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stats(&off.dir)["preload_steps"], 0);
}

#[test]
fn sqfuse_profile_records_a_command_in_one_step() {
    need_fuse!();
    let (_, img) = app_image("command");
    let profile = scratch("profiles").join("command.profile");
    // The command runs in the mount; {} is the mountpoint.
    let out = sqfuse()
        .arg("profile")
        .arg(&img)
        .arg(&profile)
        .args(["--", "sh", "-c", "cat app/b.txt >/dev/null && cat \"$1\"/app/a.txt >/dev/null && test \"$SQFUSE_MOUNT\" = \"$1\"", "sh", "{}"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Profile::load(&profile).unwrap();
    assert_eq!(
        p.file_order(),
        vec![b"app/b.txt".to_vec(), b"app/a.txt".to_vec()]
    );
    // Never over an existing profile without -f; a failing command's
    // status is passed on, with the profile written.
    let again = sqfuse()
        .arg("profile")
        .arg(&img)
        .arg(&profile)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        format!(
            "sqfuse: {} exists (use -f to overwrite)\n",
            profile.display()
        )
    );
    let failing = sqfuse()
        .arg("profile")
        .arg("-f")
        .arg(&img)
        .arg(&profile)
        .args(["--", "sh", "-c", "cat app/a.txt >/dev/null; exit 3"])
        .output()
        .unwrap();
    assert_eq!(failing.status.code(), Some(3));
    assert_eq!(
        Profile::load(&profile).unwrap().file_order(),
        vec![b"app/a.txt".to_vec()]
    );
    // Its temporary mountpoint is gone.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains("sqfuse-profile-"), "{mounts}");
}

#[test]
fn absent_names_opens_and_listings_are_asked_once() {
    need_fuse!();
    let (_, img) = app_image("once");
    let m = Mounted::new(&img, "once", &["no_page_fill"]);
    let d = &m.dir;
    let first = |f: &dyn Fn()| {
        f();
        let s0 = stats(d);
        for _ in 0..3 {
            f();
        }
        (s0, stats(d))
    };
    let (s0, s1) = first(&|| assert!(d.join("app/nope").symlink_metadata().is_err()));
    assert_eq!(s1["lookup"], s0["lookup"], "absent name looked up again");
    let (s0, s1) = first(&|| {
        std::fs::read(d.join("app/a.txt")).unwrap();
    });
    for op in ["open", "read", "release"] {
        assert_eq!(s1[op], s0[op], "{op} sent again for a file read before");
    }
    let (s0, s1) = first(&|| {
        std::fs::read_dir(d.join("app/lib")).unwrap().for_each(drop);
    });
    for op in ["opendir", "readdir", "readdirplus", "releasedir"] {
        assert_eq!(
            s1[op], s0[op],
            "{op} sent again for a directory listed before"
        );
    }
    // The kernel took the no-open modes: at most the first open was asked.
    assert!(s1["open"] <= 1 && s1["opendir"] <= 1, "{s1:?}");
}

#[test]
fn layered_profile_names_every_layer_and_needs_them_all() {
    need_fuse!();
    let (_, top) = app_image("layer-top");
    let (_, bottom) = app_image("layer-bottom");
    let profile = scratch("profiles").join("layers.profile");
    let rec = format!("record={}", profile.display());
    {
        let m = Mounted::layers(&[&top, &bottom], "rec-layers", &[&rec]);
        launch(&m.dir);
    }
    assert!(wait_for(Duration::from_secs(10), || profile.exists()));
    let p = Profile::load(&profile).unwrap();
    let id = |img: &Path| {
        sqfuse::profile::identity(&sqfuse::Image::open(img, &Default::default()).unwrap())
    };
    assert_eq!(p.images, vec![id(&top), id(&bottom)]);
    let pre = format!("preload={}", profile.display());
    let m = Mounted::layers(&[&top, &bottom], "pre-layers", &[&pre]);
    assert!(
        wait_for(Duration::from_secs(20), || stats(&m.dir)["preload_done"]
            == 1),
        "preload did not finish"
    );
    assert!(stats(&m.dir)["preload_bytes"] > 0, "{:?}", stats(&m.dir));
    // The same images in the other order are another view: not replayed.
    let dir = scratch("mnt").join("pre-layers-swapped");
    std::fs::create_dir_all(&dir).unwrap();
    let out = sqfuse()
        .arg(&bottom)
        .arg(&top)
        .arg(&dir)
        .args(["-o", &pre])
        .output()
        .unwrap();
    let swapped = Mounted { dir };
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("was recorded on another image"), "{said}");
    assert_eq!(stats(&swapped.dir)["preload_steps"], 0);
}
