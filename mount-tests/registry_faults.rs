//! Registry mounts against the kernel and through what real registries do:
//! the merged tree equals the kernel's overlayfs over loop mounts of the
//! same layer files, and a SIF's partition the kernel's loop mount of it;
//! blobs served through redirects to blob storage; tokens that expire; the
//! registry restarted mid-read; and what reading one small file costs in
//! transfer, from the registry's own access log.

use crate::common::http::Nginx;
use crate::common::registry::{Registry, TokenServer};
use crate::layers::{check_semantics, KernelOverlay};
use crate::stack::{build_images, Form};
use crate::tree::{assert_same, snapshot};
use crate::{have, is_mounted, is_root, need_fuse, need_registry, run, scratch, skip, sqfuse};
use crate::{unmount, Mounted};
use std::path::{Path, PathBuf};

fn sha256_file(p: &Path) -> String {
    format!(
        "sha256:{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(p).unwrap())
    )
}

/// `sqfuse push --insecure [--verity] IMAGES REFERENCE`.
fn push(images: &[&Path], reference: &str, verity: bool) {
    let mut cmd = sqfuse();
    cmd.args(["push", "--insecure"]);
    if verity {
        cmd.arg("--verity");
    }
    run(cmd.args(images).arg(reference));
}

/// The layer stack of the layered-mount tests (every overlayfs whiteout
/// form's device variant, opaque directories, hard links, xattrs), packed
/// by mksquashfs, a verity tree appended, pushed and mounted from the
/// registry: the same tree as the kernel's overlayfs over loop mounts of
/// the same files.
#[test]
fn registry_mount_equals_kernel_overlayfs_over_the_layer_files() {
    need_fuse!();
    if !is_root() {
        skip!("writing whiteout devices and loop mounts need root");
    }
    if !have("mksquashfs") {
        skip!("mksquashfs missing (apt-get install squashfs-tools)");
    }
    let reg = need_registry!("faults-overlay", None);
    let root = scratch("registry-overlay");
    let images = build_images(&root, Form::OverlayDevices);
    for img in &images {
        run(sqfuse().arg("verity").arg(img));
    }
    let reference = format!("docker://127.0.0.1:{}/sq/stack:v1", reg.port);
    let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    push(&refs, &reference, true);
    let m = Mounted::new(
        Path::new(&reference),
        "registry-overlay",
        &["insecure", "require_verity", "cache_dir=none"],
    );
    let ours = snapshot(&m.dir);
    check_semantics(&m.dir, &ours);
    if let Some(k) = KernelOverlay::new(&images, "registry-overlay", "") {
        assert_same(
            "kernel overlayfs vs registry mount",
            &snapshot(&k.dir),
            &ours,
        );
    }
}

/// A kernel loop mount (read-only, at `offset`), unmounted on drop.
struct KernelLoop(PathBuf);

impl KernelLoop {
    fn new(image: &Path, offset: u64, name: &str) -> Option<KernelLoop> {
        let dir = scratch("kloop").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "squashfs", "-o"])
            .arg(format!("loop,ro,offset={offset}"))
            .arg(image)
            .arg(&dir)
            .output()
            .unwrap();
        if !out.status.success() {
            crate::skipped(
                &format!(
                    "kernel loop mount failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                true,
            );
            return None;
        }
        Some(KernelLoop(dir))
    }
}

impl Drop for KernelLoop {
    fn drop(&mut self) {
        unmount(&self.0);
    }
}

/// An artifact as `apptainer push oras://` writes it: the SquashFS
/// partition of the SIF, mounted from the registry, is the tree the
/// kernel shows of it loop-mounted at the partition's offset.
#[test]
fn oras_artifact_equals_the_kernels_loop_mount_of_the_sif_partition() {
    need_fuse!();
    if !is_root() {
        skip!("loop mounts need root");
    }
    let reg = need_registry!("faults-oras", None);
    let sif = crate::corpora().join("images/sylabs-sif/one-group.sif");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/push_artifact.py");
    run(std::process::Command::new("python3")
        .arg(script)
        .arg(reg.port.to_string())
        .args(["sq/sif:v1", "oras"])
        .arg(&sif));
    let oras = format!("oras://127.0.0.1:{}/sq/sif:v1", reg.port);
    let m = Mounted::new(
        Path::new(&oras),
        "registry-oras-kernel",
        &["insecure", "cache_dir=none"],
    );
    // Where offset=auto finds the partition, as `info` reports it.
    let info = run(sqfuse()
        .args(["info", "--json", "--offset", "auto"])
        .arg(&sif));
    let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let offset = v["offset"].as_u64().unwrap();
    assert!(offset > 0);
    if let Some(k) = KernelLoop::new(&sif, offset, "oras-sif") {
        let ours = snapshot(&m.dir);
        assert!(!ours.is_empty());
        assert_same("kernel loop mount vs oras mount", &snapshot(&k.0), &ours);
    }
}

