//! Mounts verified against a dm-verity root hash: the tree is served as
//! the source; a changed block is EIO for the reads that need it while the
//! rest reads; a wrong root hash refuses the mount; veritysetup's trees
//! (appended, detached) mount too; and, where device-mapper is there, the
//! kernel's dm-verity plus squashfs read our images the same.

use crate::tree::{assert_same, snapshot};
use crate::{have, is_root, need_fuse, run, scratch, skip, sqfuse, unmount, Mounted};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fixture packed with a tree; its root hash.
fn verity_image(name: &str) -> (PathBuf, String) {
    let img = scratch("verity-mnt").join(format!("{name}.sqfs"));
    let out = run(sqfuse()
        .args(["pack", "-q", "-f", "--verity", "-c", "lz4"])
        .arg(crate::fixture())
        .arg(&img));
    let root = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("root hash: ")
        .to_string();
    (img, root)
}

#[test]
fn verified_mount_serves_the_source() {
    need_fuse!();
    let (img, root) = verity_image("served");
    let m = Mounted::new(&img, "verity-served", &[&format!("verity={root}")]);
    assert_same(
        "verified mount",
        &crate::expected_fixture(&[]),
        &snapshot(&m.dir),
    );
    drop(m);
    // The root hash from a file, as --verity-roothash writes it.
    let rh = scratch("verity-mnt").join("root.txt");
    std::fs::write(&rh, format!("{root}\n")).unwrap();
    let m = Mounted::new(
        &img,
        "verity-rootfile",
        &[&format!("verity_roothash_file={}", rh.display())],
    );
    assert!(m.dir.join("data/text").is_file());
}

#[test]
fn wrong_root_hash_refuses_the_mount() {
    need_fuse!();
    let (img, root) = verity_image("wrong");
    let mnt = scratch("mnt").join("verity-wrong");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut bad = root.clone().into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    let out = sqfuse()
        .arg(&img)
        .arg(&mnt)
        .args(["-o", &format!("verity={}", String::from_utf8(bad).unwrap())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("root hash does not match"), "{err}");
    assert!(!crate::is_mounted(&mnt));
}

/// One byte changed in a file's block: EIO for that file, logged, the
/// mount stays up and everything else reads.
#[test]
fn tampered_block_is_eio_and_the_rest_reads() {
    need_fuse!();
    let (img, root) = verity_image("tampered");
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("data/random").unwrap();
    let f = image.open_file(&inode).unwrap();
    let at = f.block_offset(1).unwrap() + 5000; // inside a block of its own
    drop(image);
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[at as usize] ^= 0x01;
    let bad = img.with_file_name("tampered-bad.sqfs");
    std::fs::write(&bad, &bytes).unwrap();
    let m = Mounted::new(&bad, "verity-tampered", &[&format!("verity={root}")]);
    let mut buf = Vec::new();
    let e = std::fs::File::open(m.dir.join("data/random"))
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO));
    let text = std::fs::read(m.dir.join("data/text")).unwrap();
    assert_eq!(
        text,
        std::fs::read(crate::fixture().join("data/text")).unwrap()
    );
    assert!(crate::is_mounted(&m.dir), "the mount stays up");
    let all = snapshot(&m.dir.join("sizes"));
    assert!(all.len() > 5, "other directories read");
}

/// Trees veritysetup wrote, appended and detached, mount.
#[test]
fn veritysetup_trees_mount() {
    need_fuse!();
    if !have("veritysetup") {
        skip!("veritysetup missing (apt-get install cryptsetup-bin)");
    }
    let Some(img) = crate::fixture_image("verity-theirs", &["-comp", "gzip"]) else {
        return;
    };
    let dir = scratch("verity-mnt");
    let root_of = |out: std::process::Output| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:").map(|r| r.trim().to_string()))
            .unwrap()
    };
    let hash = dir.join("detached.hash");
    let root = root_of(run(Command::new("veritysetup")
        .arg("format")
        .arg(&img)
        .arg(&hash)));
    let m = Mounted::new(
        &img,
        "verity-detached",
        &[&format!("verity={root},verity_hash={}", hash.display())],
    );
    assert_same(
        "detached",
        &crate::expected_fixture(&["-comp", "gzip"]),
        &snapshot(&m.dir),
    );
}

/// Where the kernel has device-mapper: `veritysetup open` of our image and
/// the kernel's squashfs on top read what the source holds.
#[test]
fn kernel_dm_verity_reads_our_images() {
    if !is_root() || !have("veritysetup") {
        skip!("needs root and veritysetup");
    }
    if !Path::new("/dev/mapper/control").exists() {
        skip!(machine: "no device-mapper in this kernel (/dev/mapper/control missing)");
    }
    let (img, root) = verity_image("kernel");
    let info = run(sqfuse().args(["info", "--json"]).arg(&img));
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let h = v["verity"]["superblock_offset"].as_u64().unwrap();
    let loopdev = run(Command::new("losetup")
        .args(["-r", "-f", "--show"])
        .arg(&img));
    let dev = String::from_utf8_lossy(&loopdev.stdout).trim().to_string();
    let name = format!("sqfuse-test-{}", std::process::id());
    let open = Command::new("veritysetup")
        .args([
            "open",
            &dev,
            &name,
            &dev,
            &root,
            &format!("--hash-offset={h}"),
        ])
        .output()
        .unwrap();
    if !open.status.success() {
        let _ = Command::new("losetup").args(["-d", &dev]).status();
        skip!(
            machine: "veritysetup open: {}",
            String::from_utf8_lossy(&open.stderr).trim()
        );
    }
    let mnt = scratch("kmnt").join("verity");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "squashfs", "-o", "ro"])
        .arg(format!("/dev/mapper/{name}"))
        .arg(&mnt)
        .status()
        .unwrap()
        .success();
    if ok {
        assert_same(
            "kernel dm-verity",
            &crate::expected_fixture(&[]),
            &snapshot(&mnt),
        );
        unmount(&mnt);
    }
    let _ = Command::new("veritysetup").args(["close", &name]).status();
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    assert!(ok, "the kernel mounts the verity device");
}
