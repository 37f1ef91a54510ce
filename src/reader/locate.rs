//! Finding a SquashFS image inside a larger file (AppImage, SIF, ELF).

use crate::error::{Error, Result};
use crate::format::superblock::{self, Superblock};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The offset of the first position in `path` holding a superblock that
/// validates against the rest of the file.
pub fn find_superblock(path: &Path) -> Result<u64> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    const CHUNK: usize = 1 << 20;
    // Keep the last superblock's worth of bytes of each chunk, so a match
    // across a chunk boundary is still parsed whole.
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK + superblock::SIZE);
    let mut window_start = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        window.extend_from_slice(&buf[..n]);
        let scan_end = if n == 0 {
            window.len()
        } else {
            window.len().saturating_sub(superblock::SIZE)
        };
        for i in 0..scan_end {
            if window[i..].starts_with(b"hsqs") {
                let at = window_start + i as u64;
                let head = &window[i..(i + superblock::SIZE).min(window.len())];
                if Superblock::parse(head, len - at).is_ok() {
                    return Ok(at);
                }
            }
        }
        if n == 0 {
            return Err(Error::not_found(format!(
                "no SquashFS superblock in {}",
                path.display()
            )));
        }
        window.drain(..scan_end);
        window_start += scan_end as u64;
    }
}
