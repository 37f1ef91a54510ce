//! Images mounted straight from a registry (Debian's docker-registry on
//! 127.0.0.1): layers pushed by `sqfuse push` read lazily by byte range,
//! merged as a layered mount merges them, verified block by block against
//! the root hashes their descriptors record.

use crate::common::registry::Registry;
use crate::tree::{assert_same, snapshot};
use crate::{need_fuse, need_registry, run, scratch, sqfuse, unmount, Mounted};
use std::path::{Path, PathBuf};

/// Two layers (top replaces `a`, bottom holds `big` and `d/b`), packed with
/// verity trees; the merged tree they show, as a directory.
struct Stack {
    top: PathBuf,
    bottom: PathBuf,
    merged: PathBuf,
}

fn stack(name: &str) -> Stack {
    let dir = scratch(name);
    let (top_src, bottom_src, merged) = (dir.join("top"), dir.join("bottom"), dir.join("merged"));
    for d in [&top_src, &bottom_src.join("d"), &merged.join("d")] {
        std::fs::create_dir_all(d).unwrap();
    }
    let big = crate::noise(21, 3 << 20);
    std::fs::write(top_src.join("a"), b"top").unwrap();
    std::fs::write(bottom_src.join("a"), b"bottom").unwrap();
    std::fs::write(bottom_src.join("d/b"), b"b").unwrap();
    std::fs::write(bottom_src.join("big"), &big).unwrap();
    std::fs::write(merged.join("a"), b"top").unwrap();
    std::fs::write(merged.join("d/b"), b"b").unwrap();
    std::fs::write(merged.join("big"), &big).unwrap();
    let pack = |src: &Path, img: &Path| {
        run(sqfuse()
            .args(["pack", "-q", "--verity", "--all-root"])
            .arg(src)
            .arg(img));
    };
    let (top, bottom) = (dir.join("top.sqfs"), dir.join("bottom.sqfs"));
    pack(&top_src, &top);
    pack(&bottom_src, &bottom);
    Stack {
        top,
        bottom,
        merged,
    }
}

fn push(reg: &Registry, s: &Stack, repo: &str, verity: bool) -> String {
    let reference = format!("docker://127.0.0.1:{}/{repo}:v1", reg.port);
    let mut cmd = sqfuse();
    cmd.args(["push", "--insecure"]);
    if verity {
        cmd.arg("--verity");
    }
    run(cmd.arg(&s.top).arg(&s.bottom).arg(&reference));
    reference
}

/// Names, types, modes and contents of a tree, owners left out (the
/// images were packed with --all-root; the merged directory is ours).
fn shape(root: &Path) -> std::collections::BTreeMap<PathBuf, crate::tree::Entry> {
    snapshot(root)
        .into_iter()
        .map(|(p, mut e)| {
            e.uid = 0;
            e.gid = 0;
            e.mtime = 0;
            (p, e)
        })
        .collect()
}

/// `sqfuse REFERENCE DIR -o OPTS`, which must fail (exit 2, nothing
/// mounted): what it said.
fn mount_refused(reference: &str, dir: &Path, opts: &str) -> String {
    let out = sqfuse()
        .arg(reference)
        .arg(dir)
        .args(["-o", opts])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{reference} -o {opts}");
    assert!(!crate::is_mounted(dir), "{reference} -o {opts}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn registry_image_mounts_lazily_and_equals_its_layers_merged() {
    need_fuse!();
    let reg = need_registry!("mount", None);
    let s = stack("registry-mount");
    let reference = push(&reg, &s, "sq/app", true);
    let m = Mounted::new(
        Path::new(&reference),
        "registry",
        &["insecure", "require_verity", "cache_dir=none"],
    );
    assert_same("registry mount", &shape(&s.merged), &shape(&m.dir));
    // The same as the layer files mounted as layers here.
    let local = Mounted::layers(&[&s.top, &s.bottom], "registry-local", &[]);
    assert_same("local layers", &shape(&local.dir), &shape(&m.dir));
}

/// A block changed in the registry's storage: its reads fail with EIO
/// (its root hash does not match), the rest reads; the mount stays up.
#[test]
fn registry_blob_changed_in_storage_is_refused_block_by_block() {
    need_fuse!();
    let reg = need_registry!("mount-tampered", None);
    let s = stack("registry-tampered");
    let reference = push(&reg, &s, "sq/tampered", true);
    // The bottom layer's blob, a byte flipped in the middle of `big`.
    let digest = format!(
        "{:x}",
        <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(&s.bottom).unwrap())
    );
    let data = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&digest[..2])
        .join(&digest)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x55;
    std::fs::write(&data, &bytes).unwrap();
    let m = Mounted::new(
        Path::new(&reference),
        "registry-tampered",
        &["insecure", "cache_dir=none"],
    );
    let e = std::fs::read(m.dir.join("big")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(std::fs::read(m.dir.join("a")).unwrap(), b"top");
    assert_eq!(std::fs::read(m.dir.join("d/b")).unwrap(), b"b");
    assert!(crate::is_mounted(&m.dir));
}

