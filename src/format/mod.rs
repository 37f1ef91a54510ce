//! The SquashFS 4.0 on-disk format: one module per structure, each decoding
//! little-endian fields one by one and validating them before use.
//! Nothing here knows about FUSE or threads.

pub mod compressor;
pub mod dir;
pub mod inode;
pub mod le;
pub mod metadata;
pub mod superblock;
pub mod table;
pub mod xattr;

/// Decompressed size of every metadata block but the last of a table.
pub const METADATA_SIZE: usize = 8192;
/// Sentinel for "no fragment", "no xattrs" and absent tables.
pub const NONE_U32: u32 = 0xFFFF_FFFF;
pub const NONE_U64: u64 = u64::MAX;
