//! File contents: data blocks, sparse holes and fragment tails.

use super::Image;
use crate::error::{Error, Result};
use crate::format::inode::{FileInfo, Inode, InodeData, BLOCK_SIZE_MASK, BLOCK_STORED};
use crate::format::table::FragmentEntry;
use std::borrow::Cow;
use std::sync::Arc;

/// One piece of a file: a data block (or hole) or the fragment tail.
/// Cloning shares the decompressed block.
#[derive(Clone)]
pub enum Chunk {
    Zeros(usize),
    Shared(Arc<Vec<u8>>, usize, usize),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Zeros(n) => *n,
            Chunk::Shared(_, a, b) => b - a,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Chunk::Zeros(n) => Cow::Owned(vec![0; *n]),
            Chunk::Shared(v, a, b) => Cow::Borrowed(&v[*a..*b]),
        }
    }
}

impl Image {
    pub fn file_info<'i>(&self, i: &'i Inode) -> Result<&'i FileInfo> {
        match &i.data {
            InodeData::File(f) => Ok(f),
            _ => Err(Error::invalid(format!(
                "inode {} is not a regular file",
                i.number
            ))),
        }
    }

    /// Number of chunks (blocks plus the fragment tail, if any).
    pub fn chunk_count(&self, f: &FileInfo) -> usize {
        f.blocks.len() + usize::from(f.fragment.is_some() && self.tail_len(f) > 0)
    }

    fn tail_len(&self, f: &FileInfo) -> usize {
        (f.size - f.blocks.len() as u64 * u64::from(self.sb.block_size))
            .min(u64::from(self.sb.block_size)) as usize
    }

    /// Image offsets of each block's start, checked against the data area.
    pub fn block_offsets(&self, f: &FileInfo) -> Result<Vec<u64>> {
        let mut pos = f.blocks_start;
        let mut out = Vec::with_capacity(f.blocks.len());
        for &w in &f.blocks {
            out.push(pos);
            pos = pos
                .checked_add(u64::from(w & BLOCK_SIZE_MASK))
                .filter(|&e| e <= self.sb.inode_table_start)
                .ok_or_else(|| {
                    Error::corrupt(f.blocks_start, "file data runs past the data area")
                })?;
        }
        Ok(out)
    }

    /// Chunk `n` of the file, decompressed, of its exact length.
    pub fn read_chunk(&self, f: &FileInfo, n: usize, block_start: u64) -> Result<Chunk> {
        let bs = u64::from(self.sb.block_size);
        if n < f.blocks.len() {
            let want = (f.size - n as u64 * bs).min(bs) as usize;
            let word = f.blocks[n];
            if word & BLOCK_SIZE_MASK == 0 {
                return Ok(Chunk::Zeros(want));
            }
            let data = self
                .data_cache
                .get_or_load(block_start, || self.read_block(word, block_start))?;
            if data.len() != want {
                return Err(Error::corrupt(
                    block_start,
                    format!(
                        "data block holds {} bytes, the file needs {want}",
                        data.len()
                    ),
                ));
            }
            return Ok(Chunk::Shared(data, 0, want));
        }
        let (frag, off) = f
            .fragment
            .filter(|_| n == f.blocks.len())
            .ok_or_else(|| Error::invalid("chunk past the end"))?;
        let tail = self.tail_len(f);
        let block = self.fragment_block(frag)?;
        let a = off as usize;
        if a + tail > block.len() {
            return Err(Error::corrupt(
                self.fragment_entry(frag)?.start,
                format!(
                    "file tail of {tail} bytes at {a} is past fragment {frag}'s {} bytes",
                    block.len()
                ),
            ));
        }
        Ok(Chunk::Shared(block, a, a + tail))
    }

    /// The decompressed (non-sparse) data block at `pos`.
    fn read_block(&self, word: u32, pos: u64) -> Result<Vec<u8>> {
        let size = (word & BLOCK_SIZE_MASK) as usize;
        let raw = self.read_bytes(pos, size)?;
        if word & BLOCK_STORED != 0 {
            return Ok(raw.into_owned());
        }
        self.compressor
            .decompress(&raw, self.sb.block_size as usize)
            .map_err(|e| Error::corrupt(pos, format!("data block: {e}")))
    }

    pub fn fragment_entry(&self, i: u32) -> Result<FragmentEntry> {
        let t = self.fragments.as_ref().ok_or_else(|| {
            Error::corrupt(
                80,
                format!("a file names fragment {i} but there is no fragment table"),
            )
        })?;
        let mut b = [0u8; 16];
        t.entry(self, u64::from(i), &mut b)?;
        Ok(FragmentEntry::parse(&b))
    }

    /// The decompressed fragment block `i`, cached.
    pub fn fragment_block(&self, i: u32) -> Result<Arc<Vec<u8>>> {
        let e = self.fragment_entry(i)?;
        self.frag_cache.get_or_load(e.start, || {
            let size = u64::from(e.size & BLOCK_SIZE_MASK);
            if size == 0
                || e.size & !(BLOCK_STORED | BLOCK_SIZE_MASK) != 0
                || size > u64::from(self.sb.block_size)
            {
                return Err(Error::corrupt(
                    e.start,
                    format!("fragment {i} has a bad size word 0x{:x}", e.size),
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
            if e.size & BLOCK_STORED != 0 {
                Ok(raw.into_owned())
            } else {
                self.compressor
                    .decompress(&raw, self.sb.block_size as usize)
                    .map_err(|m| Error::corrupt(e.start, format!("fragment block {i}: {m}")))
            }
        })
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at EOF).
    pub fn read_at(&self, f: &FileInfo, offset: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_with(f, &self.block_offsets(f)?, offset, buf)
    }

    /// Walks the chunks covering `[offset, end)`, handing `sink` each chunk
    /// with the offset into it and the byte count wanted from it.
    fn walk_range(
        &self,
        f: &FileInfo,
        offsets: &[u64],
        offset: u64,
        end: u64,
        mut sink: impl FnMut(&Chunk, usize, usize),
    ) -> Result<()> {
        let bs = u64::from(self.sb.block_size);
        let mut pos = offset;
        while pos < end {
            let n = (pos / bs) as usize;
            let chunk = self.read_chunk(f, n, offsets.get(n).copied().unwrap_or(0))?;
            let chunk_off = (pos - n as u64 * bs) as usize;
            let k = (chunk.len().saturating_sub(chunk_off) as u64).min(end - pos) as usize;
            if k == 0 {
                return Err(Error::corrupt(
                    f.blocks_start,
                    "file data ends before its size",
                ));
            }
            sink(&chunk, chunk_off, k);
            pos += k as u64;
        }
        Ok(())
    }

    /// [`Image::read_at`] with the block offsets already computed (by
    /// [`Image::block_offsets`]), as an open file keeps them.
    pub fn read_with(
        &self,
        f: &FileInfo,
        offsets: &[u64],
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(f.size);
        let mut done = 0;
        self.walk_range(f, offsets, offset, end, |chunk, at, k| {
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

    /// Up to `len` bytes at `offset` as a new vector, built by appending
    /// (no zero-fill of a buffer that is overwritten anyway), and the first
    /// chunk it came from (so a caller can reuse that block without
    /// fetching it again).
    pub fn read_vec(
        &self,
        f: &FileInfo,
        offsets: &[u64],
        offset: u64,
        len: usize,
    ) -> Result<(Vec<u8>, Option<Chunk>)> {
        let end = offset.saturating_add(len as u64).min(f.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let mut first = None;
        self.walk_range(f, offsets, offset, end, |chunk, at, k| {
            match chunk {
                Chunk::Zeros(_) => out.resize(out.len() + k, 0),
                Chunk::Shared(v, a, _) => out.extend_from_slice(&v[a + at..a + at + k]),
            }
            first.get_or_insert_with(|| chunk.clone());
        })?;
        Ok((out, first))
    }

    /// Calls `sink` with every chunk of the file in order.
    pub fn for_each_chunk(
        &self,
        f: &FileInfo,
        mut sink: impl FnMut(&Chunk) -> Result<()>,
    ) -> Result<()> {
        let offsets = self.block_offsets(f)?;
        for n in 0..self.chunk_count(f) {
            let c = self.read_chunk(f, n, offsets.get(n).copied().unwrap_or(0))?;
            sink(&c)?;
        }
        Ok(())
    }
}
