//! File contents: data blocks, sparse holes and fragment tails.

use super::Image;
use crate::error::{Error, Result};
use crate::format::block::BlockWord;
use crate::format::inode::{FileInfo, Inode, InodeData};
use crate::format::table::FragmentEntry;
use std::borrow::Cow;
use std::sync::Arc;

/// One piece of a file: a data block (or hole) or the fragment tail.
/// Cloning shares the decompressed block.
#[derive(Clone)]
pub enum Chunk {
    /// A hole: this many zero bytes, never stored.
    Zeros(usize),
    /// Bytes `start..end` of a decompressed block (a data block, or the
    /// fragment block holding the file's tail), shared with the cache.
    Shared(Arc<Vec<u8>>, usize, usize),
}

impl Chunk {
    /// Bytes in the chunk.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Zeros(n) => *n,
            Chunk::Shared(_, a, b) => b - a,
        }
    }
    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Its bytes (a hole's zeros made on demand).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Chunk::Zeros(n) => Cow::Owned(vec![0; *n]),
            Chunk::Shared(v, a, b) => Cow::Borrowed(&v[*a..*b]),
        }
    }
}

/// A chunk and where it lies in its file.
#[derive(Clone)]
pub struct PlacedChunk {
    /// The file offset of the chunk's first byte.
    pub file_offset: u64,
    /// The chunk.
    pub chunk: Chunk,
}

/// An open regular file: its inode's block list with each block's image
/// offset worked out (and checked) once, for every later read.
#[derive(Debug, Clone)]
pub struct FileReader {
    info: FileInfo,
    /// Image offset of each block in `info.blocks`.
    offsets: Vec<u64>,
    /// Bytes of the tail kept in a fragment (0: none).
    tail: usize,
}

impl FileReader {
    /// The inode's file fields.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }
    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.info.size
    }
    /// Where data block `n` starts, relative to the superblock.
    pub fn block_offset(&self, n: usize) -> Option<u64> {
        self.offsets.get(n).copied()
    }
    /// Chunks of the file: its blocks plus the fragment tail, if any.
    pub fn chunk_count(&self) -> usize {
        self.info.blocks.len() + usize::from(self.tail > 0)
    }
}

impl Image {
    /// Opens regular file `i` for reading.
    pub fn open_file(&self, i: &Inode) -> Result<FileReader> {
        let InodeData::File(info) = &i.data else {
            return Err(Error::invalid(format!(
                "inode {} is not a regular file",
                i.number
            )));
        };
        let mut pos = info.blocks_start;
        let mut offsets = Vec::with_capacity(info.blocks.len());
        for w in &info.blocks {
            offsets.push(pos);
            pos = pos
                .checked_add(u64::from(w.disk_size()))
                .filter(|&e| e <= self.sb.inode_table_start)
                .ok_or_else(|| {
                    Error::corrupt(info.blocks_start, "file data runs past the data area")
                })?;
        }
        let covered = info.blocks.len() as u64 * u64::from(self.sb.block_size);
        let tail = match info.fragment {
            Some(_) => info
                .size
                .saturating_sub(covered)
                .min(u64::from(self.sb.block_size)),
            None => 0,
        } as usize;
        Ok(FileReader {
            info: info.clone(),
            offsets,
            tail,
        })
    }

    /// Chunk `n` of the file, decompressed, of its exact length.
    pub fn read_chunk(&self, f: &FileReader, n: usize) -> Result<Chunk> {
        let bs = u64::from(self.sb.block_size);
        let info = &f.info;
        if let (Some(&word), Some(&start)) = (info.blocks.get(n), f.offsets.get(n)) {
            let want = (info.size - n as u64 * bs).min(bs) as usize;
            if word.is_sparse() {
                return Ok(Chunk::Zeros(want));
            }
            let data = self
                .data_cache
                .get_or_load(start, || self.read_block(word, start))?;
            if data.len() != want {
                return Err(Error::corrupt(
                    start,
                    format!(
                        "data block holds {} bytes, the file needs {want}",
                        data.len()
                    ),
                ));
            }
            return Ok(Chunk::Shared(data, 0, want));
        }
        let (frag, off) = info
            .fragment
            .filter(|_| n == info.blocks.len() && f.tail > 0)
            .ok_or_else(|| Error::invalid("chunk past the end"))?;
        let block = self.fragment_block(frag)?;
        let a = off as usize;
        if a + f.tail > block.len() {
            return Err(Error::corrupt(
                self.fragment_entry(frag)?.start,
                format!(
                    "file tail of {} bytes at {a} is past fragment {frag}'s {} bytes",
                    f.tail,
                    block.len()
                ),
            ));
        }
        Ok(Chunk::Shared(block, a, a + f.tail))
    }

