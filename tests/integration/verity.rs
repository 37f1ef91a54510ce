//! dm-verity: our trees against veritysetup's (both directions), in place
//! and at an offset, and tampering: every changed byte is refused where it
//! lands, the rest reads, nothing altered is ever returned.

use crate::tree::{assert_same, snapshot};
use crate::{corpora, fixture, have, run, scratch, skip, sqfuse};
use sqfuse::reader::verity::TreeLocation;
use std::path::{Path, PathBuf};
use std::process::Command;

fn need_veritysetup() -> bool {
    if !have("veritysetup") {
        crate::skipped(
            "veritysetup comparison: apt-get install cryptsetup-bin",
            false,
        );
        return false;
    }
    true
}

/// `sqfuse info --json`'s verity section.
fn verity_info(img: &Path, offset: &str) -> serde_json::Value {
    let out = run(sqfuse()
        .args(["info", "--json", "--offset", offset])
        .arg(img));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["verity"].clone()
}

/// The root hash a pack or `sqfuse verity` printed.
fn printed_root(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("root hash: "))
        .unwrap_or_else(|| panic!("no root hash printed: {text}"))
        .to_string()
}

fn pack_verity(name: &str, src: &Path, extra: &[&str]) -> (PathBuf, String) {
    let img = scratch("verity").join(format!("{name}.sqfs"));
    let out = run(sqfuse()
        .args(["pack", "-q", "-f", "--verity"])
        .args(extra)
        .arg(src)
        .arg(&img));
    (img, printed_root(&out))
}

fn veritysetup_verify(img: &Path, root: &str, hash_offset: u64) {
    let out = Command::new("veritysetup")
        .arg("verify")
        .arg(img)
        .arg(img)
        .arg(root)
        .arg(format!("--hash-offset={hash_offset}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "veritysetup verify {}: {}",
        img.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `extract` makes of an image, with or without verification.
fn extracted(
    img: &Path,
    name: &str,
    args: &[&str],
) -> std::collections::BTreeMap<PathBuf, crate::tree::Entry> {
    let d = scratch("verity-x").join(name);
    let _ = std::fs::remove_dir_all(&d);
    run(sqfuse().arg("extract").args(args).arg(img).arg(&d));
    snapshot(&d)
}

/// pack --verity writes what veritysetup verifies; the root it prints is
/// the tree's; a given salt gives the same bytes for any -j; verified reads
/// give the source back.
#[test]
fn pack_verity_trees_pass_veritysetup() {
    let (img, root) = pack_verity("packed", fixture(), &["-c", "zstd"]);
    let v = verity_info(&img, "0");
    assert_eq!(v["root_hash_as_found"], root.as_str());
    assert_eq!(
        (v["algorithm"].as_str(), v["data_block_size"].as_u64()),
        (Some("sha256"), Some(4096))
    );
    let h = v["superblock_offset"].as_u64().unwrap();
    assert_eq!(h % 4096, 0);
    assert_eq!(
        v["data_blocks"].as_u64().unwrap() * 4096,
        h,
        "the tree covers everything before it"
    );
    if need_veritysetup() {
        veritysetup_verify(&img, &root, h);
    }
    let want = crate::expected_fixture(&[]);
    assert_same(
        "verified extract",
        &want,
        &extracted(&img, "packed", &["--verity", &root]),
    );
    // Reproducible with a salt, whatever the thread count.
    let salt = "5a".repeat(32);
    let (a, ra) = pack_verity("salted-1", fixture(), &["--verity-salt", &salt, "-j", "1"]);
    let (b, rb) = pack_verity("salted-2", fixture(), &["--verity-salt", &salt, "-j", "2"]);
    assert_eq!(ra, rb);
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "same bytes"
    );
    // --verity-roothash writes it too.
    let rh = scratch("verity").join("root.txt");
    let img2 = scratch("verity").join("rh.sqfs");
    run(sqfuse()
        .args(["pack", "-q", "--verity", "--verity-roothash"])
        .arg(&rh)
        .arg(fixture().join("data"))
        .arg(&img2));
    let pinned = std::fs::read_to_string(&rh).unwrap();
    let out = run(sqfuse()
        .args(["check", "--verity-roothash-file"])
        .arg(&rh)
        .arg(&img2));
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("ok\n"),
        "{pinned}"
    );
}

/// An image at an offset (an AppImage runtime in front) gets a tree over
/// the whole file, as veritysetup sees it; reading at the offset verifies.
#[test]
fn verity_with_an_offset() {
    let dir = scratch("verity-offset");
    let app = dir.join("app.bin");
    std::fs::write(&app, vec![0x7fu8; 10000]).unwrap(); // not a multiple of 4K
    let out = run(sqfuse()
        .args(["pack", "-q", "-f", "--verity", "--offset", "10000"])
        .arg(fixture().join("data"))
        .arg(&app));
    let root = printed_root(&out);
    let v = verity_info(&app, "10000");
    let h = v["superblock_offset"].as_u64().unwrap();
    if need_veritysetup() {
        veritysetup_verify(&app, &root, h);
    }
    let out = run(sqfuse()
        .args(["ls", "-R", "--offset", "auto", "--verity", &root])
        .arg(&app));
    assert!(String::from_utf8_lossy(&out.stdout).contains("text"));
    // The bytes before the image are covered too: change one, reads fail.
    let mut bytes = std::fs::read(&app).unwrap();
    bytes[100] ^= 1;
    let bad = dir.join("bad.bin");
    std::fs::write(&bad, &bytes).unwrap();
    let out = sqfuse()
        .args(["ls", "--offset", "10000", "--verity", &root])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "block 0 (runtime and superblock) is verified"
    );
}

