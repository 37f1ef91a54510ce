//! sqfuse under other tools' names: the same command lines run through
//! the real squashfs-tools and through sqfuse as mksquashfs / unsquashfs,
//! compared by what the images hold (unsquashfs's listing, extracted trees,
//! the kernel's mount) and by what the commands print.

use crate::tree::{assert_same, snapshot};
use crate::{fixture, have, is_root, personality, run, scratch, skip, KernelMount};
use std::path::{Path, PathBuf};
use std::process::Command;

fn need_tools() -> bool {
    if !have("mksquashfs") || !have("unsquashfs") {
        crate::skipped("personality tests: squashfs-tools missing", false);
        return false;
    }
    true
}

/// `unsquashfs -lln` of an image, read by the real unsquashfs, without the
/// first line (it names the destination).
fn listing(img: &Path) -> String {
    let out = run(Command::new("unsquashfs")
        .args(["-lln", "-UTC", "-d", "root"])
        .arg(img));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `unsquashfs -s` of an image, read by the real unsquashfs, without what
/// two builds may differ in: the file's name and size (compressed bytes),
/// and the build time unless the line fixes it (`timed`).
pub(crate) fn superblock(img: &Path, timed: bool) -> String {
    // 4.7.5's -s stops with an error on some images with xattrs: what it
    // printed before is compared.
    let out = Command::new("unsquashfs")
        .arg("-s")
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("Found a valid")
                && !l.starts_with("Filesystem size")
                && (timed || !l.starts_with("Creation or last append time"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Two outputs line by line; a failure shows only the lines that differ.
fn same_lines(what: &str, want: &str, got: &str) {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let only_w: Vec<&&str> = w.iter().filter(|l| !g.contains(l)).take(10).collect();
    let only_g: Vec<&&str> = g.iter().filter(|l| !w.contains(l)).take(10).collect();
    assert!(
        w == g,
        "{what}: {} vs {} lines\nonly in the real tool's: {only_w:#?}\nonly in ours: {only_g:#?}",
        w.len(),
        g.len()
    );
}

/// Whether the real mksquashfs here knows `opt` (Debian ships 4.5.1;
/// -repro came in 4.6).
fn real_knows(opt: &str) -> bool {
    // 4.6 and later list every option under -help-all (-help lists the
    // sections); older ones list them all under -help.
    ["-help-all", "-help"].iter().any(|help| {
        let out = Command::new("mksquashfs").arg(help).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .any(|l| l.split_whitespace().next() == Some(opt))
    })
}

/// Runs one mksquashfs command line (with `{SRC}` and `{IMG}` placeholders)
/// through both, compares the images; returns them.
pub(crate) fn both(name: &str, line: &[&str], src: &[&Path]) -> (PathBuf, PathBuf) {
    both_with_input(name, line, src, None, &[])
}

/// The same for a line of another squashfs tool (sqfstar, tar2sqfs),
/// with `stdin` as its standard input.
pub(crate) fn both_tool(
    tool: &str,
    name: &str,
    line: &[&str],
    src: &[&Path],
    stdin: Option<&Path>,
) -> (PathBuf, PathBuf) {
    run_both(tool, name, line, src, stdin, &[])
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Entries mksquashfs makes (a root for several sources or -tar, the
/// directories a tar stream implies, pseudo definitions) take the clock's
/// time when each tool runs. `unsquashfs -lln` shows minutes: a run that
/// crosses a minute is listed without times (the extracted trees still
/// compare every time to the second).
fn without_times(listing: &str) -> String {
    let mut out = String::new();
    for line in listing.lines() {
        // mode owner size date time name (columns padded with spaces)
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 6 {
            out.push_str(&format!("{} {} {} {}", w[0], w[1], w[2], w[5..].join(" ")));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

pub(crate) fn both_with_input(
    name: &str,
    line: &[&str],
    src: &[&Path],
    stdin: Option<&Path>,
    envs: &[(&str, &str)],
) -> (PathBuf, PathBuf) {
    run_both("mksquashfs", name, line, src, stdin, envs)
}

fn run_both(
    tool: &str,
    name: &str,
    line: &[&str],
    src: &[&Path],
    stdin: Option<&Path>,
    envs: &[(&str, &str)],
) -> (PathBuf, PathBuf) {
    let dir = scratch("personality").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut images = Vec::new();
    let started = now_secs();
    for (who, bin) in [("real", PathBuf::from(tool)), ("ours", personality(tool))] {
        let img = dir.join(format!("{who}.sqfs"));
        let mut args: Vec<String> = Vec::new();
        for a in line {
            match *a {
                "{SRC}" => args.extend(src.iter().map(|s| s.display().to_string())),
                "{IMG}" => args.push(img.display().to_string()),
                a => args.push(a.to_string()),
            }
        }
        let mut cmd = Command::new(&bin);
        cmd.args(&args).envs(envs.iter().copied());
        if let Some(input) = stdin {
            cmd.stdin(std::fs::File::open(input).unwrap());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name} ({who}): {tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        images.push(img);
    }
    let (real, ours) = (images[0].clone(), images[1].clone());
    let clock = started..=now_secs();
    // Times from the clock (see without_times): the two runs may be a
    // second apart.
    let clock_times = |mut s: std::collections::BTreeMap<_, crate::common::tree::Entry>| {
        for e in s.values_mut() {
            if clock.contains(&e.mtime) {
                e.mtime = *clock.start();
            }
        }
        s
    };
    let listed = |img: &Path| {
        let l = listing(img);
        if clock.start() / 60 != clock.end() / 60 {
            without_times(&l)
        } else {
            l
        }
    };
    same_lines(
        &format!("{name}: unsquashfs -lln"),
        &listed(&real),
        &listed(&ours),
    );
    let timed = line
        .iter()
        .any(|a| matches!(*a, "-mkfs-time" | "-repro" | "-repro-time" | "-fstime"))
        || envs.iter().any(|(k, _)| *k == "SOURCE_DATE_EPOCH");
    // squashfs-tools-ng's own choices (which blocks it stores
    // uncompressed, its flags) are not compared; mksquashfs's are.
    if !matches!(tool, "tar2sqfs" | "gensquashfs") {
        same_lines(
            &format!("{name}: unsquashfs -s"),
            &superblock(&real, timed),
            &superblock(&ours, timed),
        );
    }
    let ex = |img: &Path, who: &str| {
        let d = dir.join(format!("x-{who}"));
        let _ = std::fs::remove_dir_all(&d);
        run(Command::new("unsquashfs")
            .args(["-q", "-n", "-d"])
            .arg(&d)
            .arg(img));
        clock_times(snapshot(&d))
    };
    assert_same(
        &format!("{name}: extracted"),
        &ex(&real, "real"),
        &ex(&ours, "ours"),
    );
    if is_root() {
        // A loop device reads whole 4K pages: unpadded images (-nopad)
        // are mounted from padded copies.
        let padded = |img: &Path| {
            let len = std::fs::metadata(img).unwrap().len();
            if len % 4096 == 0 {
                return img.to_path_buf();
            }
            let copy = img.with_extension("padded");
            std::fs::copy(img, &copy).unwrap();
            let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
            f.set_len(len.next_multiple_of(4096)).unwrap();
            copy
        };
        if let (Some(a), Some(b)) = (
            KernelMount::new(&padded(&real), &format!("{name}-real")),
            KernelMount::new(&padded(&ours), &format!("{name}-ours")),
        ) {
            assert_same(
                &format!("{name}: kernel mounts"),
                &clock_times(snapshot(&a.dir)),
                &clock_times(snapshot(&b.dir)),
            );
        }
    }
    (real, ours)
}

/// The lines build scripts run (Apptainer build, appimagetool, distro live
/// image builders), each through both tools.
#[test]
fn mksquashfs_command_lines_make_the_same_images() {
    if !need_tools() {
        return;
    }
    let src = fixture();
    let cases: &[(&str, &[&str])] = &[
        (
            "apptainer",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-comp",
                "gzip",
                "-processors",
                "2",
                "-all-root",
            ],
        ),
        (
            "appimagetool",
            &[
                "{SRC}",
                "{IMG}",
                "-root-owned",
                "-noappend",
                "-comp",
                "zstd",
                "-Xcompression-level",
                "19",
                "-mkfs-time",
                "0",
            ],
        ),
        (
            "live-build",
            &[
                "{SRC}",
                "{IMG}",
                "-comp",
                "xz",
                "-Xbcj",
                "x86",
                "-b",
                "1M",
                "-no-exports",
                "-noappend",
                "-mem",
                "256M",
            ],
        ),
        (
            "lz4-hc",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-comp",
                "lz4",
                "-Xhc",
                "-no-xattrs",
            ],
        ),
        (
            "layout",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-no-fragments",
                "-no-duplicates",
                "-no-sparse",
                "-force-uid",
                "1234",
                "-force-gid",
                "nogroup",
                "-all-time",
                "1700000000",
                "-quiet",
                "-no-progress",
            ],
        ),
        (
            "fragments",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-always-use-fragments",
                "-b",
                "4096",
                "-xattrs",
                "-mkfs-time",
                "0",
            ],
        ),
        (
            "excludes",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-e",
                "data/text",
                "sizes",
                "nested",
            ],
        ),
        (
            "wildcards",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-wildcards",
                "-e",
                "data/tail-*",
                "... size-1*",
            ],
        ),
        (
            "regex",
            &[
                "{SRC}",
                "{IMG}",
                "-noappend",
                "-regex",
                "-e",
                "^size-[0-9]+$",
                "^big.*",
            ],
        ),
    ];
    for (name, line) in cases {
        both(name, line, &[src]);
    }
    if real_knows("-repro") {
        both("repro", &["{SRC}", "{IMG}", "-noappend", "-repro"], &[src]);
    } else {
        // The distribution's version (Debian 12 ships 4.5): not a tool
        // the machine lacks, a feature its tool lacks.
        crate::skipped(
            "-repro against the real mksquashfs: it is older than 4.6",
            true,
        );
    }
    // A tar archive on standard input.
    let tar = scratch("personality").join("fixture.tar");
    if !tar.exists() {
        run(Command::new("tar")
            .args(["--xattrs", "--format=pax", "-C"])
            .arg(src)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
    }
    both_with_input(
        "tar",
        &["-", "{IMG}", "-tar", "-noappend"],
        &[],
        Some(&tar),
        &[],
    );
    // -ef: one exclude per line, comments and blanks skipped.
    let ef = scratch("personality").join("excludes.txt");
    std::fs::write(&ef, "# comment\n\ndata/text\n  sizes\n").unwrap();
    let ef = ef.display().to_string();
    both(
        "exclude-file",
        &["{SRC}", "{IMG}", "-noappend", "-ef", &ef],
        &[src],
    );
    // Several sources become entries of the root (name clashes get _1).
    let a = fixture().join("data");
    let b = fixture().join("sizes");
    both(
        "sources",
        &[
            "{SRC}",
            "{IMG}",
            "-noappend",
            "-mkfs-time",
            "1000000",
            "-all-root",
        ],
        &[&a, &b, &a],
    );
}

/// -offset N writes the image N bytes into the file, keeping what is
/// there: an AppImage runtime stays in front; the kernel mounts it at N.
#[test]
fn mksquashfs_offset_keeps_the_runtime() {
    if !need_tools() {
        return;
    }
    let dir = scratch("personality-offset");
    let app = dir.join("app.AppImage");
    let runtime: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&app, &runtime).unwrap();
    let out = Command::new(personality("mksquashfs"))
        .arg(fixture().join("data"))
        .arg(&app)
        .args(["-offset", "8192", "-noappend", "-comp", "zstd", "-quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&app).unwrap();
    assert_eq!(&bytes[..8192], &runtime[..], "the runtime is kept");
    assert_eq!(&bytes[8192..8196], b"hsqs");
    let out = run(Command::new("unsquashfs")
        .args(["-lln", "-o", "8192", "-d", "root"])
        .arg(&app));
    let real = dir.join("real.sqfs");
    run(Command::new("mksquashfs")
        .arg(fixture().join("data"))
        .arg(&real)
        .args(["-noappend", "-comp", "zstd", "-quiet"]));
    same_lines(
        "the image at the offset lists like mksquashfs's",
        &listing(&real),
        &String::from_utf8_lossy(&out.stdout),
    );
    if is_root() {
        let m = scratch("kmnt").join("offset-app");
        std::fs::create_dir_all(&m).unwrap();
        let st = Command::new("mount")
            .args(["-t", "squashfs", "-o", "loop,ro,offset=8192"])
            .arg(&app)
            .arg(&m)
            .status()
            .unwrap();
        if st.success() {
            let got = snapshot(&m);
            crate::unmount(&m);
            let k = KernelMount::new(&real, "offset-real").unwrap();
            assert_same("kernel at the offset", &snapshot(&k.dir), &got);
        }
    }
}

/// What sqfuse's mksquashfs refuses, it names: never a silent difference.
#[test]
fn mksquashfs_unsupported_options_are_named() {
    let img = scratch("personality").join("refused.sqfs");
    for (args, want) in [
        (&["-zip"][..], "-zip"),
        (
            &["-sort", "/nonexistent-sort-file"],
            "sort file /nonexistent-sort-file: No such file",
        ),
        (&["-comp", "lzma"], "lzma"),
        (
            &["-pf", "/nonexistent-pf"],
            "pseudo file /nonexistent-pf: No such file",
        ),
        (&["-action", "prune@name(x)"], "-action"),
        (&["-b", "3000"], "-b"),
    ] {
        let out = Command::new(personality("mksquashfs"))
            .arg(fixture())
            .arg(&img)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Appending to a file that is no image: refused, the file untouched.
    std::fs::write(&img, "x").unwrap();
    let out = Command::new(personality("mksquashfs"))
        .arg(fixture())
        .arg(&img)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot append"));
    assert_eq!(std::fs::read(&img).unwrap(), b"x", "left as it was");
}

/// unsquashfs's command lines, through both: listings print the same, and
/// extractions (all, some paths, over an existing tree with -f, at an
/// offset) make the same trees.
#[test]
fn unsquashfs_command_lines_behave_the_same() {
    if !need_tools() {
        return;
    }
    let dir = scratch("personality-un");
    let img = dir.join("img.sqfs");
    run(Command::new("mksquashfs").arg(fixture()).arg(&img).args([
        "-noappend",
        "-quiet",
        "-comp",
        "gzip",
    ]));
    let mut wrapped = vec![0u8; 4096];
    wrapped.extend(std::fs::read(&img).unwrap());
    let at_offset = dir.join("wrapped.bin");
    std::fs::write(&at_offset, wrapped).unwrap();
    let i = img.display().to_string();
    let w = at_offset.display().to_string();
    let ours = personality("unsquashfs");
    let lists: &[&[&str]] = &[
        &["-l", &i],
        &["-ll", "-UTC", &i],
        &["-lln", "-UTC", &i],
        &["-l", "-d", "elsewhere", &i, "data", "sizes/size-1*"],
        &["-lln", "-UTC", "-o", "4096", &w],
        &["-l", "-no-wildcards", &i, "sizes"],
    ];
    for args in lists {
        let real = run(Command::new("unsquashfs").args(*args));
        let mine = run(Command::new(&ours).args(*args));
        same_lines(
            &format!("unsquashfs {args:?}"),
            &String::from_utf8_lossy(&real.stdout),
            &String::from_utf8_lossy(&mine.stdout),
        );
    }
    // -s on images without xattrs: unsquashfs 4.7.5 -s reads the xattr
    // table before it has the image's size, and fails on every image that
    // has one.
    // Byte for byte, each compressor's option lines too (Buildroot's test
    // compares lines of it exactly; enroot parses "Compression").
    for (k, comp) in [
        &[
            "-comp",
            "gzip",
            "-Xcompression-level",
            "5",
            "-Xstrategy",
            "filtered,fixed",
        ][..],
        &["-comp", "xz", "-Xbcj", "x86,arm", "-Xdict-size", "50%"],
        &["-comp", "lz4", "-Xhc"],
        &["-comp", "lz4", "-Xacceleration", "5"],
        &["-comp", "zstd", "-always-use-fragments", "-noD"],
        &["-comp", "lzo", "-no-fragments", "-no-exports"],
    ]
    .iter()
    .enumerate()
    {
        let plain = dir.join(format!("no-xattrs-{k}.sqfs"));
        run(Command::new("mksquashfs")
            .arg(fixture().join("data"))
            .arg(&plain)
            .args(["-noappend", "-quiet", "-no-progress", "-no-xattrs"])
            .args(*comp));
        let stat = |bin: &Path| run(Command::new(bin).args(["-s", "-UTC"]).arg(&plain)).stdout;
        assert!(
            stat(Path::new("unsquashfs")) == stat(&ours),
            "unsquashfs -s {comp:?}: not the same bytes:\n{}\nvs\n{}",
            String::from_utf8_lossy(&stat(Path::new("unsquashfs"))),
            String::from_utf8_lossy(&stat(&ours))
        );
    }
    let extracts: &[&[&str]] = &[
        &["-q", "-n"],
        &["-q", "-n", "-no-xattrs"],
        &["-q", "data/*", "sizes"],
    ];
    for (k, args) in extracts.iter().enumerate() {
        let (a, b) = (dir.join(format!("real-{k}")), dir.join(format!("ours-{k}")));
        let mut full: Vec<&str> = args.to_vec();
        let pos = full
            .iter()
            .position(|x| !x.starts_with('-'))
            .unwrap_or(full.len());
        full.insert(pos, &i);
        for (bin, d) in [(Path::new("unsquashfs"), &a), (ours.as_path(), &b)] {
            let out = Command::new(bin)
                .arg("-d")
                .arg(d)
                .args(&full)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{bin:?} {full:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_same(
            &format!("unsquashfs {args:?}"),
            &snapshot(&a),
            &snapshot(&b),
        );
        // Again over the same tree: refused without -f, done with it.
        let again = Command::new(&ours)
            .arg("-d")
            .arg(&b)
            .args(&full)
            .output()
            .unwrap();
        assert!(!again.status.success(), "existing files without -f");
        let forced = Command::new(&ours)
            .args(["-f", "-d"])
            .arg(&b)
            .args(&full)
            .output()
            .unwrap();
        assert!(
            forced.status.success(),
            "{}",
            String::from_utf8_lossy(&forced.stderr)
        );
        assert_same(
            &format!("unsquashfs -f {args:?}"),
            &snapshot(&a),
            &snapshot(&b),
        );
    }
    // -pf: the pseudo file snapd diffs and rebuilds from, byte for byte,
    // to a file and to standard output; snapd's queue options taken.
    let (pa, pb) = (dir.join("real.pf"), dir.join("ours.pf"));
    run(Command::new("unsquashfs").arg("-pf").arg(&pa).arg(&i));
    run(Command::new(&ours)
        .args(["-da", "16", "-fr", "16", "-pf"])
        .arg(&pb)
        .arg(&i));
    assert!(
        std::fs::read(&pa).unwrap() == std::fs::read(&pb).unwrap(),
        "unsquashfs -pf: not the same bytes"
    );
    let to_stdout = run(Command::new(&ours).args(["-pf", "-", &i]));
    assert!(to_stdout.stdout == std::fs::read(&pa).unwrap(), "-pf -");
    // -user-xattrs: only user. xattrs come out.
    let (a, b) = (dir.join("real-user"), dir.join("ours-user"));
    for (bin, d) in [(Path::new("unsquashfs"), &a), (ours.as_path(), &b)] {
        run(Command::new(bin)
            .args(["-q", "-n", "-user-xattrs", "-d"])
            .arg(d)
            .arg(&i)
            .arg("xattrs"));
    }
    assert_same("unsquashfs -user-xattrs", &snapshot(&a), &snapshot(&b));
    // At an offset.
    let (a, b) = (dir.join("real-off"), dir.join("ours-off"));
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-o", "4K", "-d"])
        .arg(&a)
        .arg(&w));
    run(Command::new(&ours)
        .args(["-q", "-n", "-o", "4K", "-d"])
        .arg(&b)
        .arg(&w));
    assert_same("unsquashfs -o 4K", &snapshot(&a), &snapshot(&b));
    if !have("unsquashfs") {
        skip!("unsquashfs missing");
    }
}