    /// The decompressed (non-sparse) data block at `pos`.
    fn read_block(&self, word: BlockWord, pos: u64) -> Result<Vec<u8>> {
        let raw = self.read_bytes(pos, word.disk_size() as usize)?;
        let data = if word.is_stored() {
            raw.into_owned()
        } else {
            self.compressor
                .decompress(&raw, self.sb.block_size as usize)
                .map_err(|e| Error::corrupt(pos, format!("data block: {e}")))?
        };
        self.block_read(pos, u64::from(word.disk_size()), data.len());
        Ok(data)
    }

    /// Fragment table entry `i`, checked against the table's size.
    pub fn fragment_entry(&self, i: u32) -> Result<FragmentEntry> {
        let t = self.fragments.as_ref().ok_or_else(|| {
            Error::corrupt(
                crate::format::superblock::field::FRAGMENT_TABLE_START,
                format!("a file names fragment {i} but there is no fragment table"),
            )
        })?;
        let mut b = [0u8; FragmentEntry::SIZE];
        t.entry(self, u64::from(i), &mut b)?;
        Ok(FragmentEntry::parse(&b))
    }

    /// The decompressed fragment block `i`, cached.
    pub fn fragment_block(&self, i: u32) -> Result<Arc<Vec<u8>>> {
        let e = self.fragment_entry(i)?;
        self.frag_cache.get_or_load(e.start, || {
            let size = u64::from(e.size.disk_size());
            if e.size.is_sparse() || !e.size.fits(self.sb.block_size) {
                return Err(Error::corrupt(
                    e.start,
                    format!("fragment {i} has a bad size word 0x{:x}", e.size.0),
                ));
            }
            let end = e
                .start
                .checked_add(size)
                .filter(|&x| x <= self.sb.inode_table_start)
                .ok_or_else(|| {
                    Error::corrupt(e.start, format!("fragment {i} lies outside the data area"))
                })?;
            let raw = self.read_bytes(e.start, (end - e.start) as usize)?;
            let data = if e.size.is_stored() {
                raw.into_owned()
            } else {
                self.compressor
                    .decompress(&raw, self.sb.block_size as usize)
                    .map_err(|m| Error::corrupt(e.start, format!("fragment block {i}: {m}")))?
            };
            self.block_read(e.start, end - e.start, data.len());
            Ok(data)
        })
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at EOF).
    pub fn read_at(&self, f: &FileReader, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(f.size());
        let mut done = 0;
        self.walk_range(f, offset, end, |chunk, at, k| {
            match chunk {
                Chunk::Zeros(_) => buf[done..done + k].fill(0),
                Chunk::Shared(v, a, _) => {
                    buf[done..done + k].copy_from_slice(&v[a + at..a + at + k])
                }
            }
            done += k;
        })?;
        Ok(done)
    }

    /// Walks the chunks covering `[offset, end)`, handing `sink` each chunk
    /// with the offset into it and the byte count wanted from it.
    fn walk_range(
        &self,
        f: &FileReader,
        offset: u64,
        end: u64,
        mut sink: impl FnMut(&Chunk, usize, usize),
    ) -> Result<()> {
        let bs = u64::from(self.sb.block_size);
        let mut pos = offset;
        while pos < end {
            let n = (pos / bs) as usize;
            let chunk = self.read_chunk(f, n)?;
            let chunk_off = (pos - n as u64 * bs) as usize;
            let k = (chunk.len().saturating_sub(chunk_off) as u64).min(end - pos) as usize;
            if k == 0 {
                return Err(Error::corrupt(
                    f.info.blocks_start,
                    "file data ends before its size",
                ));
            }
            sink(&chunk, chunk_off, k);
            pos += k as u64;
        }
        Ok(())
    }

    /// Up to `len` bytes at `offset` as a new vector, built by appending
    /// (no zero-fill of a buffer that is overwritten anyway), and the first
    /// chunk it came from with the file offset that chunk starts at (so a
    /// caller can reuse that block without fetching it again).
    pub fn read_vec(
        &self,
        f: &FileReader,
        offset: u64,
        len: usize,
    ) -> Result<(Vec<u8>, Option<PlacedChunk>)> {
        let end = offset.saturating_add(len as u64).min(f.size());
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut first = None;
        self.walk_range(f, offset, end, |chunk, at, k| {
            match chunk {
                Chunk::Zeros(_) => out.resize(out.len() + k, 0),
                Chunk::Shared(v, a, _) => out.extend_from_slice(&v[a + at..a + at + k]),
            }
            first.get_or_insert_with(|| PlacedChunk {
                // `at` is where in the chunk the read began.
                file_offset: offset - at as u64,
                chunk: chunk.clone(),
            });
        })?;
        Ok((out, first))
    }

    /// Calls `sink` with every chunk of the file in order.
    pub fn for_each_chunk(
        &self,
        f: &FileReader,
        mut sink: impl FnMut(&Chunk) -> Result<()>,
    ) -> Result<()> {
        for n in 0..f.chunk_count() {
            sink(&self.read_chunk(f, n)?)?;
        }
        Ok(())
    }
}
