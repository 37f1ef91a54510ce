use crate::{fixture, fixture_image, need_fuse, Mounted};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 16 threads read random ranges of many files for 10 seconds; every byte
/// must equal the source.
#[test]
fn sixteen_threads_read_random_ranges_correctly() {
    need_fuse!();
    let Some(img) = fixture_image("stress", &["-comp", "zstd", "-b", "65536"]) else {
        return;
    };
    let m = Mounted::new(&img, "stress", &[]);
    let mut files = Vec::new();
    for dir in ["sizes", "data", "big-dir", "links/one"] {
        for e in std::fs::read_dir(fixture().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let rel = p.strip_prefix(fixture()).unwrap().to_path_buf();
                files.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    files.truncate(400);
    let files = Arc::new(files);
    let reads = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(10);
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let (files, reads, root) = (files.clone(), reads.clone(), m.dir.clone());
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                let mut rnd = move || {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x
                };
                let mut mine = 0;
                while Instant::now() < deadline {
                    let (rel, data) = &files[(rnd() % files.len() as u64) as usize];
                    let f = std::fs::File::open(root.join(rel)).unwrap();
                    for _ in 0..8 {
                        let off = rnd() % (data.len() as u64 + 1);
                        let len = (rnd() % 300_000) as usize;
                        let mut buf = vec![0u8; len];
                        let n = f.read_at(&mut buf, off).unwrap();
                        let end = (off as usize + len).min(data.len());
                        assert_eq!(n, end - off as usize, "{} at {off}+{len}", rel.display());
                        assert!(
                            buf[..n] == data[off as usize..end],
                            "{} at {off}+{len}: wrong bytes",
                            rel.display()
                        );
                        mine += 1;
                    }
                }
                reads.fetch_add(mine, Ordering::Relaxed);
                mine
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().expect("reader thread panicked") > 0);
    }
    eprintln!("stress: {} verified reads", reads.load(Ordering::Relaxed));
}

/// A 4 KiB read leaves the whole decompressed block in the page cache
/// (pushed with notify-store), as the kernel driver does; no_page_fill
/// turns that off.
#[test]
fn one_small_read_caches_its_whole_block() {
    need_fuse!();
    let Some(img) = fixture_image("pagefill", &["-comp", "zstd"]) else {
        return;
    };
    let resident = |mnt: &std::path::Path| -> usize {
        let f = std::fs::File::open(mnt.join("data/random")).unwrap();
        let mut first = [0u8; 4096];
        f.read_at(&mut first, 0).unwrap();
        let len = 131072usize;
        // SAFETY: a read-only shared mapping of an open file, unmapped below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&f),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        let mut best = 0;
        for _ in 0..40 {
            let mut vec = vec![0u8; len / 4096];
            unsafe { libc::mincore(p, len, vec.as_mut_ptr()) };
            best = best.max(vec.iter().filter(|&&b| b & 1 != 0).count());
            if best == len / 4096 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::munmap(p, len) };
        best
    };
    let on = Mounted::new(&img, "pagefill-on", &[]);
    let pages_on = resident(&on.dir);
    drop(on);
    let off = Mounted::new(&img, "pagefill-off", &["no_page_fill"]);
    let pages_off = resident(&off.dir);
    assert_eq!(
        pages_on, 32,
        "the whole 128 KiB block should be cached after one 4 KiB read"
    );
    assert!(
        pages_off < 32,
        "without page fill only what was read (plus read-ahead) is cached: {pages_off}"
    );
}
