use crate::{corpora, image_files, run, scratch, skip, sqfuse};
use sqfuse::check::check;
use sqfuse::cli::extract::{extract, ExtractOptions};
use sqfuse::{Image, OpenOptions};
use std::path::Path;

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("sqfs" | "sqs" | "img" | "bin" | "squashfs")
    )
}

fn open(p: &Path, offset: u64) -> Image {
    Image::open(
        p,
        &OpenOptions {
            offset: sqfuse::reader::Offset::At(offset),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_corpus_image_checks_and_extracts() {
    let dir = corpora().join("images");
    let mut n = 0;
    for p in image_files(&dir).into_iter().filter(|p| is_image(p)) {
        let img = open(&p, 0);
        let rep = check(&img);
        assert!(
            rep.is_sound(),
            "{}: {:?}",
            p.display(),
            rep.problems
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        assert!(rep.inodes > 0);
        let dest = scratch("corpus").join(format!("x{n}"));
        extract(&img, &dest, "/", ExtractOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 40, "only {n} corpus images found");
}

#[test]
fn sif_reads_at_offset_36864_like_the_plain_image() {
    let sif = corpora().join("images/sylabs-sif/one-group.sif");
    assert!(
        Image::open(&sif, &OpenOptions::default()).is_err(),
        "the SIF header is not a superblock"
    );
    let a = open(&sif, 36864);
    let b = open(&corpora().join("images/sylabs-sif/root.squashfs"), 0);
    assert!(check(&a).is_sound());
    let list = |i: Image| {
        let mut v = Vec::new();
        let view = sqfuse::view::ImageView::whole(std::sync::Arc::new(i)).unwrap();
        sqfuse::cli::ls::ls(
            &view,
            "/",
            sqfuse::cli::ls::LsOptions {
                long: true,
                recursive: true,
                ..Default::default()
            },
            &mut v,
        )
        .unwrap();
        v
    };
    assert_eq!(list(a), list(b));
    let out = run(sqfuse().args(["ls", "--offset", "36864"]).arg(&sif));
    assert!(!out.stdout.is_empty());
}

/// The expectations of dissect.squashfs's own test, for all six compressors
/// (the legacy lzma one included: the kernel cannot read it, we can).
#[test]
fn dissect_images_match_their_published_expectations() {
    let dir = corpora().join("images/dissect.squashfs");
    let large: Vec<u8> = (0..4)
        .flat_map(|_| (0..255u8).flat_map(|i| std::iter::repeat_n(i, 4096)))
        .collect();
    for name in ["gzip", "gzip-opts", "lz4", "lzma", "lzo", "xz", "zstd"] {
        let img = open(&dir.join(format!("{name}.sqfs")), 0);
        let root = img.root().unwrap();
        let names: Vec<String> = img
            .read_dir(&root)
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().name).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dir",
                "file-with-xattr",
                "large-file",
                "small-file",
                "symlink-1",
                "symlink-2",
                "symlink-with-xattr"
            ],
            "{name}"
        );
        let (small, _) = img.lookup_path("small-file").unwrap();
        assert_eq!(small.size(), 9);
        assert_eq!(small.mtime, 1670266385, "2022-12-05 18:53:05 UTC");
        let mut buf = vec![0; 9];
        assert_eq!(
            img.read_at(&img.open_file(&small).unwrap(), 0, &mut buf)
                .unwrap(),
            9
        );
        assert_eq!(buf, b"contents\n");
        let (big, _) = img.lookup_path("large-file").unwrap();
        let mut data = vec![0; large.len()];
        assert_eq!(
            img.read_at(&img.open_file(&big).unwrap(), 0, &mut data)
                .unwrap(),
            large.len()
        );
        assert!(data == large, "{name}: large-file content");
        // A read at an unaligned offset across a block boundary.
        let mut mid = vec![0; 10000];
        img.read_at(&img.open_file(&big).unwrap(), 131072 - 5000, &mut mid)
            .unwrap();
        assert_eq!(mid, large[131072 - 5000..131072 + 5000]);
        let (s2, _) = img.lookup_path("symlink-2").unwrap();
        assert_eq!(
            s2.data,
            sqfuse::format::inode::InodeData::Symlink(b"dir/file_69".to_vec())
        );
        let (d, _) = img.lookup_path("dir").unwrap();
        assert_eq!(d.size(), 1507);
        assert_eq!(img.read_dir(&d).unwrap().count(), 100);
        let out = run(sqfuse()
            .arg("cat")
            .arg(dir.join(format!("{name}.sqfs")))
            .arg("small-file"));
        assert_eq!(out.stdout, b"contents\n");
    }
}

/// Images made by tar2sqfs: sparse files read back as holes and data,
/// and huge uids come through the id table.
#[test]
fn tar2sqfs_sparse_and_large_ids() {
    let dir = corpora().join("images/sqfs-ng-tar2sqfs/data");
    for p in image_files(&dir.join("sparse-files")) {
        let img = open(&p, 0);
        let root = img.root().unwrap();
        for e in img.read_dir(&root).unwrap() {
            let i = img.inode(e.unwrap().inode_ref).unwrap();
            if let Ok(f) = img.open_file(&i) {
                let mut total = 0u64;
                let mut zeros = 0u64;
                img.for_each_chunk(&f, |c| {
                    total += c.len() as u64;
                    zeros += c.bytes().iter().filter(|&&b| b == 0).count() as u64;
                    Ok(())
                })
                .unwrap();
                assert_eq!(total, f.size());
                assert!(
                    zeros > total / 2,
                    "{}: sparse file should be mostly zeros",
                    p.display()
                );
            }
        }
    }
    let img = open(&dir.join("user-group-largenum/gnu.sqfs"), 0);
    assert!(
        img.ids().iter().any(|&id| id > 65535),
        "large ids: {:?}",
        img.ids()
    );
}

#[test]
fn info_json_describes_compressor_options() {
    let p = corpora().join("images/dissect.squashfs/gzip-opts.sqfs");
    let out = run(sqfuse().args(["info", "--json"]).arg(&p));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["compressor"], "gzip");
    assert!(v["compressor_options"]["level"].is_string(), "{v}");
    assert_eq!(v["version"], "4.0");
    let text = run(sqfuse().arg("info").arg(&p));
    assert!(String::from_utf8_lossy(&text.stdout).contains("compressor:      gzip (level="));
}

/// Regression: an image truncated while open must give errors, not SIGBUS,
/// when opened in `pread` mode (as the mount does).
#[test]
fn pread_mode_reads_the_same_and_survives_truncation() {
    let src = corpora().join("images/dissect.squashfs/zstd.sqfs");
    let copy = scratch("pread").join("img.sqfs");
    std::fs::copy(&src, &copy).unwrap();
    // No data cache: `check` below would leave the late blocks cached.
    let opts = OpenOptions {
        pread: true,
        ..Default::default()
    };
    let img = Image::open(&copy, &opts).unwrap();
    assert!(check(&img).is_sound());
    let (big, _) = img.lookup_path("large-file").unwrap();
    let f = img.open_file(&big).unwrap();
    let mut a = vec![0; 300_000];
    let mut b = vec![0; 300_000];
    img.read_at(&f, 1000, &mut a).unwrap();
    open(&src, 0).read_at(&f, 1000, &mut b).unwrap();
    assert!(a == b);
    // Truncate to 200 bytes (the data area ends near 3 KiB): reads of the lost part fail, the process lives.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_len(200)
        .unwrap();
    let fresh = Image::open(&copy, &OpenOptions::default());
    assert!(fresh.is_err(), "a truncated image is refused at open");
    let mut c = vec![0; 300_000];
    let late = f.size() - 300_000;
    let r = Image::open(&src, &OpenOptions::default())
        .unwrap()
        .read_at(&f, late, &mut c);
    assert!(r.is_ok());
    let e = img.read_at(&f, late, &mut c);
    assert!(e.is_err(), "reading past the truncation must fail");
}

/// Regression: chown after setting xattrs made the kernel drop
/// security.capability (tar2sqfs's simple.sqfs has one on test.exe).
#[test]
fn extract_keeps_file_capabilities() {
    let img = corpora().join("images/sqfs-ng-tar2sqfs/data/write/simple.sqfs");
    if !crate::is_root() {
        skip!("setting security.capability needs root");
    }
    let dest = scratch("caps").join("out");
    run(sqfuse().arg("extract").arg(&img).arg(&dest));
    let x = crate::tree::xattrs(&dest.join("home/goliath/test.exe"));
    assert!(x.contains_key(&b"security.capability"[..]), "{x:?}");
    assert!(x.contains_key(&b"user.mime_type"[..]), "{x:?}");
}
