//! `sqfuse push` against a real registry: what skopeo reads back is what
//! was pushed, byte for byte, with the layer order, media type and verity
//! annotations; blobs the registry has are not sent again; token auth.

use crate::common::registry::{FaultProxy, Registry, TokenServer};
use crate::{need_registry, run, scratch, skip, sqfuse};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn sha256_file(p: &Path) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
    )
}

/// Packs `files` (name, bytes) into DIR/NAME.sqfs with a verity tree;
/// returns the image and its root hash.
fn verity_image(dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> (PathBuf, String) {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    for (f, bytes) in files {
        std::fs::write(src.join(f), bytes).unwrap();
    }
    let img = dir.join(format!("{name}.sqfs"));
    let root_file = dir.join(format!("{name}.roothash"));
    run(sqfuse()
        .args(["pack", "-q", "--verity", "--verity-roothash"])
        .arg(&root_file)
        .arg(&src)
        .arg(&img));
    let root = std::fs::read_to_string(&root_file)
        .unwrap()
        .trim()
        .to_string();
    (img, root)
}

/// The manifest as the registry serves it: its bytes and its JSON.
fn skopeo_raw_manifest(reference: &str, creds: Option<&str>) -> (Vec<u8>, serde_json::Value) {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    let out = run(cmd.arg(reference));
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (out.stdout, v)
}

#[test]
fn push_publishes_squashfs_layers_that_skopeo_reads_back() {
    let reg = need_registry!("push", None);
    let dir = scratch("push");
    // The bottom image is over one upload chunk (8 MiB): several PATCHes.
    let (bottom, bottom_root) = verity_image(
        &dir,
        "bottom",
        &[
            ("big", crate::noise(11, 12 << 20)),
            ("a", b"below".to_vec()),
        ],
    );
    let (top, top_root) = verity_image(&dir, "top", &[("a", b"above".to_vec())]);
    let reference = format!("docker://127.0.0.1:{}/sq/app:v1", reg.port);
    let push = || {
        sqfuse()
            .args(["push", "--insecure", "--verity"])
            .arg(&top)
            .arg(&bottom)
            .arg(&reference)
            .output()
            .unwrap()
    };
    let out = push();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "sqfuse: pushed 2 layers (3 blobs sent, 0 already there)\n"
    );
    // Standard output names the push by the digest of what is served.
    let (raw, m) = skopeo_raw_manifest(&reference, None);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "docker://127.0.0.1:{}/sq/app@sha256:{}\n",
            reg.port,
            hex::encode(Sha256::digest(&raw))
        )
    );
    // Bottom first in the manifest; each layer the image file itself.
    let layers = m["layers"].as_array().unwrap();
    let want = [(&bottom, &bottom_root), (&top, &top_root)];
    assert_eq!(layers.len(), 2);
    for (l, (img, root)) in layers.iter().zip(want) {
        assert_eq!(l["digest"], sha256_file(img));
        assert_eq!(l["size"], std::fs::metadata(img).unwrap().len());
        assert_eq!(
            l["mediaType"],
            "application/vnd.sylabs.image.layer.v1.squashfs"
        );
        assert_eq!(l["annotations"]["org.sqfuse.verity.roothash"], **root);
    }
    // skopeo copies it whole; its blobs are our files.
    let layout = dir.join("layout");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(&reference)
        .arg(format!("oci:{}:v1", layout.display())));
    for img in [&bottom, &top] {
        let blob = layout
            .join("blobs/sha256")
            .join(&sha256_file(img)["sha256:".len()..]);
        assert_eq!(std::fs::read(blob).unwrap(), std::fs::read(img).unwrap());
    }
    // Again: nothing is sent but the manifest.
    let again = push();
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "sqfuse: pushed 2 layers (0 blobs sent, 3 already there)\n"
    );
}

