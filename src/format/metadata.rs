//! Metadata blocks (u16 header + payload of at most 8 KiB) and a cursor
//! that reads records straddling block boundaries, bounded to the
//! `[start, limit)` window of one table.

use super::compressor::{CompressSettings, Compressor};
use super::le::u16_at;
use super::{ByteSource, METADATA_SIZE};
use crate::error::{Error, Result};
use std::sync::Arc;

/// Header bit of a metadata block stored uncompressed.
pub const HEADER_STORED: u16 = 0x8000;

/// A metadata block's u16 header: payload bytes on disk, and whether the
/// payload is stored uncompressed.
pub fn encode_header(disk_size: usize, stored: bool) -> u16 {
    debug_assert!((1..=METADATA_SIZE).contains(&disk_size));
    disk_size as u16 | if stored { HEADER_STORED } else { 0 }
}

/// The inverse of [`encode_header`]: (payload bytes on disk, stored).
pub fn decode_header(h: u16) -> (usize, bool) {
    (usize::from(h & !HEADER_STORED), h & HEADER_STORED != 0)
}

/// One metadata block, header and payload: compressed with `settings` when
/// that makes it smaller, stored otherwise (`None`: always stored, as the
/// compressor-options record is).
pub fn encode_block(payload: &[u8], settings: Option<&CompressSettings>) -> Vec<u8> {
    let compressed = settings.and_then(|s| s.compress(payload));
    let (body, stored) = match &compressed {
        Some(c) => (c.as_slice(), false),
        None => (payload, true),
    };
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&encode_header(body.len(), stored).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// One decompressed metadata block and where the next one starts.
#[derive(Debug)]
pub struct MetaBlock {
    /// The block's decompressed bytes.
    pub data: Vec<u8>,
    /// Absolute image offset of the following block's header.
    pub next: u64,
}

/// Decodes the metadata block whose header sits at `pos` in `image`; the
/// block must end at or before `limit`.
pub fn read_block<B: ByteSource + ?Sized>(
    image: &B,
    comp: Compressor,
    pos: u64,
    limit: u64,
) -> Result<MetaBlock> {
    let limit = limit.min(image.size());
    let hdr_end = pos.checked_add(2).filter(|&e| e <= limit);
    let Some(hdr_end) = hdr_end else {
        return Err(Error::corrupt(
            pos,
            format!("metadata block header lies outside its table (ends at {limit})"),
        ));
    };
    let (size, stored) = decode_header(u16_at(&image.read_bytes(pos, 2)?, 0));
    let size = size as u64;
    if size == 0 || size > METADATA_SIZE as u64 {
        return Err(Error::corrupt(
            pos,
            format!("metadata block size {size} is outside 1..={METADATA_SIZE}"),
        ));
    }
    let end = hdr_end + size;
    if end > limit {
        return Err(Error::corrupt(
            pos,
            format!("metadata block of {size} bytes runs past its table end {limit}"),
        ));
    }
    let payload = image.read_bytes(hdr_end, size as usize)?;
    let data = if stored {
        payload.to_vec()
    } else {
        comp.decompress(&payload, METADATA_SIZE)
            .map_err(|e| Error::corrupt(pos, format!("metadata block: {e}")))?
    };
    if data.is_empty() {
        return Err(Error::corrupt(
            pos,
            "metadata block decompresses to nothing",
        ));
    }
    Ok(MetaBlock { data, next: end })
}

/// Where metadata blocks come from: the reader supplies a cached version.
pub trait MetaSource {
    /// The block whose header is at image offset `pos`, not reading at or past `limit`.
    fn meta_block(&self, pos: u64, limit: u64) -> Result<Arc<MetaBlock>>;
}

/// A reference into a metadata table: `(block offset from table start) << 16 | offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetaRef(pub u64);

impl MetaRef {
    /// The reference to byte `offset` of the block at `block` (relative to its table).
    pub fn new(block: u64, offset: u16) -> Self {
        MetaRef((block << 16) | u64::from(offset))
    }
    /// The block's offset relative to its table.
    pub fn block(self) -> u64 {
        self.0 >> 16
    }
    /// The byte offset inside the decompressed block.
    pub fn offset(self) -> usize {
        (self.0 & 0xffff) as usize
    }
}

/// Reads a byte stream that continues across consecutive metadata blocks of
/// one table, never leaving `[start, limit)`.
pub struct MetaCursor<'a, S: MetaSource + ?Sized> {
    src: &'a S,
    start: u64,
    limit: u64,
    block_pos: u64,
    block: Arc<MetaBlock>,
    off: usize,
}

