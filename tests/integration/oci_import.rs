//! OCI import: `pack oci:` flattened against `umoci unpack`, every layer
//! compression, tampered blobs refused, `--tar --whiteouts`, hard links.

use crate::common::oci::{have_umoci, layer_tars, umoci_layout, umoci_rootfs};
use crate::common::registry::{Registry, TokenServer};
use crate::need_registry;
use crate::stack::{stack, write_layer, Form};
use crate::tree::{assert_same, snapshot};
use crate::{is_root, run, scratch, skip, sqfuse};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The stack as layer tarballs, umoci's layout of them and its rootfs;
/// built once. None where umoci or root is missing.
struct Setup {
    root: PathBuf,
    tars: Vec<PathBuf>,
    layout: PathBuf,
    rootfs: PathBuf,
}

fn setup() -> Option<&'static Setup> {
    static S: OnceLock<Option<Setup>> = OnceLock::new();
    S.get_or_init(|| {
        if !is_root() || !have_umoci() {
            return None;
        }
        let root = scratch("oci");
        let tars = layer_tars(&root);
        let layout = umoci_layout(&root, &tars);
        let rootfs = umoci_rootfs(&root, &layout);
        Some(Setup {
            root,
            tars,
            layout,
            rootfs,
        })
    })
    .as_ref()
}

macro_rules! need_setup {
    () => {
        match setup() {
            Some(s) => s,
            None => skip!("needs root and umoci (apt-get install umoci)"),
        }
    };
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Writes a layout by hand: the same tarballs (top first) compressed with
/// `how` ("plain", "gzip" or "zstd"), one image tagged `t`.
pub(crate) fn hand_layout(dir: &Path, tars: &[PathBuf], how: &str, config: &[u8]) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let h = sha256_hex(bytes);
        std::fs::write(blobs.join(&h), bytes).unwrap();
        (format!("sha256:{h}"), bytes.len())
    };
    let mut layers = Vec::new();
    for tar in tars.iter().rev() {
        let raw = std::fs::read(tar).unwrap();
        let (bytes, media) = match how {
            "plain" => (raw, "application/vnd.oci.image.layer.v1.tar"),
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&raw).unwrap();
                (
                    e.finish().unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                )
            }
            "zstd" => (
                zstd::encode_all(&raw[..], 3).unwrap(),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            _ => unreachable!(),
        };
        let (digest, size) = put(&bytes);
        layers.push(serde_json::json!({"mediaType": media, "digest": digest, "size": size}));
    }
    let (cdigest, csize) = put(config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
        "layers": layers,
    });
    let (mdigest, msize) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": mdigest, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": "t"}
        }]
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir.to_path_buf()
}

/// Packs `source` (an OCI reference) to `image` and extracts it to `out`.
fn pack_and_extract(source: &str, image: &Path, out: &Path) {
    run(sqfuse()
        .args(["pack", "-q", "-f", "--mkfs-time", "0", "-j", "2", source])
        .arg(image));
    let _ = std::fs::remove_dir_all(out);
    run(sqfuse().arg("extract").arg(image).arg(out));
}

#[test]
fn oci_layout_flattened_equals_umoci_unpack() {
    let s = need_setup!();
    let image = s.root.join("flat.sqfs");
    let out = s.root.join("flat-out");
    pack_and_extract(&format!("oci:{}:t", s.layout.display()), &image, &out);
    assert_same(
        "pack oci: vs umoci unpack",
        &snapshot(&s.rootfs),
        &snapshot(&out),
    );
    // The config umoci wrote, beside the image, byte for byte.
    let config = std::fs::read(format!("{}.config.json", image.display())).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert!(
        v["rootfs"]["diff_ids"]
            .as_array()
            .is_some_and(|d| d.len() == 3),
        "{v}"
    );
}

#[test]
fn every_layer_compression_gives_the_same_image() {
    let s = need_setup!();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/true"],"Env":["A=1"],"Labels":{"l":"v"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let mut images = Vec::new();
    for how in ["plain", "gzip", "zstd"] {
        let layout = hand_layout(&s.root.join(format!("hand-{how}")), &s.tars, how, config);
        let image = s.root.join(format!("hand-{how}.sqfs"));
        let out = s.root.join(format!("hand-{how}-out"));
        pack_and_extract(&format!("oci:{}", layout.display()), &image, &out);
        assert_same(how, &snapshot(&s.rootfs), &snapshot(&out));
        assert_eq!(
            std::fs::read(format!("{}.config.json", image.display())).unwrap(),
            config,
            "{how}: config written as stored"
        );
        images.push(std::fs::read(&image).unwrap());
    }
    assert!(
        images[0] == images[1] && images[1] == images[2],
        "same tree, same bytes"
    );
}