#[test]
fn push_refuses_what_it_cannot_publish() {
    let reg = need_registry!("push-refused", None);
    let dir = scratch("push-refused");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"xy").unwrap();
    let plain = dir.join("plain.sqfs");
    run(sqfuse().arg("pack").arg("-q").arg(&src).arg(&plain));
    let base = format!("docker://127.0.0.1:{}/sq/refused", reg.port);
    let cases = [
        (
            vec!["--verity".to_string(), plain.display().to_string(), format!("{base}:v1")],
            format!(
                "sqfuse: {}: has no dm-verity tree (pack --verity or sqfuse verity appends one)\n",
                plain.display()
            ),
        ),
        (
            vec![
                src.join("f").display().to_string(),
                format!("{base}:v1"),
            ],
            format!(
                "sqfuse: {}: corrupt image at offset 0 (0x0): image is 2 bytes, smaller than a superblock\n",
                src.join("f").display()
            ),
        ),
        (
            vec![
                plain.display().to_string(),
                format!("{base}@sha256:{}", "a".repeat(64)),
            ],
            format!(
                "sqfuse: {base}@sha256:{}: names a digest; a push needs a tag (docker://HOST/REPO:TAG)\n",
                "a".repeat(64)
            ),
        ),
    ];
    for (args, want) in cases {
        let out = sqfuse()
            .args(["push", "--insecure"])
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{args:?}");
    }
}

/// A registry behind Bearer tokens: push asks for pull and push with the
/// credentials; anonymous push is refused by the registry.
#[test]
fn push_with_token_auth() {
    let Some(ts) = TokenServer::start("push", "bob:t0ken-pw") else {
        skip!("needs python3 with cryptography (apt-get install python3-cryptography)");
    };
    let Some(reg) = Registry::start_token("push-token", &ts) else {
        skip!("needs docker-registry and skopeo (apt-get install docker-registry skopeo)");
    };
    let dir = scratch("push-token");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"token").unwrap();
    let img = dir.join("img.sqfs");
    run(sqfuse().arg("pack").arg("-q").arg(&src).arg(&img));
    let reference = format!("docker://127.0.0.1:{}/sq/tok:v1", reg.port);
    let anon = sqfuse()
        .args(["push", "--insecure"])
        .arg(&img)
        .arg(&reference)
        .output()
        .unwrap();
    assert!(!anon.status.success(), "anonymous push accepted");
    let before = ts.log();
    run(sqfuse()
        .args(["push", "--insecure", "--creds", "bob:t0ken-pw"])
        .arg(&img)
        .arg(&reference));
    let granted = &ts.log()[before.len()..];
    assert!(
        granted.contains("granted bob") && granted.contains("push"),
        "{granted}"
    );
    let (_, m) = skopeo_raw_manifest(&reference, Some("bob:t0ken-pw"));
    assert_eq!(m["layers"][0]["digest"], sha256_file(&img));
}

