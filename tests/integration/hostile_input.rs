//! Hostile input on the paths beside the image reader: tar streams and OCI
//! layers (anyone's, through a registry), directory trees and command-line
//! text. Each test is named after what crashed or grew without bound
//! before: now a one-line error or a bounded success, never a panic, an
//! abort or a hang.

use crate::tarw::TarWriter;
use crate::{run, sqfuse};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A directory removed at the end of the test, also when it fails (with
/// `rm -rf`, which walks any depth).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = tempfile::Builder::new()
            .prefix(&format!("sqfuse-test-{name}-"))
            .tempdir()
            .unwrap()
            .keep();
        TempDir(d)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = Command::new("rm").arg("-rf").arg(&self.0).status();
    }
}

/// What a failed run said, checked to be one clean line.
fn refused(out: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: want exit 2 (an error), got {:?}: {err}",
        out.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("overflow"),
        "{what}: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{what}: not one line: {err}"
    );
    assert!(err.len() < 1000, "{what}: {} bytes: {err}", err.len());
    err
}

/// Runs `cmd` feeding `input` on stdin; returns its output and its peak
/// resident memory in KiB, sampled from /proc while it runs (wait4's
/// figure would count the test process, which the child starts as).
fn run_measured(cmd: &mut Command, input: Option<Vec<u8>>) -> (std::process::Output, u64) {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let feeder = input.map(|data| {
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        })
    });
    let status_file = format!("/proc/{}/status", child.id());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                });
                peak = peak.max(hwm.unwrap_or(0));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        })
    };
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    (out, sampler.join().unwrap())
}

fn pack_tar(tar: Vec<u8>, image: &Path) -> (std::process::Output, u64) {
    run_measured(
        sqfuse()
            .args(["pack", "-q", "-j", "2", "--tar", "-"])
            .arg(image),
        Some(tar),
    )
}

/// Packs `tar` into `image`, which must succeed and check clean; returns
/// what the pack said on stderr.
fn packs_and_checks(tar: Vec<u8>, image: &Path) -> String {
    let (out, _) = pack_tar(tar, image);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    run(sqfuse().arg("check").arg(image));
    err
}

/// `a/a/.../a` (`depth` names), then `/f`.
fn deep_path(depth: usize) -> Vec<u8> {
    let mut p = b"a/".repeat(depth);
    p.extend_from_slice(b"f");
    p
}

#[test]
fn tar_file_30000_directories_deep_is_refused_not_a_stack_overflow() {
    let t = TempDir::new("deep-tar");
    let mut w = TarWriter::default();
    w.member(&deep_path(30_000), b'0', &[], b"deep");
    let (out, _) = pack_tar(w.finish(), &t.join("x.sqfs"));
    let err = refused(&out, "30000-deep tar");
    assert!(err.contains("nested deeper than 2048 directories"), "{err}");
    assert!(!t.join("x.sqfs").exists(), "an image was left behind");
}

#[test]
fn tar_at_the_depth_limit_packs_and_reads_back() {
    let t = TempDir::new("limit-tar");
    let mut w = TarWriter::default();
    // 2047 directories and the file: 2048 names, the most sqfuse packs.
    w.member(&deep_path(2047), b'0', &[], b"deepest");
    let img = t.join("x.sqfs");
    packs_and_checks(w.finish(), &img);
    let inner = String::from_utf8(deep_path(2047)).unwrap();
    let cat = run(sqfuse().arg("cat").arg(&img).arg(&inner));
    assert_eq!(cat.stdout, b"deepest");
    let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
    assert_eq!(String::from_utf8_lossy(&ls.stdout).lines().count(), 2048);
    // Its paths are longer than Linux names: extract stops with one short
    // line saying so.
    let out = sqfuse()
        .arg("extract")
        .arg(&img)
        .arg(t.join("out"))
        .output()
        .unwrap();
    let err = refused(&out, "extract 2048 deep");
    assert!(err.contains("File name too long"), "{err}");
}

