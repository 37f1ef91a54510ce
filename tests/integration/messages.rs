//! What a newcomer reads in the first hour, by exact text: each message
//! says once what went wrong and what to do; summaries count in words;
//! the progress display scans, then fills to the end.

use crate::{corpora, have, is_root, scratch, skip, sqfuse};
use std::path::Path;
use std::process::{Command, Output};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tree with one file `a` ("abc"), packed.
fn one_file_image(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(name);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"abc").unwrap();
    let img = dir.join("img.sqfs");
    let out = sqfuse().arg("pack").arg(&src).arg(&img).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, img)
}

#[test]
fn bare_sqfuse_names_every_command() {
    let out = sqfuse().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let names: Vec<String> = sqfuse::cli::args::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name().to_string())
        .collect();
    for n in ["verity", "completions", "profile", "pack", "mount"] {
        assert!(names.iter().any(|x| x == n), "no {n} command?");
    }
    assert_eq!(
        stderr(&out),
        format!(
            "sqfuse: say what to do: sqfuse IMAGE MOUNTPOINT, or one of {} (see --help)\n",
            names.join(", ")
        )
    );
}

#[test]
fn pack_summary_counts_in_words() {
    let (dir, img) = one_file_image("summary");
    let again = dir.join("again.sqfs");
    let out = sqfuse()
        .arg("pack")
        .arg(dir.join("src"))
        .arg(&again)
        .output()
        .unwrap();
    let err = stderr(&out);
    let want = format!(
        "{}: 2 inodes, 1 file (0 duplicates), 3 B of data, 4.00 KiB image, ",
        again.display()
    );
    assert!(err.starts_with(&want), "{err}");
    // No ratio for an image that is all tables ("204800.0%").
    assert!(!err.contains('%'), "{err}");
    drop(img);
}

#[test]
fn extracting_over_what_exists_says_how_to_overwrite() {
    let (dir, img) = one_file_image("extract-twice");
    let dest = dir.join("out");
    let extract = || {
        sqfuse()
            .arg("extract")
            .arg(&img)
            .arg(&dest)
            .output()
            .unwrap()
    };
    assert!(extract().status.success());
    let out = extract();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "sqfuse: {}: cannot create {}: it exists (-f overwrites)\n",
            img.display(),
            dest.join("a").display()
        )
    );
}

#[test]
fn packing_onto_a_directory_is_refused_even_with_force() {
    let (dir, _) = one_file_image("pack-onto-dir");
    let target = dir.join("outdir");
    std::fs::create_dir_all(&target).unwrap();
    for force in [false, true] {
        let mut c = sqfuse();
        c.arg("pack");
        if force {
            c.arg("-f");
        }
        let out = c.arg(dir.join("src")).arg(&target).output().unwrap();
        assert_eq!(
            stderr(&out),
            format!(
                "sqfuse: {0} is a directory: name the image file to write (such as {0}/image.sqfs)\n",
                target.display()
            )
        );
    }
}

#[test]
fn image_errors_name_the_image_first() {
    let cargo = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = sqfuse().args(["info", cargo]).output().unwrap();
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "sqfuse: {cargo}: unsupported image at offset 0 (0x0): bad magic 0x"
        )),
        "{err}"
    );
    assert!(err.ends_with(", not a SquashFS image\n"), "{err}");
    // No kind said twice, no "invalid request:" or "I/O error:" prefixes.
    let out = sqfuse().args(["ls", "/no/such.sqfs"]).output().unwrap();
    assert_eq!(
        stderr(&out),
        "sqfuse: cannot open /no/such.sqfs: No such file or directory\n"
    );
}

#[test]
fn info_prints_the_offset_auto_found() {
    let sif = corpora().join("images/sylabs-sif/one-group.sif");
    let json = sqfuse()
        .args(["info", "--json", "--offset", "auto"])
        .arg(&sif)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let at = v["offset"].as_u64().unwrap();
    assert!(at > 0);
    let text = sqfuse()
        .args(["info", "--offset", "auto"])
        .arg(&sif)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    let line = format!("offset:          {at} (mount with -o offset={at})");
    assert!(text.lines().any(|l| l == line), "{text}");
    // An image at 0 has no offset line.
    let (_, img) = one_file_image("info-offset");
    let text = sqfuse().arg("info").arg(&img).output().unwrap();
    assert!(!String::from_utf8_lossy(&text.stdout).contains("offset:"));
}

/// As `nobody`, a source it may not read: the path, the OS's reason, and
/// the option that packs the rest.
#[test]
fn unreadable_source_hints_at_skip_unreadable() {
    if !is_root() || !have("setpriv") {
        skip!("needs root (to become nobody) and setpriv");
    }
    let dir = scratch("unreadable");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::write(src.join("file"), b"x").unwrap();
    crate::reachable_by_nobody(&dir);
    let chmod = |mode: &str, p: &Path| {
        assert!(Command::new("chmod")
            .arg(mode)
            .arg(p)
            .status()
            .unwrap()
            .success())
    };
    chmod("777", &dir);
    chmod("755", &src);
    chmod("000", &src.join("locked"));
    let img = dir.join("img.sqfs");
    let out = crate::as_nobody(env!("CARGO_BIN_EXE_sqfuse"))
        .arg("pack")
        .arg(&src)
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(
        stderr(&out),
        format!(
            "sqfuse: cannot list {}: Permission denied; --skip-unreadable packs the rest, leaving out what cannot be read\n",
            src.join("locked").display()
        )
    );
    assert!(!img.exists());
    chmod("755", &src.join("locked"));
}

/// stderr of `sqfuse ARGS` run on a pseudo-terminal (where the progress
/// display draws), as the terminal received it.
fn on_a_terminal(args: &[&std::ffi::OsStr]) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: out-pointers to locals; the descriptors are then owned here.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty");
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = sqfuse()
        .args(args)
        .stderr(std::process::Stdio::from(slave))
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    // The child is gone and held the only other end: read to EIO.
    let mut all = Vec::new();
    let mut f = std::fs::File::from(master);
    let mut buf = [0u8; 65536];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

/// The display scans (a spinner with entries), then a bar over the bytes
/// actually read: duplicates, never read, are not in its total, so it ends
/// full (it ended at 78% on /usr/share/doc).
#[test]
fn progress_ends_full_when_duplicates_are_not_read() {
    let dir = scratch("progress");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let body = crate::noise(7, 3 << 20);
    for name in ["one", "two", "three"] {
        std::fs::write(src.join(name), &body).unwrap();
    }
    std::fs::write(src.join("other"), crate::noise(8, 1 << 20)).unwrap();
    let img = dir.join("img.sqfs");
    let text = on_a_terminal(&["pack".as_ref(), src.as_os_str(), img.as_os_str()]);
    assert!(text.contains("scanning"), "{text:?}");
    let frames: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|f| f.contains('%') && f.contains("MiB/"))
        .collect();
    let last = frames.last().unwrap_or_else(|| panic!("no bar: {text:?}"));
    // 3 MiB once (two duplicates) and 1 MiB: 4 MiB read, of 4 MiB.
    assert!(last.contains(" 100% 4.00 MiB/4.00 MiB "), "{last:?}");
    assert!(!text.contains("0 B/0 B"), "{text:?}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(
        summary.contains("4 files (2 duplicates), 10.00 MiB of data"),
        "{summary:?}"
    );
}
