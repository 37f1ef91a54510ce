//! Directory listings (runs of entries sharing an inode block) and the
//! directory index of extended directories.

use super::file_type::FileType;
use super::metadata::{MetaCursor, MetaRef, MetaSource, MetaWriter};
use super::METADATA_SIZE;
use crate::error::{Error, Result};

/// Bytes of a run header: count, start block, inode number base.
pub const RUN_HEADER_SIZE: u64 = 12;
/// Bytes of an entry header before its name.
pub const ENTRY_HEADER_SIZE: u64 = 8;
/// Entries one run header may cover.
pub const MAX_RUN_ENTRIES: u32 = 256;
/// The range of an entry's inode number relative to its run's base (a
/// signed 16-bit delta).
pub const RUN_DELTA: std::ops::RangeInclusive<i64> = -32768..=32767;
/// Longest name a directory entry holds.
pub const MAX_NAME: usize = 256;
/// Deepest nesting sqfuse packs or walks: entries at most this many names
/// below the root. Deeper than any path Linux can name at once (PATH_MAX,
/// 4096 bytes, holds at most 2048 components); not a limit of the format.
/// A tree from outside (a directory, a tar stream, an image) that goes
/// deeper is refused with an error, never walked.
pub const MAX_DEPTH: usize = 2048;
/// What a directory inode's size counts beyond the listing's bytes (the
/// "." and ".." that are not stored).
pub const LISTING_SIZE_EXTRA: u32 = 3;

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name, any bytes but '/' and NUL (checked).
    pub name: Vec<u8>,
    /// The entry's inode, relative to the inode table.
    pub inode_ref: MetaRef,
    /// The entry's inode number.
    pub inode_number: u32,
    /// The type the entry states (its inode decides).
    pub file_type: FileType,
}

/// A name may be stored only if it is a single path component.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// Streams the entries of one listing, validating each: names sorted and
/// unique, inode numbers in range, the byte budget of the listing respected.
pub struct DirReader<'a, S: MetaSource + ?Sized> {
    c: MetaCursor<'a, S>,
    remaining: u64,
    run_left: u32,
    run_block: u32,
    run_base: u32,
    prev: Option<Vec<u8>>,
    inode_count: u32,
}

impl<'a, S: MetaSource + ?Sized> DirReader<'a, S> {
    /// `listing_bytes` is the listing size without the 3 the inode adds.
    pub fn new(c: MetaCursor<'a, S>, listing_bytes: u64, inode_count: u32) -> Self {
        DirReader {
            c,
            remaining: listing_bytes,
            run_left: 0,
            run_block: 0,
            run_base: 0,
            prev: None,
            inode_count,
        }
    }

    fn take(&mut self, n: u64) -> Result<()> {
        if n > self.remaining {
            return Err(Error::corrupt(
                self.c.pos(),
                "directory entry runs past the listing's size",
            ));
        }
        self.remaining -= n;
        Ok(())
    }

