use crate::{have, is_mounted, need_fuse, run, scratch, Mounted};
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Command;

const BLOCK: usize = 128 << 10;
const BLOCKS: usize = 40;

/// Compressible but not repetitive: every block differs, so a block served
/// from the wrong place shows.
fn content() -> Vec<u8> {
    let len = BLOCKS * BLOCK + 777;
    let mut v = Vec::with_capacity(len + 64);
    let mut x: u32 = 12345;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let line = format!("line {} value {}\n", v.len(), x >> 16);
        v.extend_from_slice(line.as_bytes());
    }
    v.truncate(len);
    v
}

/// An image (mksquashfs, 128 KiB blocks, no fragments) of one multi-block
/// file, and that file's bytes.
fn image(name: &str) -> Option<(PathBuf, Vec<u8>)> {
    if !have("mksquashfs") {
        crate::skipped("mksquashfs missing (apt-get install squashfs-tools)", false);
        return None;
    }
    let dir = scratch(name);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = content();
    std::fs::write(src.join("big"), &data).unwrap();
    let img = dir.join("big.sqfs");
    run(Command::new("mksquashfs")
        .arg(&src)
        .arg(&img)
        .args(["-noappend", "-quiet", "-no-progress", "-comp", "zstd"])
        .args(["-b", "131072", "-no-fragments"]));
    Some((img, data))
}

/// Reads the file front to back in `chunk`-byte reads.
fn read_in(path: &std::path::Path, chunk: usize) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Sequential readers (small and large reads, two at once on one file)
/// get the source's bytes with prefetching off, on, deep, and with a cache
/// too small to hold what it would prefetch.
#[test]
fn sequential_reads_with_prefetch_return_the_source_bytes() {
    need_fuse!();
    let Some((img, data)) = image("prefetch") else {
        return;
    };
    for (i, opts) in [
        vec!["prefetch=0"],
        vec![],
        vec!["prefetch=32"],
        vec!["prefetch=32", "cache_mb=1"],
    ]
    .into_iter()
    .enumerate()
    {
        let m = Mounted::new(&img, &format!("prefetch-{i}"), &opts);
        let p = m.dir.join("big");
        assert!(read_in(&p, 4096).unwrap() == data, "{opts:?}: 4 KiB reads");
        assert!(
            read_in(&p, 1 << 20).unwrap() == data,
            "{opts:?}: 1 MiB reads"
        );
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| read_in(&p, 64 << 10).unwrap());
            let b = s.spawn(|| read_in(&p, 200_000).unwrap());
            (a.join().unwrap(), b.join().unwrap())
        });
        assert!(a == data && b == data, "{opts:?}: two readers at once");
    }
}

