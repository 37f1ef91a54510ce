//! Images read over HTTP(S) from a real nginx on 127.0.0.1: the same
//! answers as from the file, bounded transfer, the persistent cache with the
//! server gone, TLS with a test CA, a server ignoring Range, a changed object.

use crate::common::http::{Nginx, PyServer};
use crate::common::tree::{assert_same, snapshot};
use crate::common::*;
use sqfuse::reader::remote::{RemoteOptions, CHUNK};
use sqfuse::{Image, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The fixture tree packed by sqfuse into a served directory.
fn served(name: &str) -> (PathBuf, PathBuf) {
    let www = scratch("www").join(name);
    std::fs::create_dir_all(&www).unwrap();
    let img = www.join("img.sqfs");
    run(sqfuse()
        .arg("pack")
        .arg(fixture())
        .arg(&img)
        .args(["-f", "--quiet"]));
    (www, img)
}

fn cache(name: &str) -> String {
    scratch("cache").join(name).display().to_string()
}

fn out(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout).unwrap()
}

#[test]
fn remote_http_reads_equal_the_file() {
    let (www, img) = served("equal");
    let Some(srv) = Nginx::start(&www, "equal", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let c = cache("equal");
    let ls = |image: &str| out(sqfuse().args(["ls", "-lR", "--json", image, "--cache-dir", &c]));
    assert_eq!(ls(&url), ls(img.to_str().unwrap()));
    let (a, b) = (
        scratch("equal-x").join("url"),
        scratch("equal-x").join("file"),
    );
    run(sqfuse()
        .args(["extract", &url])
        .arg(&a)
        .args(["--cache-dir", &c]));
    run(sqfuse().arg("extract").arg(&img).arg(&b));
    assert_same("extract from URL vs file", &snapshot(&b), &snapshot(&a));
    let check = out(sqfuse().args(["check", &url, "--cache-dir", "none"]));
    assert!(check.trim_end().ends_with(": ok"), "{check}");
    assert!(check.starts_with(&url), "{check}");
    let info = out(sqfuse().args(["info", &url, "--cache-dir", "none"]));
    assert!(info.contains("fetched:"), "{info}");
    // Every request was a conditional range request answered 206.
    let log = srv.log();
    assert!(log.iter().any(|r| r.3 == "GET"));
    for (status, _, range, method) in &log {
        if method == "GET" {
            assert_eq!(*status, 206, "{log:?}");
            assert!(range.starts_with("bytes="), "{log:?}");
        }
    }
}

/// A small file's transfer: the superblock's chunk, the metadata tables'
/// chunks and the chunks of its own (fragment) block, nothing of the 16 MiB
/// of other data.
#[test]
fn remote_small_file_fetches_metadata_plus_its_blocks() {
    let www = scratch("www").join("small");
    let src = scratch("small-src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    let mut noise = vec![0u8; 16 << 20];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(src.join("big.bin"), &noise).unwrap();
    for i in 0..300 {
        std::fs::write(
            src.join("d").join(format!("f{i}")),
            format!("small file {i}\n"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(&www).unwrap();
    let img = www.join("img.sqfs");
    run(sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(&img)
        .args(["-f", "--quiet"]));
    let Some(srv) = Nginx::start(&www, "small", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let got = out(sqfuse().args(["cat", &url, "d/f123", "--cache-dir", "none"]));
    assert_eq!(got, "small file 123\n");
    let info: serde_json::Value =
        serde_json::from_str(&out(sqfuse().arg("info").arg("--json").arg(&img))).unwrap();
    let used = info["bytes_used"].as_u64().unwrap();
    let meta_start = info["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["start"].as_u64().unwrap())
        .min()
        .unwrap();
    let chunks = |a: u64, b: u64| (b.div_ceil(CHUNK) - a / CHUNK) * CHUNK;
    // Superblock chunk + metadata + the fragment block (at most 2 chunks).
    let bound = CHUNK + chunks(meta_start, used) + 2 * CHUNK;
    let fetched: u64 = srv.log().iter().map(|r| r.1).sum();
    assert!(
        fetched <= bound,
        "fetched {fetched} bytes, bound {bound} (image {used})"
    );
    assert!(fetched < used / 10, "fetched {fetched} of {used}");
}

#[test]
fn remote_cache_serves_with_the_server_stopped() {
    let (www, img) = served("offline");
    let Some(mut srv) = Nginx::start(&www, "offline", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let c = cache("offline");
    let ls = |image: &str| {
        sqfuse()
            .args(["ls", "-lR", image, "--cache-dir", &c])
            .env("SQFUSE_RETRY_TIMEOUT", "1")
            .output()
            .unwrap()
    };
    let want = out(sqfuse().args(["ls", "-lR"]).arg(&img));
    assert_eq!(String::from_utf8(ls(&url).stdout).unwrap(), want);
    let before = srv.log().len();
    srv.stop();
    let offline = ls(&url);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(String::from_utf8(offline.stdout).unwrap(), want);
    assert!(
        String::from_utf8_lossy(&offline.stderr).contains("reading the cached copy"),
        "warns it is offline"
    );
    // A file's data, cached or not: the right bytes or an error naming the
    // URL, never a hang or garbage.
    let local = Image::open(&img, &OpenOptions::default()).unwrap();
    let files = local_files(&local);
    let biggest = files
        .iter()
        .max_by_key(|f| local.lookup_path(f).unwrap().0.size())
        .unwrap();
    let cat = sqfuse()
        .args(["cat", &url, biggest, "--cache-dir", &c])
        .env("SQFUSE_RETRY_TIMEOUT", "1")
        .output()
        .unwrap();
    if cat.status.success() {
        assert_eq!(cat.stdout, read_path(&local, biggest).unwrap(), "{biggest}");
    } else {
        let err = String::from_utf8_lossy(&cat.stderr);
        assert!(err.contains(&url), "{err}");
    }

    srv.restart();
    assert_eq!(String::from_utf8(ls(&url).stdout).unwrap(), want);
    // Served from the cache: only the HEAD went to the server.
    let after: Vec<_> = srv.log().into_iter().skip(before).collect();
    assert!(after.iter().all(|r| r.3 == "HEAD"), "{after:?}");
}

#[test]
fn remote_https_needs_the_ca_and_works_with_it() {
    let (www, img) = served("tls");
    let Some(srv) = Nginx::start(&www, "tls", true) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let bad = sqfuse()
        .args(["ls", &url, "--cache-dir", "none"])
        .env("SQFUSE_RETRY_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.lines().count() == 1 && err.contains(&url), "{err}");
    let cert = srv.cert().display().to_string();
    let good = out(sqfuse().args(["ls", "-lR", &url, "--cache-dir", "none", "--ca-file", &cert]));
    assert_eq!(good, out(sqfuse().args(["ls", "-lR"]).arg(&img)));
}

#[test]
fn remote_server_ignoring_range_is_a_clear_error() {
    let (www, _) = served("norange");
    let srv = PyServer::start(&www);
    let url = format!("http://127.0.0.1:{}/img.sqfs", srv.port);
    let o = sqfuse()
        .args(["ls", &url, "--cache-dir", "none"])
        .env("SQFUSE_RETRY_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ignores Range"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn remote_credentials_never_shown() {
    let (www, _) = served("creds");
    let Some(srv) = Nginx::start(&www, "creds", false) else {
        return;
    };
    let url = format!("http://alice:s3cret@127.0.0.1:{}/missing.sqfs", srv.port);
    let o = sqfuse()
        .args(["info", "-d", &url, "--cache-dir", "none"])
        .env("SQFUSE_RETRY_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!all.contains("s3cret"), "{all}");
    assert!(all.contains("alice@127.0.0.1"), "{all}");
}

/// Replaced while open: reads of what is not cached fail naming the change;
/// nothing of the new object is served under the old one.
#[test]
fn remote_object_replaced_is_an_error_not_mixed_data() {
    let (www, img) = served("replaced");
    let Some(srv) = Nginx::start(&www, "replaced", false) else {
        return;
    };
    let opts = OpenOptions {
        remote: Some(RemoteOptions {
            cache_dir: None,
            retry_timeout: Duration::from_secs(1),
            ..Default::default()
        }),
        data_cache_blocks: 0,
        fragment_cache_blocks: 1,
        ..Default::default()
    };
    let remote = Image::open(Path::new(&srv.url("img.sqfs")), &opts).unwrap();
    let local = Image::open(&img, &OpenOptions::default()).unwrap();
    let files = local_files(&local);
    assert!(files.len() > 3);
    assert_eq!(
        read_path(&remote, &files[0]).unwrap(),
        read_path(&local, &files[0]).unwrap()
    );
    // A different image under the same name (new mtime, new ETag).
    let other = scratch("replaced-src");
    std::fs::write(other.join("x"), vec![7u8; 3 << 20]).unwrap();
    let tmp = www.join("new.sqfs");
    run(sqfuse()
        .arg("pack")
        .arg(&other)
        .arg(&tmp)
        .args(["-f", "--quiet"]));
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::rename(&tmp, &img).unwrap();
    let _ = Command::new("touch").arg(&img).status();
    let mut errors = 0;
    for path in &files {
        match read_path(&remote, path) {
            Ok(bytes) => assert_eq!(
                bytes,
                read_path(&local, path).unwrap(),
                "{path}: mixed data"
            ),
            Err(e) => {
                errors += 1;
                assert!(e.to_string().contains("changed on the server"), "{e}");
            }
        }
    }
    assert!(errors > 0, "some read had to reach the server");
    assert!(
        srv.log().iter().any(|r| r.0 == 412),
        "If-Match refused: {:?}",
        srv.log()
    );
}

fn local_files(img: &Image) -> Vec<String> {
    let mut files = Vec::new();
    let root = img.root().unwrap();
    for step in img.walk(&root, img.root_ref()).unwrap() {
        if let sqfuse::reader::Step::Entry(e) = step.unwrap() {
            if matches!(e.inode.data, sqfuse::format::inode::InodeData::File(_))
                && e.inode.size() > 0
            {
                files.push(String::from_utf8(e.path).unwrap());
            }
        }
    }
    files
}

fn read_path(img: &Image, path: &str) -> sqfuse::Result<Vec<u8>> {
    let (inode, _) = img.lookup_path(path)?;
    let f = img.open_file(&inode)?;
    Ok(img.read_vec(&f, 0, inode.size() as usize)?.0)
}

/// s3:// against moto's S3 server: with AWS_* variables, with a ~/.aws
/// profile (endpoint_url in config, keys in credentials), and a missing key.
#[test]
fn remote_s3_env_and_profile_read_equal_the_file() {
    let (_, img) = served("s3");
    let Some(s3) = crate::common::http::S3Server::start() else {
        return;
    };
    s3.put("images", "app/img.sqfs", &img);
    let want = out(sqfuse().args(["ls", "-lR"]).arg(&img));
    let clean = |cmd: &mut Command| {
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("SQFUSE_RETRY_TIMEOUT", "2")
            .args(["--cache-dir", "none"]);
    };
    let mut env = sqfuse();
    env.args(["ls", "-lR", "s3://images/app/img.sqfs"]);
    clean(&mut env);
    env.env("AWS_ENDPOINT_URL", s3.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testkey")
        .env("AWS_SECRET_ACCESS_KEY", "testsecret")
        .env("AWS_REGION", "us-east-1");
    assert_eq!(out(&mut env), want);

    let home = scratch("s3-home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        "[ci]\naws_access_key_id = testkey\naws_secret_access_key = testsecret\n",
    )
    .unwrap();
    std::fs::write(
        home.join(".aws/config"),
        format!(
            "[profile ci]\nregion = us-east-1\nendpoint_url = {}\n",
            s3.endpoint()
        ),
    )
    .unwrap();
    let mut profile = sqfuse();
    profile.args(["cat", "s3://images/app/img.sqfs"]);
    clean(&mut profile);
    let first = local_files(&Image::open(&img, &OpenOptions::default()).unwrap())[0].clone();
    profile
        .arg(&first)
        .env("HOME", &home)
        .env("AWS_PROFILE", "ci");
    assert_eq!(
        run(&mut profile).stdout,
        read_path(&Image::open(&img, &OpenOptions::default()).unwrap(), &first).unwrap()
    );

    let mut missing = sqfuse();
    missing.args(["ls", "s3://images/app/nothing.sqfs"]);
    clean(&mut missing);
    missing.env("HOME", &home).env("AWS_PROFILE", "ci");
    let o = missing.output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("s3://images/app/nothing.sqfs") && err.trim_end().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn remote_cache_writable_by_others_is_refused() {
    // Refused before any request: the URL need not answer.
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("cache").join("shared");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = sqfuse()
        .args(["ls", "http://127.0.0.1:9/img.sqfs", "--cache-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "cache directory {} may be written by other users (mode 0777)",
            dir.display()
        )),
        "{err}"
    );
}