/// `ls`, `cat` and `info` read a pushed image from the registry: the
/// layers merged as a mount shows them, each verified against its
/// recorded root hash; an unverified push gets a note; `check` says what
/// reads registry images.
#[test]
fn ls_cat_and_info_read_an_image_in_the_registry() {
    let reg = need_registry!("inspect", None);
    let dir = scratch("push-inspect");
    let big = crate::noise(12, 3 << 20);
    let (bottom, bottom_root) = verity_image(
        &dir,
        "bottom",
        &[
            ("big", big.clone()),
            ("a", b"below".to_vec()),
            ("b", b"b".to_vec()),
        ],
    );
    let (top, top_root) = verity_image(&dir, "top", &[("a", b"above".to_vec())]);
    let reference = format!("docker://127.0.0.1:{}/sq/inspect:v1", reg.port);
    run(sqfuse()
        .args(["push", "--insecure", "--verity"])
        .arg(&top)
        .arg(&bottom)
        .arg(&reference));
    let cmd = |args: &[&str]| {
        let out = sqfuse()
            .arg(args[0])
            .args(["--insecure", "--cache-dir", "none", &reference])
            .args(&args[1..])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), out.stdout, stderr)
    };
    let (ok, listing, err) = cmd(&["ls", "/"]);
    assert!(ok && err.is_empty(), "{err}");
    assert_eq!(String::from_utf8_lossy(&listing), "a\nb\nbig\n");
    let (ok, bytes, err) = cmd(&["cat", "a", "big"]);
    assert!(ok, "{err}");
    assert_eq!(bytes, [b"above".as_slice(), &big].concat());
    let (ok, json, err) = cmd(&["info", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (l, (file, root)) in layers
        .iter()
        .zip([(&top, &top_root), (&bottom, &bottom_root)])
    {
        assert_eq!(
            l["name"],
            format!(
                "docker://127.0.0.1:{}/sq/inspect@{}",
                reg.port,
                sha256_file(file)
            )
        );
        assert_eq!(l["size"], std::fs::metadata(file).unwrap().len());
        assert_eq!(l["verity_root"].as_str(), Some(root.as_str()));
        assert_eq!(
            l["image"]["verity"]["root_hash"].as_str(),
            Some(root.as_str())
        );
    }
    let (ok, _, err) = cmd(&["check"]);
    assert!(!ok);
    assert_eq!(
        err,
        format!("sqfuse: {reference}: this command reads image files; ls, cat and info read registry images too (or mount it)\n")
    );
    // Pushed without --verity: read, with a note naming the layers.
    run(sqfuse()
        .args(["push", "--insecure"])
        .arg(&top)
        .arg(&reference));
    let (ok, bytes, err) = cmd(&["cat", "a"]);
    assert!(ok);
    assert_eq!(bytes, b"above");
    assert_eq!(
        err,
        format!(
            "sqfuse: note: {reference}: not verified: no dm-verity root hash recorded for docker://127.0.0.1:{}/sq/inspect@{}\n",
            reg.port,
            sha256_file(&top)
        )
    );
}

/// A SquashFS image of `mib` MiB of noise (a push of many PATCHes).
fn noise_image(dir: &Path, mib: usize) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("noise"), crate::noise(17, mib << 20)).unwrap();
    let img = dir.join("noise.sqfs");
    run(sqfuse().args(["pack", "-q"]).arg(&src).arg(&img));
    img
}

/// The blob in the registry's storage is the image, byte for byte.
fn assert_blob_is(reg: &Registry, img: &Path) {
    let digest = sha256_file(img);
    let hex = &digest["sha256:".len()..];
    let blob = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    assert!(std::fs::read(&blob).unwrap() == std::fs::read(img).unwrap());
}