/// Without recorded root hashes: mounted with a note, refused under
/// require_verity; a reference to nothing is one line.
#[test]
fn registry_image_without_root_hashes_is_refused_under_require_verity() {
    need_fuse!();
    let reg = need_registry!("mount-plain", None);
    let s = stack("registry-plain");
    let reference = push(&reg, &s, "sq/plain", false);
    let dir = scratch("mnt").join("registry-plain");
    std::fs::create_dir_all(&dir).unwrap();
    let err = mount_refused(&reference, &dir, "insecure,require_verity,cache_dir=none");
    assert!(
        err.starts_with(&format!(
            "sqfuse: {reference}: no dm-verity root hash recorded for docker://127.0.0.1:{}/sq/plain@sha256:",
            reg.port
        )) && err.ends_with("(require_verity; push with --verity)\n"),
        "{err}"
    );
    let out = sqfuse()
        .arg(&reference)
        .arg(&dir)
        .args(["-o", "insecure,cache_dir=none"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not verified"));
    assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"top");
    unmount(&dir);
    let missing = format!("docker://127.0.0.1:{}/sq/none:v1", reg.port);
    let err = mount_refused(&missing, &dir, "insecure,cache_dir=none");
    assert!(
        err.starts_with(&format!("sqfuse: {missing}: manifest v1: 404"))
            && err.lines().count() == 1,
        "{err}"
    );
}

/// An ordinary container image (tar layers, pushed by skopeo): refused in
/// one line that says what to do instead.
#[test]
fn registry_image_of_tar_layers_says_to_pack_it_first() {
    need_fuse!();
    if !crate::common::oci::have_umoci() {
        crate::skip!("needs umoci (apt-get install umoci)");
    }
    let reg = need_registry!("mount-tar", None);
    let dir = scratch("registry-tar");
    let src = dir.join("layer");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"tar").unwrap();
    let tar = dir.join("layer.tar");
    run(std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    let layout = crate::common::oci::umoci_layout(&dir, &[tar]);
    let reference = reg.push(&layout, "sq/tar", None);
    let mnt = scratch("mnt").join("registry-tar");
    std::fs::create_dir_all(&mnt).unwrap();
    let err = mount_refused(&reference, &mnt, "insecure,cache_dir=none");
    assert_eq!(
        err,
        format!(
            "sqfuse: {reference}: layer 0 is \"application/vnd.oci.image.layer.v1.tar+gzip\", not SquashFS: make an image of it with `sqfuse pack {reference} IMAGE` and mount that\n"
        )
    );
}

/// A registry behind basic auth (user carol) holding the stack, pushed
/// with credentials: the registry, the stack and the reference.
fn private_registry(name: &str) -> Option<(Registry, Stack, String)> {
    if !crate::have("htpasswd") {
        return None;
    }
    let dir = scratch(&format!("registry-{name}"));
    let htpasswd = dir.join("htpasswd");
    run(std::process::Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args(["carol", "pa55-word"]));
    let reg = Registry::start(&format!("mount-{name}"), Some(&htpasswd))?;
    let s = stack(&format!("registry-{name}-stack"));
    let reference = format!("docker://127.0.0.1:{}/sq/private:v1", reg.port);
    run(sqfuse()
        .args([
            "push",
            "--insecure",
            "--verity",
            "--creds",
            "carol:pa55-word",
        ])
        .arg(&s.top)
        .arg(&s.bottom)
        .arg(&reference));
    Some((reg, s, reference))
}

macro_rules! need_private_registry {
    ($name:expr) => {
        match private_registry($name) {
            Some(r) => r,
            None => crate::skip!(
                "needs docker-registry, skopeo and htpasswd (apt-get install docker-registry skopeo apache2-utils)"
            ),
        }
    };
}

/// A registry behind basic auth: the credentials come from -o creds=FILE
/// (never the command line, never /proc/mounts); without them, one line.
#[test]
fn registry_mount_logs_in_with_a_creds_file() {
    need_fuse!();
    let (_reg, s, reference) = need_private_registry!("creds");
    let creds = scratch("registry-creds").join("creds");
    std::fs::write(&creds, "carol:pa55-word\n").unwrap();
    let opt = format!(
        "insecure,require_verity,cache_dir=none,creds={}",
        creds.display()
    );
    let m = Mounted::new(Path::new(&reference), "registry-creds", &[&opt]);
    assert_same("with creds", &shape(&s.merged), &shape(&m.dir));
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains("pa55-word"), "{mounts}");
    drop(m);
    let mnt = scratch("mnt").join("registry-nocreds");
    std::fs::create_dir_all(&mnt).unwrap();
    let err = mount_refused(&reference, &mnt, "insecure,cache_dir=none");
    assert!(
        err.starts_with(&format!("sqfuse: {reference}: manifest v1: 401"))
            && err.lines().count() == 1,
        "{err}"
    );
}

