//! The id table: every distinct uid and gid once, which inodes name by a
//! 16-bit index. Read and written here; stored as a lookup table.

use super::compressor::CompressSettings;
use super::metadata::MetaSource;
use super::table::{write_lookup_table, LookupTable};
use super::ByteSource;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Bytes of one id entry.
pub const ENTRY_SIZE: usize = 4;
/// Inodes hold a u16 index.
pub const MAX_IDS: usize = 1 << 16;

/// Loads the table of `count` ids at `start` (the superblock's
/// id_table_start and id_count); every block lies in `[lower, start)`.
pub fn read_ids<B, S>(image: &B, src: &S, start: u64, count: u16, lower: u64) -> Result<IdTable>
where
    B: ByteSource + ?Sized,
    S: MetaSource + ?Sized,
{
    let table = LookupTable::load(
        "id table",
        image,
        start,
        u64::from(count),
        ENTRY_SIZE,
        lower,
    )?;
    let mut ids = Vec::with_capacity(usize::from(count));
    let mut b = [0u8; ENTRY_SIZE];
    for i in 0..u64::from(count) {
        table.entry(src, i, &mut b)?;
        ids.push(u32::from_le_bytes(b));
    }
    Ok(IdTable { ids, table })
}

/// The ids of an image, and where their table lies.
#[derive(Debug, Clone, Default)]
pub struct IdTable {
    /// The ids, by index.
    pub ids: Vec<u32>,
    /// Where the id blocks are.
    pub table: LookupTable,
}

/// Collects ids in the order inodes first use them (the writer side).
#[derive(Debug, Default)]
pub struct IdTableWriter {
    list: Vec<u32>,
    map: HashMap<u32, u16>,
}

impl IdTableWriter {
    /// The index of `id`, added if new.
    pub fn index(&mut self, id: u32) -> Result<u16> {
        if let Some(&i) = self.map.get(&id) {
            return Ok(i);
        }
        let i = u16::try_from(self.list.len())
            .map_err(|_| Error::invalid(format!("more than {MAX_IDS} distinct uids and gids")))?;
        self.list.push(id);
        self.map.insert(id, i);
        Ok(i)
    }

    /// How many ids the table holds.
    pub fn len(&self) -> usize {
        self.list.len()
    }
    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Appends the table to `out` (starting at image offset `at`); returns
    /// the superblock's id_table_start.
    pub fn finish(&self, out: &mut Vec<u8>, at: u64, settings: CompressSettings) -> u64 {
        let entries: Vec<u8> = self.list.iter().flat_map(|i| i.to_le_bytes()).collect();
        write_lookup_table(out, at, &entries, &[], settings)
    }
}