/// `sqfuse verity IMAGE` adds a tree to a mksquashfs image in place (the
/// image bytes unchanged), refuses to add a second without -f, and works
/// on the image inside a SIF file.
#[test]
fn sqfuse_verity_adds_a_tree_in_place() {
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let dir = scratch("verity-inplace");
    let img = dir.join("mk.sqfs");
    run(Command::new("mksquashfs").arg(fixture()).arg(&img).args([
        "-noappend",
        "-quiet",
        "-no-progress",
        "-comp",
        "gzip",
    ]));
    let before = std::fs::read(&img).unwrap();
    let out = run(sqfuse().arg("verity").arg(&img));
    let root = printed_root(&out);
    let after = std::fs::read(&img).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the image itself is unchanged"
    );
    let h = verity_info(&img, "0")["superblock_offset"]
        .as_u64()
        .unwrap();
    if need_veritysetup() {
        veritysetup_verify(&img, &root, h);
    }
    let again = sqfuse().arg("verity").arg(&img).output().unwrap();
    assert!(!again.status.success(), "a second tree needs -f");
    assert!(String::from_utf8_lossy(&again.stderr).contains("-f"));
    let out = run(sqfuse().args(["verity", "-f", "--salt", "00"]).arg(&img));
    let root2 = printed_root(&out);
    assert_ne!(root, root2);
    assert_eq!(
        std::fs::read(&img).unwrap().len(),
        after.len(),
        "replaced, not stacked"
    );
    let sif = corpora().join("images/sylabs-sif/one-group.sif");
    if sif.exists() {
        let copy = dir.join("c.sif");
        std::fs::copy(&sif, &copy).unwrap();
        let out = run(sqfuse().args(["verity", "--offset", "auto"]).arg(&copy));
        let r = printed_root(&out);
        let out = run(sqfuse()
            .args(["cat", "--offset", "auto", "--verity", &r])
            .arg(&copy)
            .arg("hello.txt"));
        assert!(!out.stdout.is_empty());
    }
}

/// Trees veritysetup made are read: appended (--hash-offset) and detached.
#[test]
fn veritysetup_trees_are_accepted() {
    if !need_veritysetup() || !have("mksquashfs") {
        return;
    }
    let dir = scratch("verity-theirs");
    let img = dir.join("img.sqfs");
    run(Command::new("mksquashfs").arg(fixture()).arg(&img).args([
        "-noappend",
        "-quiet",
        "-no-progress",
    ]));
    let size = std::fs::metadata(&img).unwrap().len();
    let plain = extracted(&img, "plain", &[]);
    let root_of = |out: std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .unwrap()
            .trim()
            .to_string()
    };
    let detached = dir.join("img.hash");
    let root = root_of(run(Command::new("veritysetup")
        .arg("format")
        .arg(&img)
        .arg(&detached)));
    let hash_arg = detached.display().to_string();
    assert_same(
        "detached tree",
        &plain,
        &extracted(
            &img,
            "detached",
            &["--verity", &root, "--verity-hash", &hash_arg],
        ),
    );
    // info names the tree it checked against: detached, verified, that root.
    let out = run(sqfuse()
        .args([
            "info",
            "--json",
            "--verity",
            &root,
            "--verity-hash",
            &hash_arg,
        ])
        .arg(&img));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verity"]["detached"], true, "{v}");
    assert_eq!(v["verity"]["verified"], true, "{v}");
    assert_eq!(v["verity"]["root_hash"], root.as_str(), "{v}");
    let text = run(sqfuse()
        .args(["info", "--verity", &root, "--verity-hash", &hash_arg])
        .arg(&img));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("dm-verity tree:  detached"), "{text}");
    assert!(text.contains(&format!("{root} (verified")), "{text}");
    let appended = dir.join("appended.sqfs");
    std::fs::copy(&img, &appended).unwrap();
    let root = root_of(run(Command::new("veritysetup")
        .arg("format")
        .arg(&appended)
        .arg(&appended)
        .arg(format!("--hash-offset={size}"))
        .arg(format!("--data-blocks={}", size / 4096))));
    assert_same(
        "appended tree",
        &plain,
        &extracted(&appended, "appended", &["--verity", &root]),
    );
}

