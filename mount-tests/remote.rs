use crate::common::http::Nginx;
use crate::common::tree::{assert_same, snapshot};
use crate::{fixture_image, need_fuse, run, scratch, sqfuse, KernelMount, Mounted};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

fn root_xattr(dir: &Path, name: &str) -> Option<String> {
    let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C strings and a buffer of the length given.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buf[..len as usize]).into_owned())
}

/// The fixture image mounted from nginx equals the kernel's loop mount of
/// the same file (or sqfuse's mount of the file where loop mounts fail);
/// the cache statistics are on the root.
#[test]
fn remote_mount_equals_the_kernel_mount() {
    need_fuse!();
    let Some(img) = fixture_image("remote", &["-comp", "zstd"]) else {
        return;
    };
    let www = scratch("www").join("remote");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::copy(&img, www.join("img.sqfs")).unwrap();
    let Some(srv) = Nginx::start(&www, "mount-equal", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let cache = format!("cache_dir={}", scratch("mcache").join("equal").display());
    let m = Mounted::new(Path::new(&url), "remote-equal", &[&cache]);
    let want = match KernelMount::new(&img, "remote-equal") {
        Some(k) => snapshot(&k.dir),
        None => snapshot(&Mounted::new(&img, "remote-equal-file", &[]).dir),
    };
    assert_same("URL mount vs kernel", &want, &snapshot(&m.dir));
    let stats = root_xattr(&m.dir, "user.sqfuse.remote").expect("stats xattr on the root");
    assert!(
        stats.contains("requests=") && !stats.contains("requests=0 "),
        "{stats}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(mounts.contains(&url), "/proc/mounts names the URL");
}

/// The server going away mid-read is EIO for reads that need it, the
/// mount stays up, and it recovers when the server comes back.
#[test]
fn remote_mount_server_killed_is_eio_then_recovers() {
    need_fuse!();
    let src = scratch("killed-src");
    let mut x = 0x2545f4914f6cdd1du64;
    for name in ["a.bin", "b.bin"] {
        let mut data = vec![0u8; 20 << 20];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(src.join(name), &data).unwrap();
    }
    let www = scratch("www").join("killed");
    std::fs::create_dir_all(&www).unwrap();
    run(sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(www.join("img.sqfs"))
        .args(["-f", "--quiet"]));
    let Some(mut srv) = Nginx::start(&www, "killed", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    let m = Mounted::new(
        Path::new(&url),
        "remote-killed",
        &["cache_dir=none", "retry_timeout=2"],
    );
    let a = std::fs::read(m.dir.join("a.bin")).unwrap();
    assert_eq!(a, std::fs::read(src.join("a.bin")).unwrap());
    srv.stop();
    let tail = |len: usize| -> std::io::Result<Vec<u8>> {
        let mut f = std::fs::File::open(m.dir.join("b.bin"))?;
        f.seek(SeekFrom::Start((19 << 20) as u64))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    };
    let e = tail(1 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(std::fs::read_dir(&m.dir).is_ok(), "the mount stays up");
    srv.restart();
    let b = std::fs::read(src.join("b.bin")).unwrap();
    assert_eq!(tail(1 << 20).unwrap(), b[19 << 20..20 << 20]);
    let stats = root_xattr(&m.dir, "user.sqfuse.remote").unwrap();
    assert!(
        !stats.contains("failed_reads=0"),
        "the failure was counted: {stats}"
    );
}

/// A layered mount of URLs is the same tree as the layered mount of the
/// files.
#[test]
fn remote_layered_mount_equals_the_files_layered() {
    need_fuse!();
    let www = scratch("www").join("layers");
    std::fs::create_dir_all(&www).unwrap();
    let (lower, upper) = (scratch("rl-lower"), scratch("rl-upper"));
    std::fs::create_dir_all(lower.join("etc")).unwrap();
    std::fs::write(lower.join("etc/a"), "lower a\n").unwrap();
    std::fs::write(lower.join("etc/b"), "lower b\n").unwrap();
    std::fs::create_dir_all(upper.join("etc")).unwrap();
    std::fs::write(upper.join("etc/a"), "upper a\n").unwrap();
    std::fs::write(upper.join("new"), vec![3u8; 300_000]).unwrap();
    for (dir, name) in [(&lower, "lower.sqfs"), (&upper, "upper.sqfs")] {
        run(sqfuse()
            .arg("pack")
            .arg(dir)
            .arg(www.join(name))
            .args(["-f", "--quiet"]));
    }
    let Some(srv) = Nginx::start(&www, "layers", false) else {
        return;
    };
    let (top, base) = (srv.url("upper.sqfs"), srv.url("lower.sqfs"));
    let urls = Mounted::layers(
        &[Path::new(&top), Path::new(&base)],
        "remote-layers",
        &["cache_dir=none"],
    );
    let files = Mounted::layers(
        &[&www.join("upper.sqfs"), &www.join("lower.sqfs")],
        "remote-layers-files",
        &[],
    );
    assert_same(
        "layered URLs vs files",
        &snapshot(&files.dir),
        &snapshot(&urls.dir),
    );
    assert_eq!(
        std::fs::read_to_string(urls.dir.join("etc/a")).unwrap(),
        "upper a\n"
    );
    let stats = root_xattr(&urls.dir, "user.sqfuse.remote").unwrap();
    assert_eq!(stats.lines().count(), 2, "one line per layer: {stats}");
}

/// A URL mount whose server process fetched nothing itself (the parent
/// read all it needed before the fork) exits when unmounted: it used to
/// hang dropping its parent's network runtime, holding /dev/fuse.
#[test]
fn remote_mount_server_exits_when_unmounted_having_fetched_nothing_itself() {
    need_fuse!();
    let Some(img) = fixture_image("remote-exit", &["-comp", "gzip"]) else {
        return;
    };
    let www = scratch("www").join("remote-exit");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::copy(&img, www.join("img.sqfs")).unwrap();
    let Some(srv) = Nginx::start(&www, "mount-exit", false) else {
        return;
    };
    let url = srv.url("img.sqfs");
    for (name, read_a_file) in [("exit-idle", false), ("exit-read", true)] {
        let m = Mounted::new(Path::new(&url), name, &["cache_dir=none"]);
        let pid = crate::server_pid(&m.dir).expect("the server runs");
        assert!(std::fs::read_dir(&m.dir).unwrap().count() > 0);
        if read_a_file {
            assert!(!std::fs::read(m.dir.join("data/text")).unwrap().is_empty());
        }
        crate::unmount(&m.dir);
        let gone = crate::wait_for(std::time::Duration::from_secs(10), || {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        });
        if !gone {
            // Do not leak it into the next tests.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        assert!(gone, "{name}: server {pid} still running after unmount");
    }
}
