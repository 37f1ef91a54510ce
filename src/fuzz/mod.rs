//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for the
//! test that replays their corpus and past crash inputs in `cargo test`.
//! Each takes arbitrary bytes and must return without panicking, hanging
//! or allocating without bound; errors are the expected outcome.
//!
//! Structure targets read their input as `[compressor, parameter, table
//! bytes...]`: the first byte picks one of the six compressors, the second
//! a bound the decoder needs (block size, count), the rest is a table of
//! metadata blocks as it would sit in an image.

#![doc(hidden)]

mod build;
pub use build::{header as tar_header, pax_record};

use crate::format::compressor::Compressor;
use crate::format::metadata::{self, MetaCursor, Uncached};
use crate::format::{dir, inode, superblock, table, xattr};
use crate::reader::{Image, OpenOptions, Step};

/// The target names, as `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*` name them.
pub const TARGETS: [&str; 11] = [
    "image",
    "superblock",
    "metadata",
    "inode",
    "dir",
    "xattr",
    "table",
    "tar",
    "tar_members",
    "oci_layout",
    "cli_text",
];

/// Runs target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "image" => image(data),
        "superblock" => superblock(data),
        "metadata" => metadata(data),
        "inode" => inode(data),
        "dir" => dir(data),
        "xattr" => xattr(data),
        "table" => table(data),
        "tar" => tar(data),
        "tar_members" => build::tar_members(data),
        "oci_layout" => build::oci_layout(data),
        "cli_text" => build::cli_text(data),
        _ => return false,
    }
    true
}

fn compressor(b: u8) -> Compressor {
    Compressor::from_id(u16::from(b % 6) + 1).expect("ids 1..=6 exist")
}

/// Splits `[compressor, parameter, rest...]`.
fn split(data: &[u8]) -> Option<(Compressor, u8, &[u8])> {
    match data {
        [c, p, rest @ ..] => Some((compressor(*c), *p, rest)),
        _ => None,
    }
}

/// The whole reader: open an image held in memory and read everything it
/// holds (what `check` reads: every inode, listing, index, xattr, id,
/// fragment, data block and the export table), list it, and look every
/// path up again through the directory index.
pub fn image(data: &[u8]) {
    let opts = OpenOptions {
        data_cache_blocks: 4,
        ..Default::default()
    };
    let Ok(img) = Image::from_bytes(data.to_vec(), &opts) else {
        return;
    };
    let _ = crate::check::check(&img);
    let Ok(root) = img.root() else { return };
    let Ok(walk) = img.walk(&root, img.root_ref()) else {
        return;
    };
    for step in walk.take(10_000) {
        let Ok(Step::Entry(e)) = step else { continue };
        if let Ok(path) = std::str::from_utf8(&e.path) {
            let _ = img.lookup_path(path);
        }
        if let Ok(f) = img.open_file(&e.inode) {
            let mut buf = [0u8; 300];
            let _ = img.read_at(&f, f.size() / 2, &mut buf);
        }
    }
    // The commands' output (with the binary's feature).
    #[cfg(feature = "cli")]
    {
        let mut sink = std::io::sink();
        let o = crate::cli::ls::LsOptions {
            long: true,
            recursive: true,
            json: false,
        };
        let _ = crate::cli::info::info(&img, true, &mut sink);
        if let Ok(view) = crate::view::ImageView::whole(std::sync::Arc::new(img)) {
            let _ = crate::cli::ls::ls(&view, "/", o, &mut sink);
        }
    }
}

/// The superblock decoders (SquashFS and dm-verity), against the input's
/// own length and an arbitrary one.
pub fn superblock(data: &[u8]) {
    if let Ok(p) = crate::format::verity::Params::parse(data, 0) {
        let _ = p.tree_blocks();
        let _ = p.path(p.data_blocks.wrapping_sub(1));
    }
    let _ = superblock::Superblock::parse(data, data.len() as u64);
    if data.len() >= superblock::SIZE + 8 {
        let len = u64::from_le_bytes(data[superblock::SIZE..][..8].try_into().unwrap());
        let _ = superblock::Superblock::parse(data, len);
    }
}

/// Metadata blocks one after another, and a cursor reading across them.
pub fn metadata(data: &[u8]) {
    let Some((c, skip, img)) = split(data) else {
        return;
    };
    let limit = img.len() as u64;
    let mut pos = 0;
    while let Ok(b) = metadata::read_block(img, c, pos, limit) {
        pos = b.next;
    }
    let src = Uncached {
        image: img,
        comp: c,
    };
    if let Ok(mut cur) = MetaCursor::new(&src, 0, limit, 0, usize::from(skip)) {
        let _ = cur.read_vec(u64::from(u16::MAX));
    }
    let _ = compressor_options(c, img);
}