/// A directory 2048 names deep packs, and the walk that `check` and `ls -R`
/// use counted it one past its limit ("corrupt") until entries, not
/// directories, were what the limit counted.
#[test]
fn directory_at_the_depth_limit_checks_clean() {
    let t = TempDir::new("limit-dir");
    let mut w = TarWriter::default();
    let mut deepest = b"a/".repeat(2047);
    deepest.push(b'd');
    w.member(&deepest, b'5', &[], b"");
    let img = t.join("x.sqfs");
    packs_and_checks(w.finish(), &img);
    let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert_eq!(listing.lines().count(), 2048);
    assert_eq!(
        listing.lines().last().unwrap().as_bytes(),
        &deepest[..],
        "the deepest directory is listed"
    );
}

#[test]
fn oci_layer_30000_directories_deep_is_refused_not_a_stack_overflow() {
    let t = TempDir::new("deep-oci");
    let mut w = TarWriter::default();
    w.member(&deep_path(30_000), b'0', &[], b"deep");
    let tar = t.join("layer.tar");
    std::fs::write(&tar, w.finish()).unwrap();
    let layout = crate::oci_import::hand_layout(&t.join("layout"), &[tar], "gzip", b"{}");
    let out = sqfuse()
        .args(["pack", "-q"])
        .arg(format!("oci:{}:t", layout.display()))
        .arg(t.join("x.sqfs"))
        .output()
        .unwrap();
    let err = refused(&out, "30000-deep OCI layer");
    assert!(err.contains("nested deeper than 2048 directories"), "{err}");
}