impl<'a, S: MetaSource + ?Sized> MetaCursor<'a, S> {
    /// Opens the table `[start, limit)` at `block` bytes past `start`,
    /// `offset` bytes into that block's payload.
    pub fn new(src: &'a S, start: u64, limit: u64, block: u64, offset: usize) -> Result<Self> {
        let block_pos = start
            .checked_add(block)
            .filter(|&p| p < limit)
            .ok_or_else(|| {
                Error::corrupt(
                    start,
                    format!("metadata reference to block +{block} lies outside its table"),
                )
            })?;
        if offset >= METADATA_SIZE {
            return Err(Error::corrupt(
                block_pos,
                format!("metadata offset {offset} is past {METADATA_SIZE}"),
            ));
        }
        let blk = src.meta_block(block_pos, limit)?;
        if offset > blk.data.len() {
            return Err(Error::corrupt(
                block_pos,
                format!(
                    "offset {offset} is past the block's {} bytes",
                    blk.data.len()
                ),
            ));
        }
        Ok(MetaCursor {
            src,
            start,
            limit,
            block_pos,
            block: blk,
            off: offset,
        })
    }

    /// A cursor at `r` in the table starting at image offset `start`, bounded by `limit`.
    pub fn at(src: &'a S, start: u64, limit: u64, r: MetaRef) -> Result<Self> {
        Self::new(src, start, limit, r.block(), r.offset())
    }

    /// The image offset of the current block, for error messages.
    pub fn pos(&self) -> u64 {
        self.block_pos
    }

    /// The current position as a reference relative to the table start.
    pub fn meta_ref(&self) -> (u64, usize) {
        (self.block_pos - self.start, self.off)
    }

    fn advance_block(&mut self) -> Result<()> {
        let next = self.block.next;
        if next >= self.limit {
            return Err(Error::corrupt(
                self.block_pos,
                format!("record runs past the end of its table at {}", self.limit),
            ));
        }
        self.block = self.src.meta_block(next, self.limit)?;
        self.block_pos = next;
        self.off = 0;
        Ok(())
    }

