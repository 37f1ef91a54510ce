//! Finding a SquashFS image inside a larger file (AppImage, SIF, ELF).

use crate::error::{Error, Result};
use crate::format::superblock::{self, Superblock, MAGIC};
use crate::format::ByteSource;

/// The offset of the first position in `src` holding a superblock that
/// validates against the rest of the source.
pub fn find_superblock(src: &dyn ByteSource) -> Result<u64> {
    const CHUNK: u64 = 1 << 20;
    let len = src.size();
    let magic = MAGIC.to_le_bytes();
    let mut at = 0u64;
    while at < len {
        // Each chunk overlaps the next by a superblock, so a match across
        // a chunk boundary is parsed whole.
        let n = (len - at).min(CHUNK + superblock::SIZE as u64) as usize;
        let window = src.read_bytes(at, n)?;
        let scan_end = if at + (n as u64) < len {
            CHUNK as usize
        } else {
            n
        };
        for i in 0..scan_end.min(n) {
            if window[i..].starts_with(&magic) {
                let head = &window[i..(i + superblock::SIZE).min(n)];
                if Superblock::parse(head, len - at - i as u64).is_ok() {
                    return Ok(at + i as u64);
                }
            }
        }
        at += CHUNK;
    }
    Err(Error::not_found(
        "no SquashFS superblock anywhere in the file",
    ))
}

/// Whether the file starts like a wrapper that holds an image further in,
/// to hint at `offset=auto` when the superblock is not at 0.
pub fn wrapper_kind(head: &[u8]) -> Option<&'static str> {
    // A SIF file: a 32-byte launch script, then its magic.
    if head.starts_with(b"\x7fELF") {
        Some("an ELF executable (an AppImage?)")
    } else if head.get(32..41) == Some(b"SIF_MAGIC") {
        Some("a SIF container")
    } else {
        None
    }
}
