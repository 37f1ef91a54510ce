use super::*;
use crate::format::compressor::Compressor;
use std::path::PathBuf;

fn p(v: &[&str]) -> Result<Action, String> {
    parse(&v.iter().map(OsString::from).collect::<Vec<_>>(), None)
}

fn job(v: &[&str]) -> Job {
    match p(v).unwrap() {
        Action::Pack(j) => *j,
        a => panic!("not a pack: {a:?}"),
    }
}

const OUT: &str = "/tmp/x-does-not-exist.sqfs";

#[test]
fn build_script_lines() {
    let j = job(&[
        "a",
        "b",
        OUT,
        "-noappend",
        "-comp",
        "xz",
        "-b",
        "1M",
        "-Xbcj",
        "x86,arm64",
        "-processors",
        "3",
        "-mem",
        "512M",
        "-all-root",
        "-no-xattrs",
        "-quiet",
        "-mkfs-time",
        "1000",
        "-all-time",
        "2000",
    ]);
    assert_eq!(j.sources, [PathBuf::from("a"), PathBuf::from("b")]);
    assert_eq!(j.opts.compressor, Compressor::Xz);
    assert_eq!((j.opts.block_size, j.opts.threads), (1 << 20, 3));
    assert_eq!(j.opts.xz_filters, 1 | 1 << 6);
    assert!(j.opts.all_root && j.opts.no_xattrs && j.progress == Progress::Quiet);
    assert!(!j.append);
    assert_eq!(
        (j.opts.mkfs_time, j.opts.all_time),
        (Some(1000), Some(2000))
    );
    let j = job(&["d", OUT, "-Xhc", "-comp", "lz4"]);
    assert_eq!(j.opts.level, Some(12), "-X before -comp");
    let j = job(&["d", OUT, "-repro"]);
    assert_eq!(j.opts.mkfs_time, None, "-repro: the newest inode time");
    let j = job(&["d", OUT, "-e", "a", "-wildcards", "b"]);
    assert_eq!(
        j.opts.excludes.len(),
        0,
        "plain paths that do not exist exclude nothing"
    );
}

#[test]
fn mksquashfs_options_the_build_systems_use() {
    let j = job(&[
        "d",
        OUT,
        "-comp",
        "xz",
        "-Xdict-size",
        "50%",
        "-nopad",
        "-noD",
        "-noF",
        "-noX",
        "-percentage",
        "-no-recovery",
        "-exit-on-error",
        "-info",
        "-block-readers",
        "2",
        "-small-readers",
        "3",
        "-keep-as-directory",
        "-root-mode",
        "755",
        "-root-uid",
        "0",
        "-root-gid",
        "root",
        "-root-time",
        "7",
        "-no-hardlinks",
        "-default-mode",
        "0700",
        "-p",
        "/dev/console c 600 0 0 5 1",
        "-pd",
        "d 755 0 0",
        "-pseudo-override",
        "-b",
        "256k",
    ]);
    let o = &j.opts;
    assert_eq!(o.block_size, 256 << 10);
    assert_eq!(
        o.tuning.xz_dict_size,
        Some(128 << 10),
        "50% of the final block size"
    );
    assert!(!o.pad && o.uncompressed.data && o.uncompressed.fragments && o.uncompressed.xattrs);
    assert_eq!(j.progress, Progress::Percentage);
    assert_eq!(o.layout, crate::pack::Layout::KeepAsDirectory);
    assert_eq!(
        (o.root.uid, o.root.gid, o.root.mtime),
        (Some(0), Some(0), Some(7))
    );
    assert_eq!(o.made_dir.perm, Some(0o700));
    assert!(o.no_hardlinks && o.pseudo.override_globals && o.pseudo.default_dir.is_some());
    assert_eq!(o.pseudo.defs.len(), 1);
    let j = job(&[
        "d",
        OUT,
        "-comp",
        "gzip",
        "-Xstrategy",
        "filtered,fixed",
        "-Xwindow-size",
        "12",
    ]);
    assert_eq!(
        (j.opts.tuning.gzip_strategies, j.opts.tuning.gzip_window),
        (0b10010, 12)
    );
    let j = job(&["d", OUT, "-root-time", "inode"]);
    assert!(j.opts.root.newest_mtime);
    let j = job(&["d", OUT]);
    assert!(j.append, "appending is the default");
}

#[test]
fn unsupported_and_bad_options_are_named() {
    for (line, says) in [
        (&["d", OUT, "-zip"][..], "-zip"),
        (&["d", OUT, "-frobnicate"], "-frobnicate"),
        (&["d", OUT, "-b", "3000"], "-b"),
        (&["d", OUT, "-comp", "lzma"], "lzma"),
        (&["d", OUT, "-Xhc"], "-Xhc"),
        (
            &["d", OUT, "-comp", "xz", "-Xdict-size", "150%"],
            "-Xdict-size",
        ),
        (&["d", OUT, "-p", "a d 999 0 0"], "mode"),
        (&["d", OUT, "-root-mode", "u+q"], "-root-mode"),
    ] {
        let e = p(line).unwrap_err();
        assert!(e.contains(says), "{line:?}: {e}");
    }
    assert!(matches!(p(&["-version"]).unwrap(), Action::Version));
}
