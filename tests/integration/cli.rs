use crate::{corpora, scratch, sqfuse};
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

/// contrib/ holds what tools/regen-contrib.sh generates from the clap
/// definitions: the man pages and completions must match the binary.
#[test]
fn contrib_man_pages_and_completions_are_up_to_date() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = scratch("man");
    let out = sqfuse().arg("man").arg(&fresh).output().unwrap();
    assert!(out.status.success());
    let stale = "out of date: run tools/regen-contrib.sh and commit contrib/";
    let mut names: Vec<_> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    for n in &names {
        let want = std::fs::read(fresh.join(n)).unwrap();
        let have = std::fs::read(root.join("contrib/man").join(n)).unwrap_or_default();
        assert!(want == have, "contrib/man/{} {stale}", n.to_string_lossy());
    }
    for (shell, file) in [
        ("bash", "sqfuse.bash"),
        ("zsh", "_sqfuse"),
        ("fish", "sqfuse.fish"),
    ] {
        let out = sqfuse().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("extract"),
            "{shell}: completes the commands"
        );
        let have = std::fs::read(root.join("contrib/completions").join(file)).unwrap_or_default();
        assert!(out.stdout == have, "contrib/completions/{file} {stale}");
    }
}

/// Each of the command-line complaints, as a user meets them.
#[test]
fn cli_reports_what_a_user_needs() {
    let img = corpora().join("images/dissect.squashfs/zstd.sqfs");
    // A mistyped command gets a suggestion, not "cannot open chek".
    let err = one_line_error(&sqfuse().arg("chek").arg(&img).output().unwrap());
    assert!(err.contains("did you mean \"check\""), "{err}");
    // The OS error's words once, without Rust's "(os error 2)".
    let err = one_line_error(&sqfuse().args(["info", "/no/such.sqfs"]).output().unwrap());
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(!err.contains("os error"), "{err}");
    // A wrapper at offset 0 hints at offset auto; --offset auto finds it.
    let sif = corpora().join("images/sylabs-sif/one-group.sif");
    if sif.exists() {
        let err = one_line_error(&sqfuse().arg("info").arg(&sif).output().unwrap());
        assert!(err.contains("SIF") && err.contains("auto"), "{err}");
        let out = sqfuse()
            .args(["ls", "--offset", "auto"])
            .arg(&sif)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every option has help; the usage line shows the mount shorthand.
    let help = sqfuse().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("sqfuse IMAGE MOUNTPOINT"), "{help}");
    for opt in ["prefetch=", "no_page_fill", "image_offset=", "auto_unmount"] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    let cmd = sqfuse::cli::args::command();
    for sub in cmd.get_subcommands() {
        for a in sub.get_arguments() {
            if !matches!(a.get_id().as_str(), "help" | "version") {
                assert!(
                    a.get_help().is_some(),
                    "{} {} has no help text",
                    sub.get_name(),
                    a.get_id()
                );
            }
        }
    }
    // ls --json: one object per entry, every field of -l.
    let out = sqfuse()
        .args(["ls", "--json", "-R"])
        .arg(&img)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = v.as_array().unwrap();
    assert!(entries.len() > 5);
    let small = entries.iter().find(|e| e["path"] == "small-file").unwrap();
    assert_eq!(
        (small["size"].as_u64(), small["type"].as_str()),
        (Some(9), Some("file"))
    );
    let link = entries.iter().find(|e| e["type"] == "symlink").unwrap();
    assert!(link["target"].is_string());
}

/// `extract IMG DEST PATH` makes DEST/NAME (as unsquashfs does, the entry
/// itself); a second run fails unless -f, which replaces what is there
/// without following a symlink planted in the way.
#[test]
fn extract_path_makes_its_last_component_and_force_overwrites() {
    let img = corpora().join("images/dissect.squashfs/zstd.sqfs");
    let dest = scratch("extract-force").join("out");
    let out = sqfuse()
        .arg("extract")
        .arg(&img)
        .arg(&dest)
        .arg("dir")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dest.join("dir").is_dir(), "DEST/dir made");
    let listed = sqfuse().arg("ls").arg(&img).arg("dir").output().unwrap();
    for name in String::from_utf8_lossy(&listed.stdout).lines() {
        assert!(
            dest.join("dir").join(name).symlink_metadata().is_ok(),
            "dir/{name} extracted"
        );
    }
    let again = sqfuse()
        .arg("extract")
        .arg(&img)
        .arg(&dest)
        .arg("dir")
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "existing entries are not overwritten without -f"
    );
    // A symlink planted where a file goes: -f removes it, never writes through it.
    let victim = scratch("extract-force").join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let first = std::fs::read_dir(dest.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file() && !p.is_symlink())
        .unwrap();
    std::fs::remove_file(&first).unwrap();
    std::os::unix::fs::symlink(&victim, &first).unwrap();
    let forced = sqfuse()
        .args(["extract", "-f"])
        .arg(&img)
        .arg(&dest)
        .arg("dir")
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(
        !first.is_symlink(),
        "the planted link was replaced by the file"
    );
}

/// A pack killed with SIGKILL leaves its temporary file behind; its name
/// says where it came from, and the next pack to the same IMAGE removes it.
#[test]
fn stale_temporaries_of_killed_packs_are_removed() {
    let dir = scratch("stale-tmp");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), vec![7u8; 1 << 20]).unwrap();
    // A dead process's leftovers, and one of a live process (this one).
    let dead = dir.join(".img.sqfs.sqfuse-pack-999999999.tmp");
    let live = dir.join(format!(".img.sqfs.sqfuse-pack-{}.tmp", std::process::id()));
    std::fs::write(&dead, "junk").unwrap();
    std::fs::write(&live, "busy").unwrap();
    let out = sqfuse()
        .args(["pack", "-q"])
        .arg(&src)
        .arg(dir.join("img.sqfs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dead.exists(), "a dead pack's temporary file is removed");
    assert!(live.exists(), "a live process's is left alone");
}

/// One damaged fragment block holding the tails of 50 files is one problem
/// in `check`'s report, naming the first path and counting the others, not
/// 50 lines.
#[test]
fn check_names_paths_and_does_not_repeat_one_problem() {
    let dir = scratch("check-repeat");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..50 {
        std::fs::write(
            src.join(format!("f{i:02}")),
            format!("file {i} ").repeat(20),
        )
        .unwrap();
    }
    let img = dir.join("img.sqfs");
    let out = sqfuse()
        .args(["pack", "-q", "-c", "gzip"])
        .arg(&src)
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success());
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let frag = image.fragment_entry(0).unwrap();
    drop(image);
    let mut bytes = std::fs::read(&img).unwrap();
    let at = frag.start as usize + 4;
    for b in &mut bytes[at..at + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(&img, &bytes).unwrap();
    let out = sqfuse().arg("check").arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 3, "{text}");
    let first = lines
        .iter()
        .find(|l| l.contains("f00"))
        .expect("names the path");
    assert!(first.contains("more paths with the same problem"), "{text}");
}