    /// The next entry, or `None` at the listing's end.
    pub fn next_entry(&mut self) -> Result<Option<DirEntry>> {
        let pos = self.c.pos();
        if self.run_left == 0 {
            if self.remaining == 0 {
                return Ok(None);
            }
            self.take(RUN_HEADER_SIZE)?;
            let count = self.c.u32()?;
            self.run_block = self.c.u32()?;
            self.run_base = self.c.u32()?;
            if count >= MAX_RUN_ENTRIES {
                return Err(Error::corrupt(
                    pos,
                    format!(
                        "directory run of {} entries (at most {MAX_RUN_ENTRIES})",
                        u64::from(count) + 1
                    ),
                ));
            }
            self.run_left = count + 1;
        }
        self.take(ENTRY_HEADER_SIZE)?;
        let offset = self.c.u16()?;
        let delta = self.c.u16()? as i16;
        let t = self.c.u16()?;
        let name_len = u64::from(self.c.u16()?) + 1;
        if name_len > MAX_NAME as u64 {
            return Err(Error::corrupt(
                pos,
                format!("directory entry name of {name_len} bytes (at most {MAX_NAME})"),
            ));
        }
        self.take(name_len)?;
        let name = self.c.read_vec(name_len)?;
        self.run_left -= 1;
        if !valid_name(&name) {
            return Err(Error::corrupt(
                pos,
                format!(
                    "directory entry name {:?} is not a plain file name",
                    String::from_utf8_lossy(&name)
                ),
            ));
        }
        if let Some(prev) = &self.prev {
            if name.as_slice() <= prev.as_slice() {
                return Err(Error::corrupt(
                    pos,
                    format!(
                        "directory entry {:?} is duplicated or out of order",
                        String::from_utf8_lossy(&name)
                    ),
                ));
            }
        }
        let number = i64::from(self.run_base) + i64::from(delta);
        if number < 1 || number > i64::from(self.inode_count) {
            return Err(Error::corrupt(
                pos,
                format!("directory entry inode number {number} is out of range"),
            ));
        }
        let file_type = FileType::from_dir_entry(t)
            .ok_or_else(|| Error::corrupt(pos, format!("directory entry type {t} is not 1..7")))?;
        if usize::from(offset) >= METADATA_SIZE {
            return Err(Error::corrupt(
                pos,
                format!("directory entry inode offset {offset} is past {METADATA_SIZE}"),
            ));
        }
        self.prev = Some(name.clone());
        Ok(Some(DirEntry {
            name,
            inode_ref: MetaRef::new(u64::from(self.run_block), offset),
            inode_number: number as u32,
            file_type,
        }))
    }
}

impl<S: MetaSource + ?Sized> Iterator for DirReader<'_, S> {
    type Item = Result<DirEntry>;
    fn next(&mut self) -> Option<Result<DirEntry>> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.remaining = 0; // an error ends the stream
                self.run_left = 0;
                Some(Err(e))
            }
        }
    }
}

/// One directory-index entry: the run header at byte `index` of the
/// listing lies in directory-table block `start`; `name` is its first name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The listing offset of the run this entry points at.
    pub index: u32,
    /// The metadata block (relative to the directory table) the run starts in.
    pub start: u32,
    /// The run's first name.
    pub name: Vec<u8>,
}

/// Reads `count` index entries that follow an extended directory inode.
pub fn read_index<S: MetaSource + ?Sized>(
    c: &mut MetaCursor<'_, S>,
    count: u16,
    listing_bytes: u64,
) -> Result<Vec<IndexEntry>> {
    let mut out: Vec<IndexEntry> = Vec::with_capacity(usize::from(count).min(1024));
    for _ in 0..count {
        let pos = c.pos();
        let index = c.u32()?;
        let start = c.u32()?;
        let name_len = u64::from(c.u32()?) + 1;
        if name_len > MAX_NAME as u64 {
            return Err(Error::corrupt(
                pos,
                format!("directory index name of {name_len} bytes"),
            ));
        }
        let name = c.read_vec(name_len)?;
        if u64::from(index) >= listing_bytes.max(1) {
            return Err(Error::corrupt(
                pos,
                format!("directory index points at byte {index} past the listing"),
            ));
        }
        if let Some(prev) = out.last() {
            if index <= prev.index || start < prev.start || name <= prev.name {
                return Err(Error::corrupt(
                    pos,
                    "directory index entries are out of order",
                ));
            }
        }
        out.push(IndexEntry { index, start, name });
    }
    Ok(out)
}

impl IndexEntry {
    /// The writer side of [`read_index`]'s decoding of one entry.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.name.is_empty() || self.name.len() > MAX_NAME {
            return Err(Error::invalid(format!(
                "directory index name of {} bytes",
                self.name.len()
            )));
        }
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.start.to_le_bytes());
        out.extend_from_slice(&(self.name.len() as u32 - 1).to_le_bytes());
        out.extend_from_slice(&self.name);
        Ok(())
    }
}