/// Two small layers (`a` on top; `big`, 3 MiB, below), with verity trees:
/// the images and `big`'s bytes.
fn two_layers(name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let dir = scratch(name);
    let (top, bottom) = (dir.join("top"), dir.join("bottom"));
    std::fs::create_dir_all(&top).unwrap();
    std::fs::create_dir_all(&bottom).unwrap();
    let big = crate::noise(31, 3 << 20);
    std::fs::write(top.join("a"), b"top").unwrap();
    std::fs::write(bottom.join("big"), &big).unwrap();
    let pack = |src: &Path, img: &Path| {
        run(sqfuse().args(["pack", "-q", "--verity"]).arg(src).arg(img));
    };
    let (ti, bi) = (dir.join("top.sqfs"), dir.join("bottom.sqfs"));
    pack(&top, &ti);
    pack(&bottom, &bi);
    (ti, bi, big)
}

/// A registry whose blob GETs answer 307 to a second server (nginx over
/// the registry's storage, as S3 or a CDN serves a registry's blobs): the
/// mount follows the redirects and reads by range from there.
#[test]
fn registry_mount_follows_redirects_to_blob_storage() {
    need_fuse!();
    // The registry's storage exists before either server starts: nginx
    // serves it, and the registry's redirects name nginx.
    let storage = scratch("registry-faults-redirect").join("data");
    std::fs::create_dir_all(&storage).unwrap();
    let Some(store) = Nginx::start(&storage, "blob-store", false) else {
        return;
    };
    let Some(reg) = Registry::start_redirecting("faults-redirect", &store.url("")) else {
        skip!("needs docker-registry and skopeo (apt-get install docker-registry skopeo)");
    };
    assert_eq!(reg.storage, storage);
    let (top, bottom, big) = two_layers("registry-redirect-layers");
    let reference = format!("docker://127.0.0.1:{}/sq/redirected:v1", reg.port);
    push(&[&top, &bottom], &reference, true);
    store.clear_log();
    let m = Mounted::new(
        Path::new(&reference),
        "registry-redirect",
        &["insecure", "require_verity", "cache_dir=none"],
    );
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"top");
    assert!(std::fs::read(m.dir.join("big")).unwrap() == big);
    // Every blob byte came from the store, by range; the registry only
    // redirected.
    let (served, requests) = reg.blob_bytes_served(&sha256_file(&bottom));
    assert!(requests > 0);
    let store_log = store.log();
    assert!(!store_log.is_empty());
    assert!(
        store_log
            .iter()
            .all(|(status, _, range, method)| *status == 206
                && range.starts_with("bytes=")
                && method == "GET"),
        "{store_log:?}"
    );
    let log = std::fs::read_to_string(reg.dir.join("access.log")).unwrap();
    let blob_gets: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("/blobs/sha256:") && l.contains("\"GET "))
        .collect();
    assert!(
        blob_gets.iter().all(|l| l.contains("\" 307 ")),
        "registry served blob bytes itself ({served} bytes): {blob_gets:?}"
    );
}

