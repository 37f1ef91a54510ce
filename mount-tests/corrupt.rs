use crate::{fixture, fixture_image, is_mounted, need_fuse, scratch, Mounted};
use std::io::Read;

/// A damaged data block fails its reads with EIO; other files still read
/// and the mount stays up.
#[test]
fn corrupt_block_is_eio_and_the_mount_survives() {
    need_fuse!();
    let Some(img) = fixture_image("corrupt-src", &["-comp", "gzip", "-no-fragments"]) else {
        return;
    };
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("data/text").unwrap();
    let f = image.open_file(&inode).unwrap();
    let size = f.info().blocks[1].disk_size() as usize;
    let mut bytes = std::fs::read(&img).unwrap();
    let at = f.block_offset(1).unwrap() as usize;
    for b in &mut bytes[at + 10..at + size - 10] {
        *b ^= 0x5A;
    }
    let bad = scratch("corrupt").join("bad.sqfs");
    std::fs::write(&bad, &bytes).unwrap();
    drop(image);

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
