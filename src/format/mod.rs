//! The SquashFS 4.0 on-disk format: one module per structure, each decoding
//! little-endian fields one by one and validating them before use.
//! Nothing here knows about FUSE or threads.

pub mod block;
pub mod compressor;
pub mod dir;
pub mod file_type;
pub mod id;
pub mod inode;
pub(crate) mod le;
pub mod metadata;
pub mod superblock;
pub mod table;
pub mod verity;
pub mod xattr;

#[cfg(test)]
mod roundtrip;

/// Decompressed size of every metadata block but the last of a table.
pub const METADATA_SIZE: usize = 8192;
/// Sentinel for "no fragment", "no xattrs" and absent tables.
pub const NONE_U32: u32 = 0xFFFF_FFFF;
/// The 64-bit "none" sentinel (absent tables).
pub const NONE_U64: u64 = u64::MAX;

/// Where image bytes come from: a slice (memory map, test fixture) or a
/// file read with `pread` (a mount, where a map of a file truncated
/// underneath would kill the process with SIGBUS).
pub trait ByteSource: Send + Sync {
    /// Image size in bytes, counted from the superblock.
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `pos`; an error if any lie past the end.
    fn read_bytes(&self, pos: u64, len: usize) -> crate::Result<std::borrow::Cow<'_, [u8]>>;
    /// Stops the threads the source runs (a network runtime), so that a
    /// fork carries none: a child would hold a runtime without its threads,
    /// which hangs when dropped. Started again when next needed.
    fn before_fork(&self) {}
    /// Hints that `len` bytes at `pos` will be read soon. A source that can
    /// start bringing them in without waiting (the kernel's read-ahead for
    /// a file) does so and returns true; false: nothing was done (read
    /// them to bring them in).
    fn will_need(&self, _pos: u64, _len: u64) -> bool {
        false
    }
}

impl ByteSource for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_bytes(&self, pos: u64, len: usize) -> crate::Result<std::borrow::Cow<'_, [u8]>> {
        pos.checked_add(len as u64)
            .filter(|&e| e <= self.len() as u64)
            .map(|e| std::borrow::Cow::Borrowed(&self[pos as usize..e as usize]))
            .ok_or_else(|| {
                crate::Error::corrupt(
                    pos,
                    format!(
                        "{len} bytes at {pos} run past the image end ({})",
                        self.len()
                    ),
                )
            })
    }
}