fn compressor_options(c: Compressor, b: &[u8]) -> Option<()> {
    crate::format::compressor::CompressorOptions::parse(c, b).ok()?;
    Some(())
}

/// Inodes one after another, every type, for a block size the parameter picks.
pub fn inode(data: &[u8]) {
    let Some((c, p, img)) = split(data) else {
        return;
    };
    let block_size = 4096u32 << (p % 9);
    let src = Uncached {
        image: img,
        comp: c,
    };
    let Ok(mut cur) = MetaCursor::new(&src, 0, img.len() as u64, 0, 0) else {
        return;
    };
    for _ in 0..1000 {
        match inode::Inode::parse(&mut cur, block_size, u32::MAX) {
            Ok(i) => {
                // What decodes must encode again (the writer never panics).
                let _ = i.encode(&[], &mut Vec::new());
            }
            Err(_) => return,
        }
    }
}

/// A directory listing of the size the parameter scales, then the same
/// bytes as a directory index.
pub fn dir(data: &[u8]) {
    let Some((c, p, img)) = split(data) else {
        return;
    };
    let src = Uncached {
        image: img,
        comp: c,
    };
    let limit = img.len() as u64;
    if let Ok(cur) = MetaCursor::new(&src, 0, limit, 0, 0) {
        let bytes = u64::from(p) * 64;
        let _ = dir::DirReader::new(cur, bytes, u32::MAX)
            .take(100_000)
            .count();
    }
    if let Ok(mut cur) = MetaCursor::new(&src, 0, limit, 0, 0) {
        if let Ok(index) = dir::read_index(&mut cur, u16::from(p), u64::MAX) {
            let _ = dir::index_for(&index, b"m");
        }
    }
}

/// An xattr table whose 16-byte header sits at the end of the input,
/// followed by nothing: ids and key/value area before it.
pub fn xattr(data: &[u8]) {
    let Some((c, p, img)) = split(data) else {
        return;
    };
    let Some(at) = img.len().checked_sub(24) else {
        return;
    };
    let Ok(t) = xattr::XattrTable::load(img, at as u64, 0) else {
        return;
    };
    let src = Uncached {
        image: img,
        comp: c,
    };
    for i in 0..u32::from(p % 32) {
        let _ = t.get(&src, i);
    }
}

/// A lookup table of `parameter` entries whose block index ends the input;
/// the first byte picks the entry size too (ids 4, export 8, fragments 16).
pub fn table(data: &[u8]) {
    let Some((c, p, img)) = split(data) else {
        return;
    };
    let src = Uncached {
        image: img,
        comp: c,
    };
    let (count, size) = (u64::from(p), [4, 8, 16][usize::from(data[0] / 6 % 3)]);
    let blocks = (count * size as u64).div_ceil(8192);
    let Some(start) = (img.len() as u64).checked_sub(blocks * 8) else {
        return;
    };
    let Ok(t) = table::LookupTable::load("fuzz", img, start, count, size, 0) else {
        return;
    };
    let mut buf = vec![0u8; size];
    for i in 0..count.min(64) {
        if t.entry(&src, i, &mut buf).is_ok() && size == table::FragmentEntry::SIZE {
            let _ = table::FragmentEntry::parse(&buf[..].try_into().unwrap());
        }
    }
    let _ = crate::format::id::read_ids(img, &src, start, p.into(), 0);
}

/// The tar reader of `pack --tar`, spooling into a scratch directory.
pub fn tar(data: &[u8]) {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let spool = std::env::temp_dir().join(format!("sqfuse-fuzz-{}-{n}.spool", std::process::id()));
    let opts = crate::pack::PackOptions {
        threads: 1,
        ..Default::default()
    };
    let name = std::path::Path::new("fuzz.tar");
    let _ = crate::pack::tarsrc::read_tar(
        data,
        name,
        &spool,
        name,
        &opts,
        crate::pack::tarsrc::Whiteouts::Keep,
        &std::sync::atomic::AtomicU64::new(0),
    );
    let _ = std::fs::remove_file(&spool);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_target_takes_empty_and_tiny_inputs() {
        for t in super::TARGETS {
            for input in [&[][..], &[0], &[1, 2], &[0xff; 40]] {
                assert!(super::run(t, input), "{t}");
            }
        }
        assert!(!super::run("nope", &[]));
    }
}