/// Sets (or, for `None`, removes) each variable of `env` for `cmd`.
fn set_env(cmd: &mut std::process::Command, env: &[(&str, Option<&Path>)]) {
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
}

/// `sqfuse REFERENCE DIR` with `env` set: mounted (the tree checked
/// against the stack's) or, if `mounts` is false, refused with a 401.
/// (`None` removes a variable).
fn mount_with_env(
    reference: &str,
    s: &Stack,
    name: &str,
    env: &[(&str, Option<&Path>)],
    mounts: bool,
) {
    let (dir, mut cmd) = crate::mount_command(
        &[Path::new(reference)],
        name,
        &["insecure", "require_verity", "cache_dir=none"],
    );
    set_env(&mut cmd, env);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !mounts {
        assert!(
            !out.status.success() && err.contains(": 401"),
            "{name}: {err}"
        );
        return;
    }
    assert!(out.status.success(), "{name}: {err}");
    let m = Mounted { dir };
    assert_same(name, &shape(&s.merged), &shape(&m.dir));
}

/// Logins stored by `skopeo login` ($XDG_RUNTIME_DIR/containers/auth.json,
/// as podman writes it too) and by `docker login` (~/.docker/config.json)
/// are used when no creds= is given.
#[test]
fn registry_mount_uses_the_login_skopeo_or_docker_stored() {
    need_fuse!();
    let (reg, s, reference) = need_private_registry!("logins");
    let dir = scratch("registry-logins");
    let (run_dir, home) = (dir.join("run"), dir.join("home"));
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    let nowhere = dir.join("absent");
    // skopeo writes the containers auth file below XDG_RUNTIME_DIR.
    run(std::process::Command::new("skopeo")
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            "carol",
            "-p",
            "pa55-word",
        ])
        .arg(format!("127.0.0.1:{}", reg.port))
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env("HOME", &home)
        .env_remove("REGISTRY_AUTH_FILE"));
    let written = run_dir.join("containers/auth.json");
    assert!(written.is_file(), "skopeo wrote no {}", written.display());
    // The test's sqfuse() names an absent REGISTRY_AUTH_FILE: without
    // it, the file skopeo wrote is found through XDG_RUNTIME_DIR; or named.
    let xdg_env: &[(&str, Option<&Path>)] = &[
        ("REGISTRY_AUTH_FILE", None),
        ("XDG_RUNTIME_DIR", Some(&run_dir)),
        ("XDG_CONFIG_HOME", Some(&nowhere)),
        ("HOME", Some(&home)),
    ];
    mount_with_env(&reference, &s, "login-xdg", xdg_env, true);
    let named: &[(&str, Option<&Path>)] = &[("REGISTRY_AUTH_FILE", Some(&written))];
    mount_with_env(&reference, &s, "login-named", named, true);
    // The inspection commands log in the same way.
    let mut cmd = sqfuse();
    set_env(&mut cmd, xdg_env);
    let out = cmd
        .args(["ls", "--insecure", &reference, "/d"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "b\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Docker's config.json in HOME, keyed by URL as docker writes it.
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "carol:pa55-word",
    );
    std::fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"http://127.0.0.1:{}":{{"auth":"{auth}"}}}}}}"#,
            reg.port
        ),
    )
    .unwrap();
    let docker_env: &[(&str, Option<&Path>)] = &[("HOME", Some(&home)), ("DOCKER_CONFIG", None)];
    mount_with_env(&reference, &s, "login-docker", docker_env, true);
    // A wrong password stored is a 401 in one line.
    let bad = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "carol:wrong");
    std::fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"{bad}"}}}}}}"#,
            reg.port
        ),
    )
    .unwrap();
    mount_with_env(&reference, &s, "login-wrong", docker_env, false);
}

