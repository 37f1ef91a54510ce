//! Lookup tables (ids, fragments, export, xattr ids): fixed-size entries in
//! metadata blocks, found through a u64 array of block offsets at the
//! table's start.

use super::block::BlockWord;
use super::compressor::CompressSettings;
use super::le::{u32_at, u64_at};
use super::metadata::{MetaSource, MetaWriter};
use super::{ByteSource, METADATA_SIZE};
use crate::error::{Error, Result};

/// A table of fixed-size entries in metadata blocks, found through an index of block offsets (ids,
/// fragments, exports, xattr ids).
#[derive(Debug, Clone, Default)]
pub struct LookupTable {
    /// Which table, for messages.
    pub name: &'static str,
    /// Offset of the u64 block-offset array.
    pub start: u64,
    /// Image offsets of its metadata blocks, from the index.
    pub blocks: Vec<u64>,
    /// Bytes per entry.
    pub entry_size: usize,
    /// Entries in the table.
    pub count: u64,
}

impl LookupTable {
    /// Reads the block-offset array of a table of `count` entries. Each
    /// metadata block must lie in `[lower, start)`.
    pub fn load<B: ByteSource + ?Sized>(
        name: &'static str,
        image: &B,
        start: u64,
        count: u64,
        entry_size: usize,
        lower: u64,
    ) -> Result<Self> {
        let bytes = count
            .checked_mul(entry_size as u64)
            .ok_or_else(|| Error::corrupt(start, format!("{name}: {count} entries overflow")))?;
        let nblocks = bytes.div_ceil(METADATA_SIZE as u64);
        let end = start
            .checked_add(nblocks * 8)
            .filter(|&e| e <= image.size())
            .ok_or_else(|| {
                Error::corrupt(
                    start,
                    format!("{name}: {count} entries need an index past the image end"),
                )
            })?;
        let index = image.read_bytes(start, (end - start) as usize)?;
        let mut blocks = Vec::with_capacity(nblocks as usize);
        for (i, at) in (start..end).step_by(8).enumerate() {
            let b = u64_at(&index, i * 8);
            if b < lower || b >= start {
                return Err(Error::corrupt(
                    at,
                    format!("{name}: metadata block offset {b} is outside [{lower}, {start})"),
                ));
            }
            if blocks.last().is_some_and(|&p| b <= p) {
                return Err(Error::corrupt(
                    at,
                    format!("{name}: metadata block offsets are not increasing"),
                ));
            }
            blocks.push(b);
        }
        Ok(LookupTable {
            name,
            start,
            blocks,
            entry_size,
            count,
        })
    }

    /// Copies entry `i` into `buf` (`entry_size` bytes).
    pub fn entry<S: MetaSource + ?Sized>(&self, src: &S, i: u64, buf: &mut [u8]) -> Result<()> {
        if i >= self.count {
            return Err(Error::corrupt(
                self.start,
                format!(
                    "{}: entry {i} is past the {} entries",
                    self.name, self.count
                ),
            ));
        }
        let byte = i * self.entry_size as u64;
        let blk = (byte / METADATA_SIZE as u64) as usize;
        let off = (byte % METADATA_SIZE as u64) as usize;
        let pos = self.blocks[blk];
        let limit = self.blocks.get(blk + 1).copied().unwrap_or(self.start);
        let b = src.meta_block(pos, limit)?;
        let Some(e) = b.data.get(off..off + self.entry_size) else {
            return Err(Error::corrupt(
                pos,
                format!(
                    "{}: block holds {} bytes, entry {i} needs {}",
                    self.name,
                    b.data.len(),
                    off + self.entry_size
                ),
            ));
        };
        buf.copy_from_slice(e);
        Ok(())
    }

    /// The lowest image offset the table occupies.
    pub fn first_block(&self) -> u64 {
        self.blocks.first().copied().unwrap_or(self.start)
    }
}

/// Appends a lookup table to `out` (which starts at image offset `at`): the
/// entries in metadata blocks, then `header` (the xattr id table's; empty
/// for the others), then the u64 image offset of each block (the writer
/// side of [`LookupTable::load`]). Returns the image offset of `header`,
/// which is what the superblock points at.
pub fn write_lookup_table(
    out: &mut Vec<u8>,
    at: u64,
    entries: &[u8],
    header: &[u8],
    settings: CompressSettings,
) -> u64 {
    let mut w = MetaWriter::new(settings);
    w.write(entries);
    let (bytes, starts) = w.finish();
    let base = at + out.len() as u64;
    out.extend_from_slice(&bytes);
    let start = at + out.len() as u64;
    out.extend_from_slice(header);
    for s in starts {
        out.extend_from_slice(&(base + s).to_le_bytes());
    }
    start
}

/// A fragment-table entry: where a fragment block lives and its size word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentEntry {
    /// Image offset of the fragment block.
    pub start: u64,
    /// Its size word (stored size, uncompressed bit).
    pub size: BlockWord,
}

impl FragmentEntry {
    /// Bytes of one entry.
    pub const SIZE: usize = 16;
    /// Decodes one entry.
    pub fn parse(b: &[u8; Self::SIZE]) -> Self {
        FragmentEntry {
            start: u64_at(b, 0),
            size: BlockWord(u32_at(b, 8)),
        }
    }
    /// The writer side of [`FragmentEntry::parse`] (the last 4 bytes are unused).
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.start.to_le_bytes());
        b[8..12].copy_from_slice(&self.size.0.to_le_bytes());
        b
    }
}

/// An export-table entry: the inode reference of inode number `i + 1`.
pub const EXPORT_ENTRY_SIZE: usize = 8;

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::{encode_block, Uncached};
    use super::*;

    #[test]
    fn id_table_entries_and_bounds() {
        // A stored metadata block of three u32 ids at 0, then its index at 14.
        let mut ids = Vec::new();
        for id in [0u32, 1000, 4_000_000_000] {
            ids.extend_from_slice(&id.to_le_bytes());
        }
        let mut img = encode_block(&ids, None); // 14 bytes: header, 3 ids
        img.extend_from_slice(&0u64.to_le_bytes()); // index: block at 0
        let t = LookupTable::load("id table", &img[..], 14, 3, 4, 0).unwrap();
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        let mut b = [0u8; 4];
        t.entry(&src, 2, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 4_000_000_000);
        assert!(t.entry(&src, 3, &mut b).is_err());
        // A block offset at or past the index is refused.
        let mut bad = img.clone();
        bad[14..22].copy_from_slice(&14u64.to_le_bytes());
        assert!(LookupTable::load("id table", &bad[..], 14, 3, 4, 0).is_err());
        // More entries than the block holds.
        let t = LookupTable::load("id table", &img[..], 14, 4, 4, 0).unwrap();
        assert!(t.entry(&src, 3, &mut b).is_err());
    }
}