/// Copies `layout` and applies `damage` to the copy.
fn damaged_copy(s: &Setup, name: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let copy = s.root.join(name);
    let _ = std::fs::remove_dir_all(&copy);
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(&s.layout)
        .arg(&copy));
    damage(&copy);
    copy
}

/// The layout's layer blobs, largest first (the gzip layers).
fn layer_blobs(layout: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    v
}

/// A pack from `layout` fails naming `what`, and leaves nothing behind.
fn refused(s: &Setup, layout: &Path, name: &str, what: &str) {
    let dir = s.root.join(format!("{name}-out"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("x.sqfs");
    let out = sqfuse()
        .args(["pack", "-q"])
        .arg(format!("oci:{}:t", layout.display()))
        .arg(&image)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name}: a damaged image was packed");
    assert!(
        err.contains(what),
        "{name}: error {err:?} does not say {what:?}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{name}: left behind {left:?}");
    // --layers leaves no layer images either.
    let ldir = dir.join("layers");
    let out = sqfuse()
        .args(["pack", "-q", "--layers"])
        .arg(&ldir)
        .arg(format!("oci:{}:t", layout.display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{name}: --layers packed a damaged image"
    );
    let left: Vec<_> = std::fs::read_dir(&ldir)
        .map(|r| r.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left.iter().any(|n: &std::ffi::OsString| n == "layers.txt"),
        "{name}: --layers finished: {left:?}"
    );
}

#[test]
fn tampered_oci_blobs_are_refused() {
    let s = need_setup!();
    // One byte changed in the middle of a compressed layer.
    let l = damaged_copy(s, "flip", |d| {
        let p = &layer_blobs(d)[0];
        let mut b = std::fs::read(p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(p, b).unwrap();
    });
    refused(s, &l, "flip", "does not match its digest");
    // Cut short: still valid gzip up to there, but short of its size.
    let l = damaged_copy(s, "short", |d| {
        let p = &layer_blobs(d)[0];
        let b = std::fs::read(p).unwrap();
        std::fs::write(p, &b[..b.len() - 9]).unwrap();
    });
    refused(s, &l, "short", "sha256:");
    // Bytes appended past the descriptor's size.
    let l = damaged_copy(s, "long", |d| {
        let p = &layer_blobs(d)[0];
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(b"trailing").unwrap();
    });
    refused(s, &l, "long", "longer than its descriptor");
    // The config changed (the manifest pins its digest).
    let l = damaged_copy(s, "config", |d| {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        let m = index["manifests"][0]["digest"].as_str().unwrap();
        let mp = d.join("blobs/sha256").join(&m["sha256:".len()..]);
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(mp).unwrap()).unwrap();
        let c = manifest["config"]["digest"].as_str().unwrap();
        let cp = d.join("blobs/sha256").join(&c["sha256:".len()..]);
        let mut b = std::fs::read(&cp).unwrap();
        b[2] = b'X';
        std::fs::write(&cp, b).unwrap();
    });
    refused(s, &l, "config", "does not match its digest");
    // A missing blob, and a tag that is not there.
    let l = damaged_copy(s, "missing", |d| {
        std::fs::remove_file(&layer_blobs(d)[1]).unwrap();
    });
    refused(s, &l, "missing", "open layer blob");
    let out = sqfuse()
        .args(["pack", "-q"])
        .arg(format!("oci:{}:nope", s.layout.display()))
        .arg(s.root.join("nope.sqfs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("tags: t"), "{err}");
}

#[test]
fn existing_image_or_config_is_not_overwritten_without_force() {
    let s = need_setup!();
    let dir = scratch("oci-noforce");
    let image = dir.join("x.sqfs");
    std::fs::write(dir.join("x.sqfs.config.json"), "mine").unwrap();
    let out = sqfuse()
        .args(["pack", "-q"])
        .arg(format!("oci:{}:t", s.layout.display()))
        .arg(&image)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("use -f"));
    assert!(!image.exists());
    assert_eq!(
        std::fs::read(dir.join("x.sqfs.config.json")).unwrap(),
        b"mine"
    );
}

/// `pack --tar --whiteouts overlay` of an OCI-form layer gives what the
/// overlay-form layer directory packed as it is gives; `oci` the reverse.
#[test]
fn tar_whiteouts_convert_between_conventions() {
    if !is_root() {
        skip!("needs root (whiteout devices, trusted xattrs)");
    }
    let root = scratch("tar-whiteouts");
    let ops = &stack()[0];
    let (oci_dir, ovl_dir) = (root.join("oci"), root.join("ovl"));
    write_layer(&oci_dir, ops, Form::Oci, 1_600_000_000);
    write_layer(&ovl_dir, ops, Form::OverlayDevices, 1_600_000_000);
    let tar = |dir: &Path, name: &str| {
        let t = root.join(name);
        run(std::process::Command::new("tar")
            .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
            .arg(dir)
            .arg("-cf")
            .arg(&t)
            .arg("."));
        t
    };
    let (oci_tar, ovl_tar) = (tar(&oci_dir, "oci.tar"), tar(&ovl_dir, "ovl.tar"));
    for (from, mode, want) in [
        (&oci_tar, "overlay", &ovl_dir),
        (&ovl_tar, "oci", &oci_dir),
        (&oci_tar, "keep", &oci_dir),
        (&ovl_tar, "keep", &ovl_dir),
    ] {
        let image = root.join(format!("{mode}.sqfs"));
        run(sqfuse()
            .args(["pack", "-q", "-f", "--tar", "--whiteouts", mode])
            .arg(from)
            .arg(&image));
        let out = root.join(format!("{mode}-out"));
        let _ = std::fs::remove_dir_all(&out);
        run(sqfuse().arg("extract").arg(&image).arg(&out));
        let mut want = snapshot(want);
        let mut got = snapshot(&out);
        // A converted whiteout is made, not copied: its mode and owner are
        // the convention's, only its existence and kind are compared.
        for snap in [&mut want, &mut got] {
            for e in snap
                .values_mut()
                .filter(|e| e.kind == 'c' || e.size == Some(0))
            {
                e.perm = None;
            }
        }
        assert_same(&format!("--whiteouts {mode}"), &want, &got);
    }
}

/// GNU tar stores a hard-linked file's xattrs on its first name only; the
/// other names are the same inode and must carry them too.
#[test]
fn tar_hard_link_keeps_xattrs_of_its_target() {
    let root = scratch("tar-hardlink-xattrs");
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "x").unwrap();
    std::fs::hard_link(src.join("a"), src.join("b")).unwrap();
    let st = std::process::Command::new("setfattr")
        .args(["-n", "user.k", "-v", "v"])
        .arg(src.join("a"))
        .status();
    if !st.is_ok_and(|s| s.success()) {
        skip!("setfattr (attr) missing or user xattrs unsupported here");
    }
    let tar = root.join("t.tar");
    run(std::process::Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-C"])
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let image = root.join("t.sqfs");
    run(sqfuse().args(["pack", "-q", "--tar"]).arg(&tar).arg(&image));
    let out = root.join("out");
    run(sqfuse().arg("extract").arg(&image).arg(&out));
    for name in ["a", "b"] {
        let x = crate::tree::xattrs(&out.join(name));
        assert_eq!(
            x.get(&b"user.k"[..]).map(|v| &v[..]),
            Some(&b"v"[..]),
            "{name}"
        );
    }
}

#[test]
fn docker_pull_equals_umoci_unpack_and_the_layout_import() {
    let s = need_setup!();
    let reg = need_registry!("anon", None);
    let src = reg.push(&s.layout, "stack", None);
    let dir = scratch("docker-pull");
    let pulled = dir.join("pulled.sqfs");
    let out = dir.join("pulled-out");
    let cmd = |image: &Path, source: &str| {
        run(sqfuse()
            .args(["pack", "-q", "-f", "--mkfs-time", "0", "--insecure", source])
            .arg(image));
    };
    cmd(&pulled, &src);
    let _ = std::fs::remove_dir_all(&out);
    run(sqfuse().arg("extract").arg(&pulled).arg(&out));
    assert_same(
        "docker:// vs umoci unpack",
        &snapshot(&s.rootfs),
        &snapshot(&out),
    );
    let from_layout = dir.join("layout.sqfs");
    cmd(&from_layout, &format!("oci:{}:t", s.layout.display()));
    assert!(
        std::fs::read(&pulled).unwrap() == std::fs::read(&from_layout).unwrap(),
        "docker:// and oci: of one image differ"
    );
    // By digest too; the pull's temporary layout is gone afterwards.
    let manifest = String::from_utf8(
        run(std::process::Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &src,
        ]))
        .stdout,
    )
    .unwrap();
    let by_digest = src.replace(":t", &format!("@{}", manifest.trim()));
    cmd(&dir.join("digest.sqfs"), &by_digest);
    assert_eq!(
        std::fs::read(dir.join("digest.sqfs")).unwrap(),
        std::fs::read(&pulled).unwrap()
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("sqfuse-"))
        .collect();
    assert!(left.is_empty(), "temporaries left: {left:?}");
    // --layers from the registry: the same layer images as from the layout.
    let (a, b) = (dir.join("layers-docker"), dir.join("layers-oci"));
    run(sqfuse()
        .args(["pack", "-q", "--mkfs-time", "0", "--insecure", "--layers"])
        .arg(&a)
        .arg(&src));
    run(sqfuse()
        .args(["pack", "-q", "--mkfs-time", "0", "--layers"])
        .arg(&b)
        .arg(format!("oci:{}:t", s.layout.display())));
    let list = std::fs::read_to_string(a.join("layers.txt")).unwrap();
    assert_eq!(list, std::fs::read_to_string(b.join("layers.txt")).unwrap());
    for l in list.lines() {
        assert!(
            std::fs::read(a.join(l)).unwrap() == std::fs::read(b.join(l)).unwrap(),
            "{l}"
        );
    }
}

#[test]
fn docker_pull_with_basic_auth_and_a_tampered_blob() {
    let s = need_setup!();
    if !crate::have("htpasswd") {
        skip!("needs htpasswd (apt-get install apache2-utils)");
    }
    let dir = scratch("docker-auth");
    let htpasswd = dir.join("htpasswd");
    run(std::process::Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args(["alice", "s3cret-pw"]));
    let reg = need_registry!("auth", Some(&htpasswd));
    let src = reg.push(&s.layout, "stack", Some("alice:s3cret-pw"));
    let pack = |creds: Option<&str>, image: &str| {
        let mut cmd = sqfuse();
        cmd.args(["pack", "-q", "--insecure"]);
        if let Some(c) = creds {
            cmd.args(["--creds", c]);
        }
        cmd.arg(&src).arg(dir.join(image)).output().unwrap()
    };
    let anon = pack(None, "anon.sqfs");
    let err = String::from_utf8_lossy(&anon.stderr);
    assert!(!anon.status.success(), "pulled without credentials");
    assert!(
        err.contains(&src) && err.trim().lines().count() == 1,
        "{err}"
    );
    let wrong = pack(Some("alice:wrong-pw"), "wrong.sqfs");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && !err.contains("wrong-pw"),
        "{err}"
    );
    let ok = pack(Some("alice:s3cret-pw"), "ok.sqfs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = dir.join("ok-out");
    run(sqfuse().arg("extract").arg(dir.join("ok.sqfs")).arg(&out));
    assert_same(
        "docker:// with basic auth",
        &snapshot(&s.rootfs),
        &snapshot(&out),
    );
    // A layer changed in the registry's storage: refused, nothing written.
    let blob = layer_blobs(&s.layout)[0].clone();
    let hex = blob.file_name().unwrap().to_str().unwrap().to_string();
    let stored = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(&hex)
        .join("data");
    let mut b = std::fs::read(&stored).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&stored, b).unwrap();
    let bad = pack(Some("alice:s3cret-pw"), "bad.sqfs");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a tampered layer was packed");
    assert!(err.contains(&hex), "names the blob: {err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad") || n.contains("sqfuse-"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A registry that wants Bearer tokens: pulled anonymously (an anonymous
/// token, as from Docker Hub) and with credentials exchanged for a token;
/// wrong credentials are refused without the password in the message.
#[test]
fn docker_pull_with_token_auth() {
    let s = need_setup!();
    let Some(ts) = TokenServer::start("pull", "bob:t0ken-pw") else {
        skip!("needs python3 with cryptography (apt-get install python3-cryptography)");
    };
    let Some(reg) = Registry::start_token("token", &ts) else {
        skip!("needs docker-registry and skopeo (apt-get install docker-registry skopeo)");
    };
    let src = reg.push(&s.layout, "stack", Some("bob:t0ken-pw"));
    let dir = scratch("docker-token");
    for (creds, image) in [(None, "anon.sqfs"), (Some("bob:t0ken-pw"), "bob.sqfs")] {
        let before = ts.log();
        let mut cmd = sqfuse();
        cmd.args(["pack", "-q", "--insecure", "--mkfs-time", "0"]);
        if let Some(c) = creds {
            cmd.args(["--creds", c]);
        }
        run(cmd.arg(&src).arg(dir.join(image)));
        let who = if creds.is_some() {
            "granted bob"
        } else {
            "granted anonymous"
        };
        let new = &ts.log()[before.len()..];
        assert!(new.contains(who), "{image}: no token asked for: {new:?}");
        let out = dir.join(format!("{image}-out"));
        run(sqfuse().arg("extract").arg(dir.join(image)).arg(&out));
        assert_same(image, &snapshot(&s.rootfs), &snapshot(&out));
    }
    let bad = sqfuse()
        .args(["pack", "-q", "--insecure", "--creds", "bob:nope-pw"])
        .arg(&src)
        .arg(dir.join("bad.sqfs"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "wrong credentials pulled");
    assert!(
        !err.contains("nope-pw") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!dir.join("bad.sqfs").exists());
}