/// `tests/common/push_artifact.py`: pushes as another tool would.
fn push_artifact(reg: &Registry, reference: &str, kind: &str, files: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/push_artifact.py");
    run(std::process::Command::new("python3")
        .arg(script)
        .arg(reg.port.to_string())
        .arg(reference)
        .arg(kind)
        .args(files));
}

/// An artifact as `apptainer push oras://` writes it (one SIF layer): the
/// SquashFS partition inside the SIF mounts, as offset=auto mounts the
/// file; and SquashFS layers published as SingularityCE does, by a script
/// of our own rather than by sqfuse push.
#[test]
fn oras_sif_artifacts_and_singularity_layers_mount() {
    need_fuse!();
    let reg = need_registry!("mount-oras", None);
    let sif = crate::corpora().join("images/sylabs-sif/one-group.sif");
    push_artifact(&reg, "sq/sif:v1", "oras", &[&sif]);
    let oras = format!("oras://127.0.0.1:{}/sq/sif:v1", reg.port);
    let m = Mounted::new(
        Path::new(&oras),
        "registry-oras",
        &["insecure", "cache_dir=none"],
    );
    let local = Mounted::new(&sif, "registry-oras-local", &["offset=auto"]);
    assert_same("oras artifact", &snapshot(&local.dir), &snapshot(&m.dir));
    assert!(!snapshot(&m.dir).is_empty());
    drop((m, local));
    let s = stack("registry-sylabs");
    push_artifact(&reg, "sq/sylabs:v1", "squashfs", &[&s.top, &s.bottom]);
    let docker = format!("docker://127.0.0.1:{}/sq/sylabs:v1", reg.port);
    let m = Mounted::new(
        Path::new(&docker),
        "registry-sylabs",
        &["insecure", "cache_dir=none"],
    );
    assert_same("sylabs layers", &shape(&s.merged), &shape(&m.dir));
}

/// Chunks are kept by digest in the cache directory: with the registry
/// stopped, a second mount (the manifest last resolved, the chunks read
/// before) shows the same tree, with a warning.
#[test]
fn registry_mount_reads_from_the_cache_with_the_registry_gone() {
    need_fuse!();
    let reg = need_registry!("mount-cache", None);
    let s = stack("registry-cache");
    let reference = push(&reg, &s, "sq/cached", true);
    let cache = scratch("registry-cache").join("cache");
    let opt = format!("insecure,cache_dir={}", cache.display());
    let m = Mounted::new(Path::new(&reference), "registry-cache", &[&opt]);
    assert_same("first mount", &shape(&s.merged), &shape(&m.dir));
    drop(m);
    drop(reg); // the registry stops
    let dir = scratch("mnt").join("registry-cache-offline");
    std::fs::create_dir_all(&dir).unwrap();
    let out = sqfuse()
        .arg(&reference)
        .arg(&dir)
        .args(["-o", &opt])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning") && err.contains("reading the cached copy"),
        "{err}"
    );
    assert_same("offline mount", &shape(&s.merged), &shape(&dir));
    unmount(&dir);
}