/// One byte changed in a data block, a fragment block, the inode table, a
/// hash block, or the superblock: verified reads refuse exactly what
/// depends on it; the rest still reads; nothing altered is returned.
#[test]
fn tampering_is_refused_where_it_lands() {
    let dir = scratch("verity-tamper");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    // Incompressible blocks are stored as they are: without verity a
    // changed byte would be served silently.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..300_000)
        .map(|_| {
            // xorshift64: incompressible
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::write(src.join("big"), &noise).unwrap();
    std::fs::write(src.join("other"), &noise[..200_000]).unwrap();
    // 200 incompressible tails: a fragment block of ~20 KiB, whose middle
    // 4 KiB blocks hold nothing else.
    for i in 0..200 {
        let mut tail = format!("small file {i}\n").into_bytes();
        tail.extend_from_slice(&noise[i * 100..i * 100 + 100]);
        std::fs::write(src.join("many").join(format!("f{i}")), tail).unwrap();
    }
    let (img, root) = pack_verity("tamper", &src, &["-c", "gzip", "--no-dedup"]);
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (big, _) = image.lookup_path("big").unwrap();
    let big_file = image.open_file(&big).unwrap();
    let big_block0 = big_file.block_offset(0).unwrap();
    assert!(
        big_file.info().blocks[0].is_stored(),
        "noise is stored as it is"
    );
    let frag0 = image.fragment_entry(0).unwrap().start;
    let inode_table = image.sb.inode_table_start;
    let found = image.verity_tree().unwrap();
    let (h, params) = match found.location {
        TreeLocation::Appended(h) => (h, found.params),
        TreeLocation::Detached => panic!("pack --verity appends its tree"),
    };
    drop(image);
    let tree = sqfuse::format::verity::tree_offset(h, 4096);
    let levels = params.levels();
    let level0 = tree + levels[0].0 * 4096; // the first level-0 hash block
    let original = std::fs::read(&img).unwrap();
    let cat = |img: &Path, path: &str, verity: bool| {
        let mut c = sqfuse();
        c.arg("cat");
        if verity {
            c.args(["--verity", &root]);
        }
        c.arg(img).arg(path).output().unwrap()
    };
    let flip = |at: u64, name: &str| {
        let mut b = original.clone();
        b[at as usize + 1] ^= 0x40;
        let p = dir.join(format!("{name}.sqfs"));
        std::fs::write(&p, b).unwrap();
        p
    };
    // A data block: that file refuses, the others read. (Verification is
    // per 4 KiB block: a byte in the file's first block would hit the
    // superblock's too, which every read needs.)
    let bad = flip(big_block0 + 20_000, "data");
    assert!(
        cat(&bad, "big", false).stdout != noise,
        "without verity the change is served"
    );
    let out = cat(&bad, "big", true);
    assert!(
        !out.status.success() && out.stdout.len() < noise.len(),
        "with verity: refused"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("verity") && err.lines().count() == 1, "{err}");
    assert!(
        cat(&bad, "other", true).stdout == noise[..200_000],
        "other reads"
    );
    assert!(cat(&bad, "many/f3", true)
        .stdout
        .starts_with(b"small file 3\n"));
    // A fragment block: the small files' tails refuse, the big one reads.
    let bad = flip(frag0 + 10_000, "fragment");
    assert!(!cat(&bad, "many/f100", true).status.success());
    let layout = format!("big at {big_block0}, fragment at {frag0}, inodes at {inode_table}");
    assert!(
        cat(&bad, "big", true).stdout == noise,
        "big reads ({layout})"
    );
    // The inode table: what needs it refuses (here: everything, it is one block).
    let bad = flip(inode_table + 8, "inodes");
    assert!(!cat(&bad, "big", true).status.success());
    // A level-0 hash block: the data it covers refuses.
    let bad = flip(level0 + 10, "hash");
    assert!(!cat(&bad, "big", true).status.success());
    // The superblock: refused at open, one line.
    let bad = flip(20, "superblock");
    let out = sqfuse()
        .args(["ls", "--verity", &root])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // And every damaged copy, checked whole: problems found, none hidden.
    for name in ["data", "fragment", "inodes", "hash"] {
        let out = sqfuse()
            .args(["check", "--verity", &root])
            .arg(dir.join(format!("{name}.sqfs")))
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{name}: check finds it");
    }
}