/// `depth` directories named `a`, one in another, made with mkdirat so no
/// path longer than PATH_MAX is ever needed.
fn deep_dirs(top: &Path, depth: usize) {
    let c = std::ffi::CString::new(top.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: descriptors opened here and closed as the walk moves down.
    unsafe {
        let mut fd = libc::open(c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        assert!(fd >= 0);
        for _ in 0..depth {
            assert_eq!(libc::mkdirat(fd, c"a".as_ptr(), 0o755), 0);
            let next = libc::openat(fd, c"a".as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
            assert!(next >= 0);
            libc::close(fd);
            fd = next;
        }
        libc::close(fd);
    }
}

#[test]
fn directory_chain_3000_deep_is_refused_not_a_stack_overflow() {
    let t = TempDir::new("deep-dir");
    let src = t.join("src");
    std::fs::create_dir(&src).unwrap();
    deep_dirs(&src, 3000);
    let out = sqfuse()
        .args(["pack", "-q", "-j", "2"])
        .arg(&src)
        .arg(t.join("x.sqfs"))
        .output()
        .unwrap();
    // Paths that deep are longer than Linux names (File name too long)
    // before the depth limit is reached: either is a clean refusal.
    let err = refused(&out, "3000-deep directory");
    assert!(
        err.contains("nested deeper than") || err.contains("File name too long"),
        "{err}"
    );
    assert!(!t.join("x.sqfs").exists());
}

#[test]
fn directory_chain_1000_deep_packs_equal_to_the_source() {
    let t = TempDir::new("deep-dir-ok");
    let src = t.join("src");
    std::fs::create_dir(&src).unwrap();
    deep_dirs(&src, 1000);
    let img = t.join("x.sqfs");
    run(sqfuse().args(["pack", "-q", "-j", "2"]).arg(&src).arg(&img));
    run(sqfuse().arg("check").arg(&img));
    let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
    let lines: Vec<_> = String::from_utf8_lossy(&ls.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1000);
    assert_eq!(lines[999], "a/".repeat(999) + "a");
}

#[test]
fn pax_xattr_percent_escape_cut_inside_a_character_is_kept_as_text() {
    let t = TempDir::new("pax-percent");
    let mut w = TarWriter::default();
    // `%a` then the two bytes of U+00E9: the escape's second digit would
    // be half a character.
    let key = "LIBARCHIVE.xattr.user.%a\u{e9}".as_bytes().to_vec();
    w.member(b"f", b'0', &[(&key, b"dGVzdA==")], b"x");
    let img = t.join("x.sqfs");
    packs_and_checks(w.finish(), &img);
    let dest = t.join("out");
    run(sqfuse().arg("extract").arg(&img).arg(&dest));
    let got = xattr_names(&dest.join("f"));
    assert_eq!(got, vec!["user.%a\u{e9}".as_bytes().to_vec()]);
}

fn xattr_names(p: &Path) -> Vec<Vec<u8>> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: a valid path and a buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "listxattr {}", p.display());
    buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn image_argument_cut_inside_a_character_is_a_clean_error() {
    // The fifth byte is inside the euro sign: a prefix test by length used
    // to slice the text there.
    for cmd in ["info", "ls", "check"] {
        let out = sqfuse().arg(cmd).arg("http\u{20ac}x").output().unwrap();
        let err = refused(&out, cmd);
        assert!(err.contains("http\u{20ac}x"), "{cmd}: {err}");
    }
}

#[test]
fn ten_megabytes_of_xattrs_on_one_member_are_refused() {
    let t = TempDir::new("big-xattr");
    let value = vec![b'v'; 10 << 20];
    let mut w = TarWriter::default();
    w.member(b"f", b'0', &[(b"SCHILY.xattr.user.big", &value)], b"x");
    let (out, rss) = pack_tar(w.finish(), &t.join("x.sqfs"));
    let err = refused(&out, "10 MB xattr");
    assert!(
        err.contains("f: xattr user.big holds 10485760 bytes"),
        "{err}"
    );
    assert!(rss < 200 << 10, "peak RSS {rss} KiB");
}

#[test]
fn many_xattr_names_on_one_member_are_refused() {
    let t = TempDir::new("many-xattrs");
    let names: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("SCHILY.xattr.user.name-{i:08}").into_bytes())
        .collect();
    let pax: Vec<(&[u8], &[u8])> = names.iter().map(|n| (&n[..], &b"v"[..])).collect();
    let mut w = TarWriter::default();
    w.member(b"f", b'0', &pax, b"x");
    let (out, _) = pack_tar(w.finish(), &t.join("x.sqfs"));
    let err = refused(&out, "many xattr names");
    assert!(err.contains("xattr names take"), "{err}");
}

#[test]
fn global_pax_xattrs_given_to_every_member_stay_bounded() {
    // A global header's records apply to every member after it: 60 KiB of
    // xattrs on each of 100,000 members would be 6 GB held in memory.
    let t = TempDir::new("global-xattrs");
    let mut w = TarWriter::default();
    let value = vec![b'v'; 60 << 10];
    let records = crate::tarw::pax_record(b"SCHILY.xattr.user.g", &value);
    w.out.extend_from_slice(&crate::tarw::header(
        b"global",
        b'g',
        records.len() as u64,
        b"",
    ));
    w.out.extend_from_slice(&records);
    w.out.resize(w.out.len().next_multiple_of(512), 0);
    for i in 0..100_000 {
        w.member(format!("f{i}").as_bytes(), b'0', &[], b"");
    }
    let (out, rss) = pack_tar(w.finish(), &t.join("x.sqfs"));
    let err = refused(&out, "global xattrs");
    assert!(err.contains("xattrs exceed 1024 MiB"), "{err}");
    assert!(rss < 1536 << 10, "peak RSS {rss} KiB");
}

#[test]
fn endless_metadata_members_are_refused() {
    // Pax headers one after another, never a member: each is small, all of
    // them together were kept without a bound.
    let t = TempDir::new("endless-pax");
    let mut tar = Vec::new();
    let records = crate::tarw::pax_record(b"comment", &vec![b'c'; 1 << 20]);
    for _ in 0..40 {
        tar.extend_from_slice(&crate::tarw::header(
            b"pax",
            b'x',
            records.len() as u64,
            b"",
        ));
        tar.extend_from_slice(&records);
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    let (out, _) = pack_tar(tar, &t.join("x.sqfs"));
    let err = refused(&out, "endless pax headers");
    assert!(
        err.contains("metadata members before one member exceed"),
        "{err}"
    );
}

#[test]
fn a_million_members_flipping_between_file_and_directory_stay_bounded() {
    let t = TempDir::new("flip");
    let mut w = TarWriter::default();
    for i in 0..1_000_000u32 {
        if i % 2 == 0 {
            w.member(b"x", b'0', &[], b"");
        } else {
            w.member(b"x/", b'5', &[], b"");
        }
    }
    w.member(b"x/inside", b'0', &[], b"last");
    let img = t.join("x.sqfs");
    let (out, rss) = pack_tar(w.finish(), &img);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each replacement takes its predecessor's place: the tree stays two
    // entries, whatever the count.
    assert!(rss < 300 << 10, "peak RSS {rss} KiB");
    let ls = run(sqfuse().args(["ls", "-R"]).arg(&img));
    assert_eq!(String::from_utf8_lossy(&ls.stdout), "x\nx/inside\n");
}

#[test]
fn hard_link_to_itself_is_refused_or_kept_as_one_file() {
    let t = TempDir::new("self-link");
    // Before any member of that name: it links to nothing.
    let mut w = TarWriter::default();
    w.member_linked(b"me", b'1', &[], b"", b"me");
    let (out, _) = pack_tar(w.finish(), &t.join("a.sqfs"));
    let err = refused(&out, "self link");
    assert!(err.contains("comes nowhere before it"), "{err}");
    // After a file of that name: the same file, its contents kept.
    let mut w = TarWriter::default();
    w.member(b"me", b'0', &[], b"data");
    w.member_linked(b"me", b'1', &[], b"", b"me");
    let img = t.join("b.sqfs");
    packs_and_checks(w.finish(), &img);
    assert_eq!(run(sqfuse().arg("cat").arg(&img).arg("me")).stdout, b"data");
}

/// An OCI layout whose one layer is `tar` compressed with `how`.
fn bomb_layout(t: &TempDir, how: &str, zeros: u64) -> PathBuf {
    // One member of `zeros` bytes of zeros: compresses a thousandfold.
    let mut raw = Vec::new();
    raw.extend_from_slice(&crate::tarw::header(b"zeros", b'0', zeros, b""));
    let tar = t.join("layer.tar");
    let mut f = std::fs::File::create(&tar).unwrap();
    f.write_all(&raw).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros.next_multiple_of(512) + 1024;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    drop(f);
    let layout = crate::oci_import::hand_layout(
        &t.join(&format!("layout-{how}")),
        std::slice::from_ref(&tar),
        how,
        b"{}",
    );
    std::fs::remove_file(&tar).unwrap();
    layout
}

#[test]
fn gzip_and_zstd_bomb_layers_pack_in_bounded_memory() {
    for how in ["gzip", "zstd"] {
        let t = TempDir::new("bomb");
        let zeros = 1u64 << 30;
        let layout = bomb_layout(&t, how, zeros);
        let blobs: u64 = std::fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(blobs < 8 << 20, "{how}: the layout is {blobs} bytes");
        let img = t.join("x.sqfs");
        let (out, rss) = run_measured(
            sqfuse()
                .args(["pack", "-q", "-j", "2"])
                .arg(format!("oci:{}:t", layout.display()))
                .arg(&img),
            None,
        );
        assert!(
            out.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(rss < 300 << 10, "{how}: peak RSS {rss} KiB");
        // The gigabyte is stored as a hole, not as a gigabyte.
        assert!(std::fs::metadata(&img).unwrap().len() < 1 << 20);
        let info = run(sqfuse().args(["ls", "-l"]).arg(&img));
        assert!(
            String::from_utf8_lossy(&info.stdout).contains(&zeros.to_string()),
            "{}",
            String::from_utf8_lossy(&info.stdout)
        );
    }
}

/// tests/common/evil_server.py on 127.0.0.1, stopped when dropped (and by
/// itself when this process is gone: it exits when its stdin closes).
struct EvilRegistry {
    child: std::process::Child,
    port: u16,
}

impl EvilRegistry {
    fn start() -> EvilRegistry {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/evil_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().expect("the registry prints its port");
        EvilRegistry { child, port }
    }
}

impl Drop for EvilRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pack docker://` against the evil registry: its one-line error, peak
/// memory (KiB) and how long it took.
fn pull_from_evil(r: &EvilRegistry, repo: &str) -> (String, u64, std::time::Duration) {
    let t = TempDir::new(&format!("evil-{repo}"));
    let start = std::time::Instant::now();
    let (out, rss) = run_measured(
        sqfuse()
            .args(["pack", "-q", "--insecure"])
            .arg(format!("docker://127.0.0.1:{}/{repo}:t", r.port))
            .arg(t.join("x.sqfs")),
        None,
    );
    let took = start.elapsed();
    let err = refused(&out, repo);
    assert!(!t.join("x.sqfs").exists());
    (err, rss, took)
}

#[test]
fn registry_streaming_an_endless_manifest_is_cut_off() {
    let r = EvilRegistry::start();
    let (err, rss, took) = pull_from_evil(&r, "endless");
    assert!(
        err.contains("manifest t: answer is larger than the 4194304 bytes accepted"),
        "{err}"
    );
    assert!(rss < 200 << 10, "peak RSS {rss} KiB");
    assert!(took.as_secs() < 30, "took {took:?}");
}

#[test]
fn registry_endless_error_body_and_token_answer_are_cut_off() {
    let r = EvilRegistry::start();
    let (err, rss, _) = pull_from_evil(&r, "errbody");
    assert!(err.contains("404 Not Found"), "{err}");
    assert!(rss < 200 << 10, "errbody: peak RSS {rss} KiB");
    let (err, rss, _) = pull_from_evil(&r, "tokenbomb");
    assert!(
        err.contains("token service: answer is larger than the 1048576 bytes accepted"),
        "{err}"
    );
    assert!(rss < 200 << 10, "tokenbomb: peak RSS {rss} KiB");
    let (err, _, _) = pull_from_evil(&r, "bigblob");
    assert!(
        err.contains("is longer than its descriptor's 1024 bytes"),
        "{err}"
    );
    let (err, _, _) = pull_from_evil(&r, "nothing");
    assert!(err.contains("404 Not Found: no such thing"), "{err}");
}

#[test]
fn registry_trickling_a_manifest_is_given_up_on() {
    // One byte every 200 ms, forever: no single read stalls, so only a
    // bound on the whole answer ends it (60 s).
    let r = EvilRegistry::start();
    let (err, _, took) = pull_from_evil(&r, "trickle");
    assert!(err.contains("manifest t:"), "{err}");
    assert!(took.as_secs() < 90, "took {took:?}");
}

#[test]
fn url_image_error_answer_with_an_endless_body_is_cut_off() {
    // object_store reads an error answer's body whole for its message.
    let r = EvilRegistry::start();
    let url = format!("http://127.0.0.1:{}/img/forbidden.sqfs", r.port);
    let start = std::time::Instant::now();
    let (out, rss) = run_measured(sqfuse().args(["ls", &url, "--cache-dir", "none"]), None);
    let err = refused(&out, "endless 403 body");
    assert!(err.contains("403"), "{err}");
    assert!(rss < 200 << 10, "peak RSS {rss} KiB");
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn pax_xattr_name_with_a_nul_byte_is_left_out_not_packed_unreadable() {
    // Found by the tar_members fuzz target: the image was written, and
    // then refused by the reader ("xattr name contains a NUL byte").
    let t = TempDir::new("pax-nul");
    let mut w = TarWriter::default();
    w.member(
        b"f",
        b'0',
        &[
            (b"SCHILY.xattr.user.a\0b", b"v"),
            (b"SCHILY.xattr.user.ok", b"kept"),
        ],
        b"x",
    );
    let img = t.join("x.sqfs");
    let err = packs_and_checks(w.finish(), &img);
    assert!(
        err.contains(r#"f: xattr "user.a\0b" cannot be stored in SquashFS"#),
        "{err}"
    );
    let dest = t.join("out");
    run(sqfuse().arg("extract").arg(&img).arg(&dest));
    assert_eq!(xattr_names(&dest.join("f")), vec![b"user.ok".to_vec()]);
}