/// `sqfuse push --insecure IMG REFERENCE`, its upload state in `state`:
/// whether it succeeded, and what it said.
fn push_with_state(img: &Path, reference: &str, state: &Path) -> (bool, String) {
    let out = sqfuse()
        .args(["push", "--insecure"])
        .arg(img)
        .arg(reference)
        .env("SQFUSE_CACHE_DIR", state)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// PATCHes the proxy passed to the registry, and those it dropped.
fn patches(proxy: &FaultProxy) -> (usize, usize) {
    let log = proxy.log();
    let p = |dropped: bool| {
        log.iter()
            .filter(|l| l.starts_with("PATCH ") && l.ends_with(" dropped") == dropped)
            .count()
    };
    (p(false), p(true))
}

/// The connection dropped in the middle of an upload (the third of five
/// pieces never reaches the registry): the push asks where the upload
/// stands and sends the rest, no piece twice.
#[test]
fn push_resumes_an_upload_after_a_dropped_piece() {
    let reg = need_registry!("push-dropped", None);
    let dir = scratch("push-dropped");
    let img = noise_image(&dir, 36);
    let proxy = FaultProxy::start("dropped", reg.port, 3, "once");
    let reference = format!("docker://127.0.0.1:{}/sq/dropped:v1", proxy.port);
    let (ok, err) = push_with_state(&img, &reference, &dir.join("state"));
    assert!(ok, "{err}");
    // The layer's pieces, and the config's one.
    let pieces = std::fs::metadata(&img).unwrap().len().div_ceil(8 << 20) as usize + 1;
    assert_eq!(patches(&proxy), (pieces, 1), "{:#?}", proxy.log());
    let log = proxy.log();
    let dropped = log.iter().position(|l| l.ends_with(" dropped")).unwrap();
    assert!(
        log[dropped..]
            .iter()
            .any(|l| l.starts_with("GET /v2/sq/dropped/blobs/uploads/") && l.ends_with(" 204")),
        "the push never asked where the upload stood: {log:#?}"
    );
    assert_blob_is(&reg, &img);
}

/// The registry unreachable from the third piece on: the push gives up
/// (one line), keeping the upload's URL; the next push resumes it, sends
/// only the pieces the registry lacks, and forgets it.
#[test]
fn push_cut_off_midway_resumes_in_the_next_push() {
    let reg = need_registry!("push-resume", None);
    let dir = scratch("push-resume");
    let img = noise_image(&dir, 36);
    let state = dir.join("state");
    let proxy = FaultProxy::start("resume", reg.port, 3, "down");
    let reference = format!("docker://127.0.0.1:{}/sq/resume:v1", proxy.port);
    let (ok, err) = push_with_state(&img, &reference, &state);
    assert!(!ok);
    assert!(
        err.starts_with(&format!("sqfuse: {reference}: blob sha256:"))
            && err.contains(": sending bytes 16777216-25165823: ")
            && err.lines().count() == 1,
        "{err}"
    );
    let kept = || {
        std::fs::read_dir(state.join("index"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "doc"))
            .count()
    };
    assert_eq!(kept(), 1, "no upload kept in {}", state.display());
    proxy.bring_up();
    let before = patches(&proxy).0;
    let (ok, err) = push_with_state(&img, &reference, &state);
    assert!(ok, "{err}");
    assert_eq!(
        err,
        "sqfuse: pushed 1 layer (2 blobs sent, 0 already there, 16.00 MiB resumed)\n"
    );
    // The layer's pieces but the two stored, and the config's one.
    let pieces = std::fs::metadata(&img).unwrap().len().div_ceil(8 << 20) as usize;
    assert_eq!(
        patches(&proxy).0 - before,
        pieces - 2 + 1,
        "{:#?}",
        proxy.log()
    );
    assert_blob_is(&reg, &img);
    assert_eq!(kept(), 0, "the finished upload is still kept");
}

/// The registry stopped and started again while a piece is on its way
/// (which leaves the distribution registry's upload unusable): the push
/// waits, asks where the upload stands, and completes, starting the blob
/// over where it must.
#[test]
fn push_completes_when_the_registry_restarts_mid_upload() {
    let mut reg = need_registry!("push-restart", None);
    let dir = scratch("push-restart");
    let img = noise_image(&dir, 64);
    let reference = format!("docker://127.0.0.1:{}/sq/restart:v1", reg.port);
    let mut child = sqfuse()
        .args(["push", "--insecure"])
        .arg(&img)
        .arg(&reference)
        .env("SQFUSE_CACHE_DIR", dir.join("state"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while reg.upload_bytes("sq/restart") < 16 << 20 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push ended too soon"
        );
        assert!(
            t.elapsed().as_secs() < 60,
            "the upload never reached 16 MiB"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    reg.stop();
    std::thread::sleep(std::time::Duration::from_millis(300));
    reg.restart();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_blob_is(&reg, &img);
    let log = std::fs::read_to_string(reg.dir.join("access.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("\"GET /v2/sq/restart/blobs/uploads/")),
        "the push never asked where the upload stood"
    );
}
