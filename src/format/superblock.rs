//! The 96-byte superblock at the start of the image.

use super::le::{u16_at, u32_at, u64_at};
use super::NONE_U64;
use crate::error::{Error, Result};

/// "hsqs" read little-endian: what every SquashFS 4.0 image starts with.
pub const MAGIC: u32 = 0x7371_7368;
/// Bytes of the superblock.
pub const SIZE: usize = 96;

/// Where each field lies in the superblock: what errors about a field name
/// as their offset.
pub mod field {
    /// The magic number.
    pub const MAGIC: u64 = 0;
    /// The inode count.
    pub const INODE_COUNT: u64 = 4;
    /// The creation time.
    pub const MKFS_TIME: u64 = 8;
    /// The block size.
    pub const BLOCK_SIZE: u64 = 12;
    /// The number of fragment entries.
    pub const FRAGMENT_ENTRY_COUNT: u64 = 16;
    /// The compressor's id.
    pub const COMPRESSION_ID: u64 = 20;
    /// log2 of the block size.
    pub const BLOCK_LOG: u64 = 22;
    /// The flags.
    pub const FLAGS: u64 = 24;
    /// The number of ids.
    pub const ID_COUNT: u64 = 26;
    /// The major version (4).
    pub const VERSION_MAJOR: u64 = 28;
    /// The minor version (0).
    pub const VERSION_MINOR: u64 = 30;
    /// The root inode's reference.
    pub const ROOT_INODE_REF: u64 = 32;
    /// The bytes the image uses.
    pub const BYTES_USED: u64 = 40;
    /// The id table's start.
    pub const ID_TABLE_START: u64 = 48;
    /// The xattr id table's start.
    pub const XATTR_ID_TABLE_START: u64 = 56;
    /// The inode table's start.
    pub const INODE_TABLE_START: u64 = 64;
    /// The directory table's start.
    pub const DIRECTORY_TABLE_START: u64 = 72;
    /// The fragment table's start.
    pub const FRAGMENT_TABLE_START: u64 = 80;
    /// The export table's start.
    pub const EXPORT_TABLE_START: u64 = 88;
}

/// The superblock's flag bits, as mksquashfs sets them.
pub mod flags {
    /// Inodes are stored uncompressed.
    pub const UNCOMPRESSED_INODES: u16 = 0x1;
    /// Data blocks are stored uncompressed.
    pub const UNCOMPRESSED_DATA: u16 = 0x2;
    /// Unused since 4.0 (the check-data option of earlier versions).
    pub const CHECK: u16 = 0x4;
    /// Fragment blocks are stored uncompressed.
    pub const UNCOMPRESSED_FRAGMENTS: u16 = 0x8;
    /// No fragments: every tail is a block of its own.
    pub const NO_FRAGMENTS: u16 = 0x10;
    /// Tails of files larger than a block are fragments too.
    pub const ALWAYS_FRAGMENTS: u16 = 0x20;
    /// Duplicate files were stored once.
    pub const DUPLICATES: u16 = 0x40;
    /// The image has an export table (inode number to inode).
    pub const EXPORTABLE: u16 = 0x80;
    /// Xattrs are stored uncompressed.
    pub const UNCOMPRESSED_XATTRS: u16 = 0x100;
    /// No xattrs were stored.
    pub const NO_XATTRS: u16 = 0x200;
    /// A compressor options record follows the superblock.
    pub const COMPRESSOR_OPTIONS: u16 = 0x400;
    /// The id table is stored uncompressed.
    pub const UNCOMPRESSED_IDS: u16 = 0x800;
}

/// A decoded superblock. Fields keep their on-disk meaning; absent tables
/// are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Inodes in the image.
    pub inode_count: u32,
    /// When the image was made, seconds since the epoch.
    pub mkfs_time: u32,
    /// Data block size, a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Fragment table entries.
    pub fragment_entry_count: u32,
    /// The compressor's id ([`crate::format::compressor::Compressor`]).
    pub compression_id: u16,
    /// log2 of `block_size` (checked against it).
    pub block_log: u16,
    /// The [`flags`] bits.
    pub flags: u16,
    /// Entries in the id table.
    pub id_count: u16,
    /// Format version, major (4).
    pub version_major: u16,
    /// Format version, minor (0).
    pub version_minor: u16,
    /// Where the root directory's inode is.
    pub root_inode_ref: u64,
    /// Bytes the image uses, from the superblock to the end of its last table.
    pub bytes_used: u64,
    /// Start of the id table's index.
    pub id_table_start: u64,
    /// Start of the xattr id table, if there are xattrs.
    pub xattr_id_table_start: Option<u64>,
    /// Start of the inode table.
    pub inode_table_start: u64,
    /// Start of the directory table.
    pub directory_table_start: u64,
    /// Start of the fragment table's index, if there are fragments.
    pub fragment_table_start: Option<u64>,
    /// Start of the export table's index, if there is one.
    pub export_table_start: Option<u64>,
}

fn opt(v: u64) -> Option<u64> {
    (v != NONE_U64).then_some(v)
}

