//! sqfuse as a library, with its default features off (no command line,
//! FUSE, async runtime, HTTP or progress crates): pack a directory, open
//! the image, list every entry, and copy one file to standard output.
//!
//! ```sh
//! cargo run --no-default-features --example library -- DIR IMAGE [PATH]
//! ```

use sqfuse::format::inode::FileType;
use sqfuse::pack::{pack, PackOptions};
use sqfuse::reader::{Chunk, Step};
use sqfuse::{Image, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, image, path) = match args.as_slice() {
        [d, i] => (d, i, None),
        [d, i, p] => (d, i, Some(p)),
        _ => return Err("usage: library DIR IMAGE [PATH]".into()),
    };
    let image = PathBuf::from(image);

    // Pack: zstd, 128 KiB blocks, every core; the same bytes for any
    // thread count. `force` replaces an existing IMAGE.
    let opts = PackOptions {
        force: true,
        ..PackOptions::default()
    };
    let report = pack(&[PathBuf::from(dir)], &image, &opts)?;
    eprintln!(
        "packed {} files into {} bytes",
        report.files, report.image_size
    );

    // Open and list: one walk, depth first, each directory entered once.
    let img = Image::open(&image, &OpenOptions::default())?;
    let root = img.root()?;
    for step in img.walk(&root, img.root_ref())? {
        let Step::Entry(e) = step? else { continue };
        let kind = match e.inode.file_type() {
            FileType::Dir => 'd',
            FileType::File => '-',
            FileType::Symlink => 'l',
            _ => '?',
        };
        println!(
            "{kind} {:>10} {}",
            e.inode.size(),
            String::from_utf8_lossy(&e.path)
        );
    }

    // Read one file, block by block (holes come back as runs of zeros).
    if let Some(p) = path {
        let (inode, _) = img.lookup_path(p)?;
        let file = img.open_file(&inode)?;
        let mut out = std::io::stdout().lock();
        img.for_each_chunk(&file, |chunk: &Chunk| {
            out.write_all(&chunk.bytes())
                .map_err(|e| sqfuse::Error::io("writing standard output", e))
        })?;
    }
    Ok(())
}
