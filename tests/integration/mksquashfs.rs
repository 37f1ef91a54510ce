//! The fixture tree packed by mksquashfs with each compressor and layout
//! option, then read back by us and by unsquashfs, compared entry by entry.

use crate::{fixture, have, run, scratch, skip, sqfuse};
use std::path::PathBuf;
use std::process::Command;

fn build(name: &str, opts: &[&str]) -> PathBuf {
    let img = scratch("mksquashfs").join(format!("{name}.sqfs"));
    run(Command::new("mksquashfs")
        .arg(fixture())
        .arg(&img)
        .args(["-noappend", "-quiet", "-no-progress", "-processors", "2"])
        .args(opts));
    img
}

fn roundtrip(name: &str, opts: &[&str]) {
    if !have("mksquashfs") || !have("unsquashfs") {
        skip!("mksquashfs/unsquashfs missing (apt-get install squashfs-tools)");
    }
    let img = build(name, opts);
    let want = crate::expected_fixture(opts);
    crate::assert_reads_back(name, &img, &want);

    // `ls -R` lists what `unsquashfs -l` lists, in the same order.
    let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
    let ul = run(Command::new("unsquashfs").arg("-l").arg(&img));
    let ul = String::from_utf8(ul.stdout).unwrap();
    let body = ul
        .split_once("squashfs-root\n")
        .map(|x| x.1)
        .expect("unsquashfs -l output");
    let theirs_list = body.replace("\nsquashfs-root/", "\n");
    let theirs_list = theirs_list
        .strip_prefix("squashfs-root/")
        .unwrap_or(&theirs_list);
    assert_eq!(
        String::from_utf8(ls.stdout).unwrap(),
        theirs_list,
        "{name}: ls -R vs unsquashfs -l"
    );
}

crate::layout_tests!(roundtrip);

/// The 3000-entry directory gets a directory index; every name is found
/// through it and names between entries are not.
#[test]
fn lookup_through_the_directory_index() {
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let img = build("index", &["-comp", "lz4"]);
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (dir, _) = image.lookup_path("big-dir").unwrap();
    let index = image.dir_index(&dir).unwrap();
    assert!(
        index.len() >= 5,
        "a 3100-entry listing spans several blocks: {} index entries",
        index.len()
    );
    let names: Vec<_> = std::fs::read_dir(fixture().join("big-dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.len() > 3000);
    for n in &names {
        let name = n.to_str().unwrap();
        let e = image
            .lookup(&dir, name.as_bytes())
            .unwrap()
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(e.name, name.as_bytes());
        let missing = format!("{name}x");
        assert!(image.lookup(&dir, missing.as_bytes()).unwrap().is_none());
    }
    assert!(image.lookup(&dir, b"").unwrap().is_none());
    assert!(image.lookup(&dir, b"zzz").unwrap().is_none());
    // Resuming a listing at an offset yields the rest, in order.
    let all: Vec<_> = image
        .read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().name)
        .collect();
    let rest: Vec<_> = image
        .read_dir_from(&dir, 1234)
        .unwrap()
        .map(|e| e.unwrap().name)
        .collect();
    assert_eq!(rest, all[1234..]);
}

/// Reads at every offset class (block boundaries, fragment tails, holes)
/// equal the source file's bytes.
#[test]
fn reads_at_any_offset_match_the_source() {
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let img = build("reads", &["-comp", "zstd", "-b", "4096"]);
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    for rel in [
        "sizes/size-131073",
        "sizes/size-8193",
        "data/sparse",
        "data/tail-a",
        "sizes/size-1",
    ] {
        let src = std::fs::read(fixture().join(rel)).unwrap();
        let (inode, _) = image.lookup_path(rel).unwrap();
        let f = &image.open_file(&inode).unwrap();
        let n = src.len() as u64;
        for (off, len) in [
            (0, 1),
            (0, 4096),
            (4095, 2),
            (4096, 4096),
            (n.saturating_sub(7), 100),
            (n / 2, 9000),
            (n, 10),
        ] {
            let mut buf = vec![0xAAu8; len];
            let got = image.read_at(f, off, &mut buf).unwrap();
            let want = &src[(off.min(n) as usize)..((off + len as u64).min(n) as usize)];
            assert_eq!(&buf[..got], want, "{rel} at {off}+{len}");
        }
    }
}
