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
    let f = image.file_info(&inode).unwrap();
    let offsets = image.block_offsets(f).unwrap();
    let size = (f.blocks[1] & 0xFF_FFFF) as usize;
    let mut bytes = std::fs::read(&img).unwrap();
    let at = offsets[1] as usize;
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