/// A damaged block met by the prefetcher: its reads fail with EIO, blocks
/// before and after it still read (a failed prefetch caches nothing), and
/// the mount stays up.
#[test]
fn prefetched_corrupt_block_is_eio_and_the_rest_reads() {
    need_fuse!();
    let Some((img, data)) = image("prefetch-corrupt") else {
        return;
    };
    let image = sqfuse::Image::open(&img, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("big").unwrap();
    let f = image.open_file(&inode).unwrap();
    let bad_block = 10;
    let size = f.info().blocks[bad_block].disk_size() as usize;
    let mut bytes = std::fs::read(&img).unwrap();
    let at = f.block_offset(bad_block).unwrap() as usize;
    for b in &mut bytes[at + 10..at + size - 10] {
        *b ^= 0x5A;
    }
    let bad = img.with_file_name("bad.sqfs");
    std::fs::write(&bad, &bytes).unwrap();
    drop(image);

    let m = Mounted::new(&bad, "prefetch-corrupt", &["prefetch=8"]);
    let p = m.dir.join("big");
    for _ in 0..2 {
        // Sequential up to the damage: the prefetcher decodes block 10
        // (and fails) before the reader gets there.
        let mut fh = std::fs::File::open(&p).unwrap();
        let mut head = vec![0u8; bad_block * BLOCK];
        fh.read_exact(&mut head).unwrap();
        assert!(
            head == data[..bad_block * BLOCK],
            "blocks before the damage"
        );
        let mut one = vec![0u8; 4096];
        let e = fh.read_exact(&mut one).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
        // Past it, on the same handle and sequentially from there.
        fh.seek(SeekFrom::Start(((bad_block + 1) * BLOCK) as u64))
            .unwrap();
        let mut tail = Vec::new();
        fh.read_to_end(&mut tail).unwrap();
        assert!(
            tail == data[(bad_block + 1) * BLOCK..],
            "blocks after the damage"
        );
    }
    assert!(is_mounted(&m.dir), "the mount died");
}

/// A directory of small files (and an empty one, and one of several
/// blocks), each different, packed by sqfuse: (source, image).
fn small_files(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d/sub")).unwrap();
    for k in 0..200u64 {
        let len = 200 + (k as usize * 37) % 4000;
        let data = crate::noise(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, len);
        std::fs::write(src.join(format!("d/f{k:03}")), data).unwrap();
    }
    std::fs::write(src.join("d/empty"), b"").unwrap();
    std::fs::write(src.join("d/big"), crate::noise(7, 3 * BLOCK + 5)).unwrap();
    std::fs::write(src.join("d/sub/inner"), b"inner\n").unwrap();
    let img = dir.join("small.sqfs");
    run(crate::sqfuse()
        .arg("pack")
        .arg(&src)
        .arg(&img)
        .args(["-f", "-q", "-c", "zstd", "-b", "128K"]));
    (src, img)
}

/// Reads every file of `d` in listing order, or backwards (pausing after
/// the fourth: two small files read one after the other show the walk,
/// and the pause lets what is pushed land), comparing each with the
/// source; returns how many were read.
fn read_each_file(mnt: &std::path::Path, src: &std::path::Path, backwards: bool) -> usize {
    let mut names: Vec<_> = std::fs::read_dir(mnt.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // read_dir gives the listing's order: keep it.
    names.retain(|n| n != "sub");
    if backwards {
        names.reverse();
    }
    for (i, n) in names.iter().enumerate() {
        let got = std::fs::read(mnt.join("d").join(n)).unwrap();
        let want = std::fs::read(src.join("d").join(n)).unwrap();
        assert!(
            got == want,
            "d/{} differs from the source",
            n.to_string_lossy()
        );
        if i == 3 {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
    names.len()
}

/// tar, cp -r and backups read a directory's files in listing order: after
/// the first, the rest are in the page cache already (fill-ahead), byte
/// for byte the source's; with `fill_ahead_kb=0` each is a READ.
#[test]
fn files_read_each_file_are_pushed_ahead() {
    need_fuse!();
    let (src, img) = small_files("fill-ahead");
    let on = Mounted::new(&img, "fill-ahead-on", &[]);
    let files = read_each_file(&on.dir, &src, false);
    let s = crate::stats(&on.dir);
    // The big file (listed first: its blocks) and the first small files,
    // then at most a file or two the pusher had not reached.
    assert!(
        s["read"] <= 12,
        "{} reads for {files} files: {s:?}",
        s["read"]
    );
    assert!(s["fill_ahead_files"] >= 190, "{s:?}");
    drop(on);

    // A reader going backwards is not walking the listing: nothing pushed.
    let back = Mounted::new(&img, "fill-ahead-back", &[]);
    read_each_file(&back.dir, &src, true);
    let s = crate::stats(&back.dir);
    assert_eq!(s["fill_ahead_files"], 0, "{s:?}");
    drop(back);

    let off = Mounted::new(&img, "fill-ahead-off", &["fill_ahead_kb=0"]);
    read_each_file(&off.dir, &src, false);
    let s = crate::stats(&off.dir);
    assert!(
        s["read"] >= 200,
        "{} reads without fill-ahead: {s:?}",
        s["read"]
    );
    assert_eq!(s["fill_ahead_files"], 0, "{s:?}");
}