/// Tokens that the registry takes for about five seconds: a read after
/// they expired asks for a new one and succeeds.
#[test]
fn registry_mount_asks_for_a_new_token_when_one_expires() {
    need_fuse!();
    let Some(ts) = TokenServer::start_with_ttl("expiring", "carol:pw", -55) else {
        skip!("needs python3-cryptography (apt-get install python3-cryptography)");
    };
    let Some(reg) = Registry::start_token("faults-expiry", &ts) else {
        skip!("needs docker-registry and skopeo (apt-get install docker-registry skopeo)");
    };
    let (top, bottom, big) = two_layers("registry-expiry-layers");
    let reference = format!("docker://127.0.0.1:{}/sq/expiring:v1", reg.port);
    run(sqfuse()
        .args(["push", "--insecure", "--verity", "--creds", "carol:pw"])
        .arg(&top)
        .arg(&bottom)
        .arg(&reference));
    // Anonymous pull tokens from here on.
    let m = Mounted::new(
        Path::new(&reference),
        "registry-expiry",
        &["insecure", "require_verity", "cache_dir=none"],
    );
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"top");
    let grants = |log: &str| {
        log.lines()
            .filter(|l| l.starts_with("granted anonymous"))
            .count()
    };
    let before = grants(&ts.log());
    std::thread::sleep(std::time::Duration::from_secs(7));
    // `big`'s middle was not read yet: fetched with an expired token, a
    // 401, a new token.
    assert!(std::fs::read(m.dir.join("big")).unwrap() == big);
    let after = grants(&ts.log());
    assert!(
        after > before,
        "no token asked for after expiry ({before} then {after})"
    );
    let log = std::fs::read_to_string(reg.dir.join("access.log")).unwrap();
    assert!(
        log.contains("\" 401 "),
        "the registry never refused a token"
    );
}

/// The registry stopped while mounted: reads of what is not cached fail
/// with EIO, the mount stays up; started again, the same reads succeed.
#[test]
fn registry_restarted_mid_read_is_eio_then_recovers() {
    need_fuse!();
    let mut reg = need_registry!("faults-restart", None);
    let (top, bottom, big) = two_layers("registry-restart-layers");
    let reference = format!("docker://127.0.0.1:{}/sq/restart:v1", reg.port);
    push(&[&top, &bottom], &reference, true);
    let m = Mounted::new(
        Path::new(&reference),
        "registry-restart",
        &["insecure", "require_verity", "cache_dir=none"],
    );
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"top");
    reg.stop();
    let err = std::fs::read(m.dir.join("big")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(is_mounted(&m.dir));
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"top");
    reg.restart();
    assert!(std::fs::read(m.dir.join("big")).unwrap() == big);
}

/// Reading one small file of a large image fetches the metadata and that
/// file's block, no more: the bytes the registry's access log shows for
/// the blob are at most the 1 MiB fetch chunks covering the superblock,
/// the tables, and the file's fragment block, worked out from the image.
#[test]
fn one_small_file_costs_the_metadata_and_its_blocks() {
    need_fuse!();
    let reg = need_registry!("faults-cost", None);
    let dir = scratch("registry-cost");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    for k in 0..400u64 {
        std::fs::write(src.join(format!("many/f{k:03}")), crate::noise(k, 100_000)).unwrap();
    }
    std::fs::write(src.join("small"), b"just this\n").unwrap();
    let img = dir.join("big.sqfs");
    run(sqfuse().args(["pack", "-q"]).arg(&src).arg(&img));
    let size = std::fs::metadata(&img).unwrap().len();
    assert!(size > 30 << 20);
    let reference = format!("docker://127.0.0.1:{}/sq/cost:v1", reg.port);
    push(&[&img], &reference, false);

    // What the read needs, from the image itself.
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("small").unwrap();
    let sqfuse::format::inode::InodeData::File(info) = &inode.data else {
        panic!("small is not a file");
    };
    const CHUNK: u64 = 1 << 20;
    let mut needed = std::collections::BTreeSet::new();
    let mut cover = |start: u64, end: u64| {
        for c in start / CHUNK..=(end.max(start + 1) - 1) / CHUNK {
            needed.insert(c);
        }
    };
    cover(0, 96);
    cover(image.sb.inode_table_start, image.sb.bytes_used);
    let (frag, _) = info.fragment.expect("a small file's tail is in a fragment");
    let entry = image.fragment_entry(frag).unwrap();
    cover(entry.start, entry.start + u64::from(entry.size.disk_size()));
    let bound: u64 = needed.iter().map(|c| CHUNK.min(size - c * CHUNK)).sum();

    let m = Mounted::new(
        Path::new(&reference),
        "registry-cost",
        &["insecure", "cache_dir=none"],
    );
    assert_eq!(std::fs::read(m.dir.join("small")).unwrap(), b"just this\n");
    let (served, requests) = reg.blob_bytes_served(&sha256_file(&img));
    eprintln!(
        "one small file: {served} bytes in {requests} requests of a {size}-byte image (bound {bound})"
    );
    assert!(
        served <= bound,
        "fetched {served} bytes, more than the {bound} the metadata and the file's block need"
    );
    assert!(served * 5 < size, "fetched {served} of {size} bytes");
}