impl Superblock {
    /// Decodes the superblock field by field, then validates it against an
    /// image of `image_len` bytes (counted from the superblock).
    pub fn parse(b: &[u8], image_len: u64) -> Result<Self> {
        if b.len() < SIZE {
            return Err(Error::corrupt(
                field::MAGIC,
                format!(
                    "image is {} byte{}, smaller than a superblock",
                    b.len(),
                    if b.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        let magic = u32_at(b, field::MAGIC as usize);
        if magic != MAGIC {
            let what = if magic.swap_bytes() == MAGIC {
                "big-endian SquashFS (version 3 or older) is not supported".to_string()
            } else {
                format!("bad magic 0x{magic:08x}, not a SquashFS image")
            };
            return Err(Error::unsupported(Some(0), what));
        }
        let sb = Superblock {
            inode_count: u32_at(b, field::INODE_COUNT as usize),
            mkfs_time: u32_at(b, field::MKFS_TIME as usize),
            block_size: u32_at(b, field::BLOCK_SIZE as usize),
            fragment_entry_count: u32_at(b, field::FRAGMENT_ENTRY_COUNT as usize),
            compression_id: u16_at(b, field::COMPRESSION_ID as usize),
            block_log: u16_at(b, field::BLOCK_LOG as usize),
            flags: u16_at(b, field::FLAGS as usize),
            id_count: u16_at(b, field::ID_COUNT as usize),
            version_major: u16_at(b, field::VERSION_MAJOR as usize),
            version_minor: u16_at(b, field::VERSION_MINOR as usize),
            root_inode_ref: u64_at(b, field::ROOT_INODE_REF as usize),
            bytes_used: u64_at(b, field::BYTES_USED as usize),
            id_table_start: u64_at(b, field::ID_TABLE_START as usize),
            xattr_id_table_start: opt(u64_at(b, field::XATTR_ID_TABLE_START as usize)),
            inode_table_start: u64_at(b, field::INODE_TABLE_START as usize),
            directory_table_start: u64_at(b, field::DIRECTORY_TABLE_START as usize),
            fragment_table_start: opt(u64_at(b, field::FRAGMENT_TABLE_START as usize)),
            export_table_start: opt(u64_at(b, field::EXPORT_TABLE_START as usize)),
        };
        sb.validate(image_len)?;
        Ok(sb)
    }

    fn validate(&self, image_len: u64) -> Result<()> {
        if (self.version_major, self.version_minor) != (4, 0) {
            return Err(Error::unsupported(
                Some(28),
                format!(
                    "SquashFS version {}.{}, only 4.0 is supported",
                    self.version_major, self.version_minor
                ),
            ));
        }
        let bs = self.block_size;
        if !bs.is_power_of_two() || !(4096..=1 << 20).contains(&bs) {
            return Err(Error::corrupt(
                field::BLOCK_SIZE,
                format!("block size {bs} is not a power of two in 4 KiB..1 MiB"),
            ));
        }
        if u32::from(self.block_log) != bs.trailing_zeros() {
            return Err(Error::corrupt(
                field::BLOCK_LOG,
                format!(
                    "block_log {} disagrees with block size {bs}",
                    self.block_log
                ),
            ));
        }
        if self.inode_count == 0 {
            return Err(Error::corrupt(field::INODE_COUNT, "inode count is zero"));
        }
        if self.id_count == 0 {
            return Err(Error::corrupt(field::ID_COUNT, "id count is zero"));
        }
        if self.bytes_used > image_len {
            return Err(Error::corrupt(
                field::BYTES_USED,
                format!(
                    "bytes_used {} is past the end of the image ({image_len} bytes): truncated?",
                    self.bytes_used
                ),
            ));
        }
        if self.bytes_used < SIZE as u64 {
            return Err(Error::corrupt(
                field::BYTES_USED,
                format!(
                    "bytes_used {} is smaller than the superblock",
                    self.bytes_used
                ),
            ));
        }
        let end = self.bytes_used;
        if self.inode_table_start < SIZE as u64
            || self.inode_table_start >= self.directory_table_start
        {
            return Err(Error::corrupt(
                field::INODE_TABLE_START,
                format!(
                    "inode table start {} is not between the superblock and the directory table ({})",
                    self.inode_table_start, self.directory_table_start
                ),
            ));
        }
        // Every lookup table follows the directory table and ends inside the image.
        let tables = [
            (48, "id table", Some(self.id_table_start)),
            (56, "xattr id table", self.xattr_id_table_start),
            (80, "fragment table", self.fragment_table_start),
            (88, "export table", self.export_table_start),
        ];
        for (field, name, start) in tables {
            if let Some(s) = start {
                if s < self.directory_table_start || s >= end {
                    return Err(Error::corrupt(
                        field,
                        format!(
                            "{name} start {s} is outside [{}, {end}) (after the directory table, before bytes_used)",
                            self.directory_table_start
                        ),
                    ));
                }
            }
        }
        if self.directory_table_start >= end {
            return Err(Error::corrupt(
                field::DIRECTORY_TABLE_START,
                format!(
                    "directory table start {} is past bytes_used",
                    self.directory_table_start
                ),
            ));
        }
        Ok(())
    }

    /// Encodes the superblock (the writer side of [`Superblock::parse`]).
    pub fn to_bytes(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        let none = |v: Option<u64>| v.unwrap_or(NONE_U64);
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&self.inode_count.to_le_bytes());
        b[8..12].copy_from_slice(&self.mkfs_time.to_le_bytes());
        b[12..16].copy_from_slice(&self.block_size.to_le_bytes());
        b[16..20].copy_from_slice(&self.fragment_entry_count.to_le_bytes());
        b[20..22].copy_from_slice(&self.compression_id.to_le_bytes());
        b[22..24].copy_from_slice(&self.block_log.to_le_bytes());
        b[24..26].copy_from_slice(&self.flags.to_le_bytes());
        b[26..28].copy_from_slice(&self.id_count.to_le_bytes());
        b[28..30].copy_from_slice(&self.version_major.to_le_bytes());
        b[30..32].copy_from_slice(&self.version_minor.to_le_bytes());
        b[32..40].copy_from_slice(&self.root_inode_ref.to_le_bytes());
        b[40..48].copy_from_slice(&self.bytes_used.to_le_bytes());
        b[48..56].copy_from_slice(&self.id_table_start.to_le_bytes());
        b[56..64].copy_from_slice(&none(self.xattr_id_table_start).to_le_bytes());
        b[64..72].copy_from_slice(&self.inode_table_start.to_le_bytes());
        b[72..80].copy_from_slice(&self.directory_table_start.to_le_bytes());
        b[80..88].copy_from_slice(&none(self.fragment_table_start).to_le_bytes());
        b[88..96].copy_from_slice(&none(self.export_table_start).to_le_bytes());
        b
    }

    /// Whether flag bit `flag` is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A superblock as mksquashfs 4.5 writes it for a tiny gzip image.
    fn fixture() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"hsqs"); // 0: magic
        b.extend_from_slice(&3u32.to_le_bytes()); // 4: inode_count
        b.extend_from_slice(&1_700_000_000u32.to_le_bytes()); // 8: mkfs_time
        b.extend_from_slice(&131072u32.to_le_bytes()); // 12: block_size
        b.extend_from_slice(&1u32.to_le_bytes()); // 16: fragment_entry_count
        b.extend_from_slice(&1u16.to_le_bytes()); // 20: compression id (gzip)
        b.extend_from_slice(&17u16.to_le_bytes()); // 22: block_log
        b.extend_from_slice(&0x00c0u16.to_le_bytes()); // 24: flags (dups, exportable)
        b.extend_from_slice(&1u16.to_le_bytes()); // 26: id_count
        b.extend_from_slice(&4u16.to_le_bytes()); // 28: version_major
        b.extend_from_slice(&0u16.to_le_bytes()); // 30: version_minor
        b.extend_from_slice(&0x60u64.to_le_bytes()); // 32: root_inode_ref
        b.extend_from_slice(&400u64.to_le_bytes()); // 40: bytes_used
        b.extend_from_slice(&380u64.to_le_bytes()); // 48: id_table_start
        b.extend_from_slice(&u64::MAX.to_le_bytes()); // 56: xattr_id_table_start (none)
        b.extend_from_slice(&200u64.to_le_bytes()); // 64: inode_table_start
        b.extend_from_slice(&280u64.to_le_bytes()); // 72: directory_table_start
        b.extend_from_slice(&340u64.to_le_bytes()); // 80: fragment_table_start
        b.extend_from_slice(&360u64.to_le_bytes()); // 88: export_table_start
        b
    }

    const _: () = assert!(SIZE == 96);

    #[test]
    fn decodes_every_field_and_round_trips() {
        let b = fixture();
        assert_eq!(b.len(), SIZE);
        let sb = Superblock::parse(&b, 4096).unwrap();
        assert_eq!(sb.inode_count, 3);
        assert_eq!(sb.block_size, 131072);
        assert_eq!(sb.compression_id, 1);
        assert_eq!(sb.xattr_id_table_start, None);
        assert_eq!(sb.fragment_table_start, Some(340));
        assert_eq!(sb.to_bytes().to_vec(), b);
    }

    #[test]
    fn rejects_bad_fields_with_their_offsets() {
        let cases: [(usize, &[u8], u64); 5] = [
            (12, &4095u32.to_le_bytes(), 12),
            (22, &16u16.to_le_bytes(), 22),
            (28, &3u16.to_le_bytes(), 28),
            (40, &5000u64.to_le_bytes(), 40),
            (48, &10u64.to_le_bytes(), 48),
        ];
        for (at, bytes, want) in cases {
            let mut b = fixture();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            let e = Superblock::parse(&b, 4096).unwrap_err();
            assert_eq!(e.offset, Some(want), "{e}");
        }
    }

    #[test]
    fn big_endian_magic_is_named() {
        let mut b = fixture();
        b[0..4].copy_from_slice(b"sqsh");
        let e = Superblock::parse(&b, 4096).unwrap_err();
        assert!(e.to_string().contains("big-endian"), "{e}");
    }
}
