use crate::malformed::{bounded, exercise};
use crate::{corpora, scratch};
use std::time::Duration;

/// xorshift64*: a fixed-seed generator, so every run tests the same copies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Superblock fields as (offset, width) to overwrite with garbage.
const FIELDS: [(usize, usize); 18] = [
    (4, 4),
    (8, 4),
    (12, 4),
    (16, 4),
    (20, 2),
    (22, 2),
    (24, 2),
    (26, 2),
    (28, 2),
    (32, 8),
    (40, 8),
    (48, 8),
    (56, 8),
    (64, 8),
    (72, 8),
    (80, 8),
    (88, 8),
    (30, 2),
];

fn mutate(rng: &mut Rng, orig: &[u8]) -> Vec<u8> {
    let mut b = orig.to_vec();
    let tables = u64::from_le_bytes(b[64..72].try_into().unwrap()).min(b.len() as u64 - 1) as usize;
    match rng.below(10) {
        // Bit flips in the metadata tables, where structure lives.
        0..=4 => {
            for _ in 0..1 + rng.below(4) {
                let at = tables + rng.below((b.len() - tables) as u64) as usize;
                b[at] ^= 1 << rng.below(8);
            }
        }
        // Bit flips anywhere, data and superblock included.
        5 | 6 => {
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 << rng.below(8);
            }
        }
        // Truncation.
        7 => b.truncate(rng.below(b.len() as u64) as usize),
        // A superblock field set to garbage or an extreme.
        _ => {
            let (off, w) = FIELDS[rng.below(FIELDS.len() as u64) as usize];
            let v = match rng.below(4) {
                0 => 0,
                1 => u64::MAX,
                2 => rng.below(b.len() as u64 + 64),
                _ => rng.next(),
            };
            b[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
        }
    }
    b
}

#[test]
fn thousands_of_corrupted_images_never_panic_or_hang() {
    let base = corpora().join("images");
    let seeds = [
        "syzkaller/syz_squashfs_0_gzip_b4k_nofrag.img",
        "syzkaller/syz_squashfs_5_gzip_b4k_uncompressed_alwaysfrag_nopad.img",
        "sqfs-ng-tar2sqfs/data/write/simple.sqfs",
        "sqfs-ng-tar2sqfs/data/xattr/xattr-libarchive.sqfs",
        "sqfs-ng-tar2sqfs/data/sparse-files/gnu-small.sqfs",
        "go-diskfs/dir_read.sqs",
        "binwalk/squashfs.bin",
    ];
    let per_seed = 500;
    let mut rng = Rng(0x05ee_d0f5_f05e);
    let dir = scratch("mutation");
    let mut refused = 0;
    for seed in seeds {
        let orig = std::fs::read(base.join(seed)).unwrap();
        for i in 0..per_seed {
            let bytes = mutate(&mut rng, &orig);
            let img = dir.join("img");
            std::fs::write(&img, &bytes).unwrap();
            let dest = dir.join(format!("x{i}"));
            let d2 = dest.clone();
            let what = format!("{seed} mutation {i}");
            let failed = bounded(&what, Duration::from_secs(10), move || exercise(&img, &d2));
            refused += usize::from(failed);
            let _ = std::fs::remove_dir_all(&dest);
            if dest.exists() {
                // dir-000 style leftovers: make them removable.
                let _ = std::process::Command::new("chmod")
                    .args(["-R", "u+rwx"])
                    .arg(&dest)
                    .status();
                let _ = std::fs::remove_dir_all(&dest);
            }
        }
    }
    // Most corrupted copies must be caught; a few flips land in padding or data.
    assert!(
        refused > seeds.len() * per_seed / 3,
        "only {refused} of the corrupted images were refused"
    );
}

/// The same mutations with verity on: a mutated copy is refused, or reads
/// fail where it changed; a read that succeeds returns the original's
/// bytes. Never a changed byte served.
#[test]
fn mutated_images_are_never_served_under_verity() {
    use sqfuse::reader::verity::VerityOptions;
    use sqfuse::reader::Step;
    let base = corpora().join("images");
    let seeds = [
        "syzkaller/syz_squashfs_0_gzip_b4k_nofrag.img",
        "sqfs-ng-tar2sqfs/data/write/simple.sqfs",
        "sqfs-ng-tar2sqfs/data/sparse-files/gnu-small.sqfs",
        "go-diskfs/dir_read.sqs",
    ];
    let dir = scratch("mutation-verity");
    let mut rng = Rng(0x7e51_7e51_0001);
    let (mut served, mut refused) = (0u64, 0u64);
    for seed in seeds {
        // A copy with a tree: what the original holds, path by path.
        let img = dir.join("orig.sqfs");
        std::fs::copy(base.join(seed), &img).unwrap();
        let _ = std::fs::set_permissions(&img, std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let out = crate::sqfuse()
            .args(["verity", "--salt", "01"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{seed}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("root hash: ")
            .to_string();
        let opts = sqfuse::OpenOptions {
            verity: Some(VerityOptions {
                root: hex::decode(&root).unwrap(),
                hash_file: None,
            }),
            ..Default::default()
        };
        let orig = std::fs::read(&img).unwrap();
        let contents = |image: &sqfuse::Image| -> Vec<(String, Option<Vec<u8>>)> {
            let mut out = Vec::new();
            let Ok(r) = image.root() else { return out };
            let Ok(walk) = image.walk(&r, image.root_ref()) else {
                return out;
            };
            for step in walk {
                if let Ok(Step::Entry(e)) = step {
                    let data = image.open_file(&e.inode).ok().and_then(|f| {
                        let mut v = Vec::new();
                        image
                            .for_each_chunk(&f, |c| {
                                v.extend_from_slice(&c.bytes());
                                Ok(())
                            })
                            .ok()
                            .map(|_| v)
                    });
                    out.push((String::from_utf8_lossy(&e.path).into_owned(), data));
                }
            }
            out
        };
        let want: std::collections::HashMap<String, Option<Vec<u8>>> =
            contents(&sqfuse::Image::open(&img, &opts).unwrap())
                .into_iter()
                .collect();
        for i in 0..250 {
            let bytes = mutate(&mut rng, &orig);
            if bytes == orig {
                continue;
            }
            let copy = dir.join("mutated.sqfs");
            std::fs::write(&copy, &bytes).unwrap();
            let Ok(image) = sqfuse::Image::open(&copy, &opts) else {
                refused += 1;
                continue;
            };
            for (path, data) in contents(&image) {
                let original = want.get(&path);
                assert!(
                    original.is_some(),
                    "{seed} mutation {i}: {path} appeared under verity"
                );
                if let (Some(got), Some(Some(w))) = (&data, original) {
                    assert!(got == w, "{seed} mutation {i}: {path} served changed bytes");
                    served += 1;
                }
            }
        }
    }
    assert!(
        refused > 0 && served > 0,
        "refused {refused}, served {served}"
    );
}