    /// Fills `buf`, crossing block boundaries; an error if the table ends first.
    pub fn read(&mut self, mut buf: &mut [u8]) -> Result<()> {
        while !buf.is_empty() {
            if self.off == self.block.data.len() {
                self.advance_block()?;
            }
            let avail = &self.block.data[self.off..];
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            self.off += n;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Moves `n` bytes on.
    pub fn skip(&mut self, mut n: u64) -> Result<()> {
        while n > 0 {
            if self.off == self.block.data.len() {
                self.advance_block()?;
            }
            let k = ((self.block.data.len() - self.off) as u64).min(n);
            self.off += k as usize;
            n -= k;
        }
        Ok(())
    }

    /// Reads `n` bytes into a vector that grows only as data is really
    /// found, so a hostile length cannot force a huge allocation.
    pub fn read_vec(&mut self, n: u64) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(n.min(METADATA_SIZE as u64) as usize);
        let mut left = n;
        while left > 0 {
            if self.off == self.block.data.len() {
                self.advance_block()?;
            }
            let avail = &self.block.data[self.off..];
            let k = (avail.len() as u64).min(left) as usize;
            v.extend_from_slice(&avail[..k]);
            self.off += k;
            left -= k as u64;
        }
        Ok(v)
    }

    /// Reads a little-endian u16.
    pub fn u16(&mut self) -> Result<u16> {
        let mut b = [0; 2];
        self.read(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    /// Reads a little-endian u32.
    pub fn u32(&mut self) -> Result<u32> {
        let mut b = [0; 4];
        self.read(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    /// Reads a little-endian u64.
    pub fn u64(&mut self) -> Result<u64> {
        let mut b = [0; 8];
        self.read(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// A metadata source without a cache: decodes from the image every time.
pub struct Uncached<'a> {
    /// The whole image.
    pub image: &'a [u8],
    /// Its compressor.
    pub comp: Compressor,
}

impl MetaSource for Uncached<'_> {
    fn meta_block(&self, pos: u64, limit: u64) -> Result<Arc<MetaBlock>> {
        read_block(self.image, self.comp, pos, limit).map(Arc::new)
    }
}

/// Writes a stream of records as metadata blocks (the writer side of
/// [`MetaCursor`]): full 8 KiB blocks compressed as they fill.
pub struct MetaWriter {
    settings: CompressSettings,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// Offset in `out` of each block's header.
    pub block_starts: Vec<u64>,
}

impl MetaWriter {
    /// A writer compressing with `settings`.
    pub fn new(settings: CompressSettings) -> Self {
        MetaWriter {
            settings,
            out: Vec::new(),
            buf: Vec::with_capacity(METADATA_SIZE),
            block_starts: Vec::new(),
        }
    }

    /// Where the next byte will go, relative to the table start.
    pub fn pos(&self) -> MetaRef {
        MetaRef::new(self.out.len() as u64, self.buf.len() as u16)
    }

    /// Bytes written so far, before compression.
    pub fn uncompressed_len(&self) -> u64 {
        self.block_starts.len() as u64 * METADATA_SIZE as u64 + self.buf.len() as u64
    }

    /// Where block `k` (counting uncompressed 8 KiB blocks from the table
    /// start) starts in the table: known for every block written so far and
    /// for the one being filled.
    pub fn block_start(&self, k: usize) -> Option<u64> {
        match self.block_starts.get(k) {
            Some(&s) => Some(s),
            None => (k == self.block_starts.len()).then_some(self.out.len() as u64),
        }
    }

    /// Appends `bytes`, closing blocks as they fill.
    pub fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (METADATA_SIZE - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() == METADATA_SIZE {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        self.block_starts.push(self.out.len() as u64);
        let block = encode_block(&self.buf, Some(&self.settings));
        self.out.extend_from_slice(&block);
        self.buf.clear();
    }

    /// The encoded table.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u64>) {
        if !self.buf.is_empty() {
            self.flush();
        }
        (self.out, self.block_starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two stored (uncompressed) blocks: "abc" then "defg".
    fn two_blocks() -> Vec<u8> {
        let mut b = vec![0u8; 4]; // padding before the table
        b.extend_from_slice(&[0x03, 0x80]); // header: stored, 3 bytes
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&[0x04, 0x80]); // header: stored, 4 bytes
        b.extend_from_slice(b"defg");
        assert_eq!(b[4..9], encode_block(b"abc", None)[..]);
        b
    }

    #[test]
    fn records_straddle_blocks_and_stop_at_the_limit() {
        let img = two_blocks();
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        let mut c = MetaCursor::new(&src, 4, img.len() as u64, 0, 1).unwrap();
        let mut buf = [0u8; 5];
        c.read(&mut buf).unwrap();
        assert_eq!(&buf, b"bcdef");
        assert!(
            c.read(&mut [0u8; 2]).is_err(),
            "reading past the table end must fail"
        );
        // A limit that cuts the second block off.
        let mut c = MetaCursor::new(&src, 4, 9, 0, 0).unwrap();
        assert!(c.read_vec(4).is_err());
    }

    #[test]
    fn writer_output_reads_back_across_blocks() {
        let settings = super::super::compressor::CompressSettings::new(Compressor::Zstd, 3, 131072);
        let mut w = MetaWriter::new(settings);
        let data: Vec<u8> = (0..20000u32).map(|i| (i * 7 % 251) as u8).collect();
        w.write(&data[..5]);
        let at = w.pos();
        w.write(&data[5..]);
        let (table, starts) = w.finish();
        assert_eq!(starts.len(), 3);
        let src = Uncached {
            image: &table,
            comp: Compressor::Zstd,
        };
        let mut c = MetaCursor::at(&src, 0, table.len() as u64, at).unwrap();
        assert_eq!(c.read_vec(19995).unwrap(), data[5..]);
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut img = vec![0u8; 2]; // size 0
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        assert!(src.meta_block(0, 2).is_err());
        img = [0x01, 0xa0].to_vec(); // stored, 8193 bytes
        img.resize(9000, 0);
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        assert!(src.meta_block(0, 9000).is_err());
    }
}