/// One entry for [`write_listing`]: a name and the inode it names.
#[derive(Debug, Clone, Copy)]
pub struct ListingEntry<'a> {
    /// The entry's name.
    pub name: &'a [u8],
    /// Its inode number.
    pub inode_number: u32,
    /// The inode's place, relative to the inode table.
    pub inode_ref: MetaRef,
    /// Its type.
    pub file_type: FileType,
}

/// Where [`write_listing`] put a listing: what the directory inode stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenListing {
    /// Block (relative to the directory table) and offset of the first run.
    pub block: u32,
    /// Offset of the first run inside that block.
    pub offset: u16,
    /// The size the inode stores: the listing's bytes plus 3.
    pub size: u32,
    /// An entry for each run that starts in a later metadata block than the
    /// one before it (the kernel's lookup skips ahead with them).
    pub index: Vec<IndexEntry>,
}

/// Writes a directory listing (the writer side of [`DirReader`]) as
/// mksquashfs lays it out, so that both make the same listings: entries,
/// sorted by name, in runs that share an inode block, hold at most 256
/// entries and keep each inode number within a 16-bit delta of the run's
/// first; and a new run, with an index entry, whenever the listing has
/// grown by a metadata block's worth since the last index point, so a
/// lookup through the index reads at most about one block of entries.
pub fn write_listing(w: &mut MetaWriter, entries: &[ListingEntry<'_>]) -> Result<WrittenListing> {
    for (i, e) in entries.iter().enumerate() {
        if !valid_name(e.name) || e.name.len() > MAX_NAME {
            return Err(Error::invalid(format!(
                "directory entry name {:?} cannot be stored",
                String::from_utf8_lossy(e.name)
            )));
        }
        if i > 0 && entries[i - 1].name >= e.name {
            return Err(Error::invalid(format!(
                "directory entry {:?} is duplicated or out of order",
                String::from_utf8_lossy(e.name)
            )));
        }
    }
    /// The run being filled: where its header is, its entries, its base.
    struct Run {
        header_at: usize,
        count: u32,
        block: u64,
        base: u32,
    }
    fn close(buf: &mut [u8], r: &Run) {
        buf[r.header_at..r.header_at + 4].copy_from_slice(&(r.count - 1).to_le_bytes());
        buf[r.header_at + 4..r.header_at + 8].copy_from_slice(&(r.block as u32).to_le_bytes());
        buf[r.header_at + 8..r.header_at + 12].copy_from_slice(&r.base.to_le_bytes());
    }
    let mut buf: Vec<u8> = Vec::new();
    // WrittenListing offsets of the index points, with their runs' first names.
    let mut points: Vec<(u32, &[u8])> = Vec::new();
    let mut last_point = 0usize;
    let mut run: Option<Run> = None;
    for e in entries {
        let entry_size = ENTRY_HEADER_SIZE as usize + e.name.len();
        let block = e.inode_ref.block();
        let past_point = run.is_some() && buf.len() + entry_size - last_point > METADATA_SIZE;
        let new_run = match &run {
            None => true,
            Some(r) => {
                r.count == MAX_RUN_ENTRIES
                    || r.block != block
                    || past_point
                    || !RUN_DELTA.contains(&(i64::from(e.inode_number) - i64::from(r.base)))
            }
        };
        if new_run {
            if let Some(r) = &run {
                close(&mut buf, r);
                if past_point {
                    points.push((buf.len() as u32, e.name));
                    last_point = buf.len();
                }
            }
            run = Some(Run {
                header_at: buf.len(),
                count: 0,
                block,
                base: e.inode_number,
            });
            buf.extend_from_slice(&[0; RUN_HEADER_SIZE as usize]);
        }
        let r = run.as_mut().expect("a run is open");
        let delta = (i64::from(e.inode_number) - i64::from(r.base)) as i16;
        buf.extend_from_slice(&(e.inode_ref.offset() as u16).to_le_bytes());
        buf.extend_from_slice(&delta.to_le_bytes());
        buf.extend_from_slice(&e.file_type.dir_entry_type().to_le_bytes());
        buf.extend_from_slice(&(e.name.len() as u16 - 1).to_le_bytes());
        buf.extend_from_slice(e.name);
        r.count += 1;
    }
    if let Some(r) = &run {
        close(&mut buf, r);
    }
    let start = w.pos();
    let first = w.uncompressed_len();
    w.write(&buf);
    // Each index point's table block: where its byte landed.
    let index = points
        .into_iter()
        .map(|(at, name)| {
            let k = ((first + u64::from(at)) / METADATA_SIZE as u64) as usize;
            let block = w
                .block_start(k)
                .ok_or_else(|| Error::invalid("directory index past the table written"))?;
            Ok(IndexEntry {
                index: at,
                start: block as u32,
                name: name.to_vec(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(WrittenListing {
        block: start.block() as u32,
        offset: start.offset() as u16,
        size: buf.len() as u32 + LISTING_SIZE_EXTRA,
        index,
    })
}

/// The index entry to start a lookup of `name` from: the last whose first
/// name is not greater than `name`.
pub fn index_for<'i>(index: &'i [IndexEntry], name: &[u8]) -> Option<&'i IndexEntry> {
    let n = index.partition_point(|e| e.name.as_slice() <= name);
    n.checked_sub(1).map(|i| &index[i])
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::{encode_block, Uncached};
    use super::*;

    fn listing(entries: &[(&[u8], i16)]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&(entries.len() as u32 - 1).to_le_bytes()); // count - 1
        p.extend_from_slice(&0u32.to_le_bytes()); // inode block
        p.extend_from_slice(&5u32.to_le_bytes()); // base inode number
        for (name, delta) in entries {
            p.extend_from_slice(&32u16.to_le_bytes()); // offset in inode block
            p.extend_from_slice(&delta.to_le_bytes()); // inode delta
            p.extend_from_slice(&2u16.to_le_bytes()); // type: file
            p.extend_from_slice(&(name.len() as u16 - 1).to_le_bytes()); // name size - 1
            p.extend_from_slice(name);
        }
        encode_block(&p, None)
    }

    fn read_all(img: &[u8]) -> Result<Vec<DirEntry>> {
        let src = Uncached {
            image: img,
            comp: Compressor::Gzip,
        };
        let c = MetaCursor::new(&src, 0, img.len() as u64, 0, 0)?;
        DirReader::new(c, img.len() as u64 - 2, 100).collect()
    }

    #[test]
    fn reads_a_run() {
        let e = read_all(&listing(&[(b"a", 0), (b"b", 1), (b"c d", -2)])).unwrap();
        let names: Vec<_> = e
            .iter()
            .map(|e| (e.name.as_slice(), e.inode_number))
            .collect();
        assert_eq!(
            names,
            vec![(&b"a"[..], 5), (&b"b"[..], 6), (&b"c d"[..], 3)]
        );
    }

    #[test]
    fn refuses_duplicates_traversal_and_disorder() {
        assert!(read_all(&listing(&[(b"DIR", 0), (b"DIR", 1)])).is_err());
        assert!(read_all(&listing(&[(b"..", 0)])).is_err());
        assert!(read_all(&listing(&[(b"a/b", 0)])).is_err());
        assert!(read_all(&listing(&[(b"b", 0), (b"a", 1)])).is_err());
        assert!(read_all(&listing(&[(b"a", -5)])).is_err()); // inode number 0
    }

    #[test]
    fn index_choice() {
        let ix = vec![
            IndexEntry {
                index: 0,
                start: 0,
                name: b"a".to_vec(),
            },
            IndexEntry {
                index: 8000,
                start: 100,
                name: b"m".to_vec(),
            },
        ];
        assert_eq!(index_for(&ix, b"z").unwrap().index, 8000);
        assert_eq!(index_for(&ix, b"m").unwrap().index, 8000);
        assert_eq!(index_for(&ix, b"b").unwrap().index, 0);
        assert!(index_for(&ix, b"0").is_none());
    }
}
