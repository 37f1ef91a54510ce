use crate::{
    fixture, fixture_image, is_mounted, need_fuse, scratch, server_pid, unmount, wait_for, Mounted,
};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The fixture with the second block of data/text damaged: the image, and
/// the offset of that block (relative to the superblock, as messages say).
fn damaged_image(name: &str) -> Option<(PathBuf, u64)> {
    let img = fixture_image("corrupt-src", &["-comp", "gzip", "-no-fragments"])?;
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("data/text").unwrap();
    let f = image.open_file(&inode).unwrap();
    let size = f.info().blocks[1].disk_size() as usize;
    let mut bytes = std::fs::read(&img).unwrap();
    let at = f.block_offset(1).unwrap();
    for b in &mut bytes[at as usize + 10..at as usize + size - 10] {
        *b ^= 0x5A;
    }
    let bad = scratch("corrupt").join(format!("{name}.sqfs"));
    std::fs::write(&bad, &bytes).unwrap();
    Some((bad, at))
}

/// A damaged data block fails its reads with EIO; other files still read
/// and the mount stays up.
#[test]
fn corrupt_block_is_eio_and_the_mount_survives() {
    need_fuse!();
    let Some((bad, _)) = damaged_image("bad") else {
        return;
    };
    let m = Mounted::new(&bad, "corrupt", &[]);
    let mut buf = Vec::new();
    let e = std::fs::File::open(m.dir.join("data/text"))
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    // The first block is intact and still reads (text compresses: its
    // blocks are stored compressed, so the damage is detected).
    let mut first = vec![0u8; 1000];
    std::fs::File::open(m.dir.join("data/text"))
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    assert_eq!(
        first,
        std::fs::read(fixture().join("data/text")).unwrap()[..1000]
    );
    for _ in 0..3 {
        assert_eq!(
            std::fs::read(m.dir.join("data/random")).unwrap(),
            std::fs::read(fixture().join("data/random")).unwrap()
        );
        let e = std::fs::read(m.dir.join("data/text")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }
    assert!(is_mounted(&m.dir), "the mount died");
    assert!(m.dir.join("links/one/target").is_file());
}

/// An image truncated while mounted: reads of lost blocks fail with EIO,
/// the server does not die (no SIGBUS: the mount reads with pread).
#[test]
fn image_truncated_while_mounted_gives_eio_not_a_crash() {
    need_fuse!();
    let Some(src) = fixture_image("truncate-src", &["-comp", "gzip", "-no-fragments"]) else {
        return;
    };
    let img = scratch("truncate").join("shrinking.sqfs");
    std::fs::copy(&src, &img).unwrap();
    let m = Mounted::new(&img, "truncate", &[]);
    // Look something up first so metadata is cached, then cut the data area.
    assert!(m.dir.join("data/text").is_file());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = std::fs::read(m.dir.join("data/text")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert!(is_mounted(&m.dir), "the server died");
    let _ = std::fs::read_dir(&m.dir).map(|d| d.count());
    assert!(is_mounted(&m.dir), "the server died listing the root");
}

/// Mounts `img` in the background on a fresh directory with `opts` and
/// `env`, reads the damaged file three times (EIO each time), unmounts and
/// waits for the server to end (it sends what is left of its log first).
fn read_damage_in_the_background(img: &Path, name: &str, opts: &[&str], env: &[(&str, &Path)]) {
    let (dir, mut cmd) = crate::mount_command(&[img], name, opts);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = server_pid(&dir).expect("a server");
    for _ in 0..3 {
        let e = std::fs::read(dir.join("data/text")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
    }
    unmount(&dir);
    assert!(wait_for(Duration::from_secs(10), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "))));
}

/// In the background stderr is gone: the damage is logged, once, to
/// syslog (the socket a syslog daemon or journald listens on).
#[test]
fn detached_mount_logs_damage_to_syslog_once() {
    need_fuse!();
    let Some((bad, at)) = damaged_image("syslog") else {
        return;
    };
    let sock_path = scratch("syslog").join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    read_damage_in_the_background(&bad, "syslog", &[], &[("SQFUSE_SYSLOG_SOCKET", &sock_path)]);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(got.len(), 1, "{got:?}");
    // Facility daemon, severity err; the tag and pid; the message, naming
    // the image.
    let want = format!(
        "]: read: {}: corrupt image at offset {at} (0x{at:x}): ",
        bad.display()
    );
    assert!(
        got[0].starts_with("<27>sqfuse[") && got[0].contains(&want),
        "{got:?}"
    );
}

/// -o log=FILE: the same messages, appended with a UTC time stamp to a
/// file only its owner reads.
#[test]
fn log_option_appends_damage_to_a_file_once() {
    use std::os::unix::fs::PermissionsExt;
    need_fuse!();
    let Some((bad, at)) = damaged_image("logfile") else {
        return;
    };
    let log = scratch("logfile").join("sqfuse.log");
    std::fs::write(&log, "earlier line\n").unwrap();
    let opt = format!("log={}", log.display());
    read_damage_in_the_background(&bad, "logfile", &[&opt], &[]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "earlier line", "appended, not overwritten");
    let re = regex::Regex::new(&format!(
        r"^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ sqfuse\[\d+\]: read: {}: corrupt image at offset {at} \(0x{at:x}\): ",
        regex::escape(&bad.display().to_string())
    ))
    .unwrap();
    assert!(re.is_match(lines[1]), "{text}");
    // A new log file is the user's alone (the image's paths are in it).
    let fresh = scratch("logfile").join("fresh.log");
    let opt = format!("log={}", fresh.display());
    read_damage_in_the_background(&bad, "logfile-fresh", &[&opt], &[]);
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
