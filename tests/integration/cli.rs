use crate::{corpora, scratch, skip, sqfuse};
use std::process::Output;

fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error is not one line: {err:?}"
    );
    assert!(err.starts_with("sqfuse: "), "{err}");
    err
}

#[test]
fn bad_input_gets_one_line_errors() {
    let err = one_line_error(
        &sqfuse()
            .args(["ls", "/nonexistent/image.sqfs"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("cannot open"), "{err}");
    let err = one_line_error(
        &sqfuse()
            .args(["info", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
            .output()
            .unwrap(),
    );
    assert!(err.contains("not a SquashFS image"), "{err}");
    for (args, want) in [
        (&["ls", "--bogus", "x"][..], "--bogus"),
        (&["info"], "<IMAGE>"),
        (&["mount", "x"], "<MOUNTPOINT>"),
        (&[], "sqfuse IMAGE MOUNTPOINT"),
    ] {
        let out = sqfuse().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = one_line_error(&out);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn commands_report_wrong_paths_and_types() {
    let img = corpora().join("images/dissect.squashfs/zstd.sqfs");
    if !img.exists() {
        skip!("no dissect corpus");
    }
    let err = one_line_error(&sqfuse().arg("cat").arg(&img).arg("dir").output().unwrap());
    assert!(err.contains("not a regular file"), "{err}");
    let err = one_line_error(
        &sqfuse()
            .arg("ls")
            .arg(&img)
            .arg("no/such")
            .output()
            .unwrap(),
    );
    assert!(err.contains("no such file"), "{err}");
    let file = scratch("cli").join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = one_line_error(
        &sqfuse()
            .arg("extract")
            .arg(&img)
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert!(err.contains("not a directory"), "{err}");
    let err = one_line_error(
        &sqfuse()
            .args(["ls", "--offset", "99999999"])
            .arg(&img)
            .output()
            .unwrap(),
    );
    assert!(err.contains("offset"), "{err}");
}

#[test]
fn ls_long_shows_mode_owner_size_time_and_target() {
    let img = corpora().join("images/dissect.squashfs/gzip.sqfs");
    if !img.exists() {
        skip!("no dissect corpus");
    }
    let out = sqfuse().args(["ls", "-l"]).arg(&img).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let small = text
        .lines()
        .find(|l| l.ends_with(" small-file"))
        .expect(&text);
    assert!(small.starts_with("-rw-r--r-- "), "{small}");
    assert!(small.contains(" 9 2022-12-05 18:53 small-file"), "{small}");
    let link = text.lines().find(|l| l.contains(" symlink-2")).unwrap();
    assert!(
        link.starts_with('l') && link.ends_with("symlink-2 -> dir/file_69"),
        "{link}"
    );
    let one = sqfuse()
        .args(["ls"])
        .arg(&img)
        .arg("/dir/file_69")
        .output()
        .unwrap();
    assert_eq!(one.stdout, b"file_69\n");
}

#[test]
fn check_exits_nonzero_on_a_corrupt_image() {
    let img = corpora().join("malformed/sqfstools-ng_pathtraversal.sqfs");
    if !img.exists() {
        skip!("no malformed corpus");
    }
    let out = sqfuse().arg("check").arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("at offset"), "{text}");
    let ok = sqfuse()
        .arg("check")
        .arg(corpora().join("images/dissect.squashfs/gzip.sqfs"))
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
}
