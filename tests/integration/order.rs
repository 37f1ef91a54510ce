//! File data laid out in a chosen order: `pack --order PROFILE` and the
//! mksquashfs personality's `-sort FILE`, the latter against the real
//! mksquashfs given the same sort file.

use crate::tree::{assert_same, snapshot};
use crate::{have, personality, run, scratch, sqfuse};
use sqfuse::format::inode::InodeData;
use sqfuse::reader::walk::Step;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The regular files of an image in the order their data lies (first
/// block; for a file that is only a fragment tail, its fragment's place
/// and offset in it), empty files left out.
fn data_order(img: &Path) -> Vec<String> {
    let image = sqfuse::Image::open(img, &Default::default()).unwrap();
    let root = image.root().unwrap();
    let mut placed = Vec::new();
    for step in image.walk(&root, image.root_ref()).unwrap() {
        if let Step::Entry(e) = step.unwrap() {
            if let InodeData::File(f) = &e.inode.data {
                let at = if !f.blocks.is_empty() {
                    (f.blocks_start, 0)
                } else if let Some((i, off)) = f.fragment {
                    (image.fragment_entry(i).unwrap().start, off)
                } else {
                    continue; // empty
                };
                placed.push((at, String::from_utf8_lossy(&e.path).into_owned()));
            }
        }
    }
    placed.sort();
    placed.into_iter().map(|(_, p)| p).collect()
}

/// Files in three directories, some a few blocks long, some one fragment.
fn source() -> PathBuf {
    let src = scratch("order-src");
    if src.join("c").exists() {
        return src;
    }
    for d in ["a", "b", "c/deep"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for (name, len) in [
        ("a/1", 9000),
        ("a/2", 300),
        ("b/1", 20000),
        ("b/2", 700),
        ("c/1", 5000),
        ("c/deep/1", 12000),
        ("c/deep/2", 100),
        ("top", 4100),
    ] {
        std::fs::write(src.join(name), crate::noise(len as u64, len)).unwrap();
    }
    src
}

#[test]
fn pack_order_puts_the_profiles_files_first_for_any_thread_count() {
    let src = source();
    let profile = scratch("order").join("launch.profile");
    // As a recorded profile lists them (the image line is not checked by pack).
    std::fs::write(
        &profile,
        "sqfuse-profile 1\nimage 0 x\nlook /c\nread /c/deep/2 0 100\nread /b/2 0 700\nread /c/deep/2 0 50\nread /a/1 4096 10\nread /nope 0 1\n",
    )
    .unwrap();
    let pack = |j: &str, name: &str, more: &[&str]| {
        let img = scratch("order").join(name);
        let out = run(sqfuse()
            .arg("pack")
            .arg(&src)
            .arg(&img)
            .args(["-f", "-q", "-b", "4K", "-j", j, "--order"])
            .arg(&profile)
            .args(more));
        (img, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (one, said) = pack("1", "j1.sqfs", &[]);
    let (three, _) = pack("3", "j3.sqfs", &[]);
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&three).unwrap());
    // The profile's small files share the first fragment block, in order.
    let image = sqfuse::Image::open(&one, &Default::default()).unwrap();
    let tail = |p: &str| match image.lookup_path(p).unwrap().0.data {
        InodeData::File(f) => f.fragment,
        _ => None,
    };
    assert_eq!(
        (tail("c/deep/2"), tail("b/2")),
        (Some((0, 0)), Some((0, 100)))
    );
    // Whole blocks: the profile's files first, in its order; the rest in
    // tree order.
    let (blocks, _) = pack("2", "blocks.sqfs", &["--no-fragments"]);
    assert_eq!(
        data_order(&blocks),
        ["c/deep/2", "b/2", "a/1", "a/2", "b/1", "c/1", "c/deep/1", "top"]
    );
    // A path not in the tree is said, not an error.
    assert!(
        said.contains("1 of the 4 paths given to order the data are not in the tree"),
        "{said}"
    );
    // Only the data moved: the tree reads back as the source.
    let dest = scratch("order").join("x");
    run(sqfuse().arg("extract").arg(&one).arg(&dest));
    assert_same(
        "ordered image extracted vs source",
        &snapshot(&src),
        &snapshot(&dest),
    );
    // Without --order: tree order.
    let plain = scratch("order").join("plain.sqfs");
    run(sqfuse().arg("pack").arg(&src).arg(&plain).args([
        "-f",
        "-q",
        "-b",
        "4K",
        "--no-fragments",
    ]));
    assert_eq!(
        data_order(&plain),
        ["a/1", "a/2", "b/1", "b/2", "c/1", "c/deep/1", "c/deep/2", "top"]
    );
}

#[test]
fn mksquashfs_sort_file_orders_data_as_mksquashfs_does() {
    if !have("mksquashfs") {
        crate::skipped("-sort comparison: squashfs-tools missing", false);
        return;
    }
    let src = source();
    let sort = scratch("order").join("sort.txt");
    // Files and directories, negative and positive, a comment, an escaped
    // path form mksquashfs takes, a directory given with /*.
    std::fs::write(
        &sort,
        "# launch order\nc/deep/2 100\nb 50\n  a/2   60\nc/deep/* 40\ntop -5\n",
    )
    .unwrap();
    let build = |prog: &Path, name: &str| {
        let img = scratch("order").join(name);
        run(Command::new(prog)
            .arg(&src)
            .arg(&img)
            .args([
                "-noappend",
                "-quiet",
                "-no-progress",
                "-b",
                "4096",
                "-no-fragments",
                "-sort",
            ])
            .arg(&sort));
        img
    };
    let theirs = build(Path::new("mksquashfs"), "real-sort.sqfs");
    let ours = build(&personality("mksquashfs"), "our-sort.sqfs");
    let want = data_order(&theirs);
    // Higher priority first; equal priorities in reverse tree order (its
    // lists are built by prepending), unlisted files at 0, -5 last.
    assert_eq!(
        want,
        ["c/deep/2", "a/2", "b/2", "b/1", "c/deep/1", "c/1", "a/1", "top"],
        "what the real mksquashfs does with this sort file changed"
    );
    assert_eq!(data_order(&ours), want);
    // A bad priority is an error naming the file and line.
    std::fs::write(&sort, "a/1 10\nb 99999\n").unwrap();
    let out = Command::new(personality("mksquashfs"))
        .arg(&src)
        .arg(scratch("order").join("bad.sqfs"))
        .args(["-noappend", "-sort"])
        .arg(&sort)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("line 2: priority outside -32768..32767"),
        "{said}"
    );
}
