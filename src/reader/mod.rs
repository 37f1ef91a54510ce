//! A SquashFS image over a memory map: validated superblock and tables,
//! cached metadata and fragment blocks, inodes, directories, file data and
//! xattrs. Safe to share between threads.

mod cache;
pub mod data;
mod dir;
mod locate;

pub use cache::BlockCache;
pub use dir::DirIter;
pub use locate::find_superblock;

use crate::error::{Error, Result};
use crate::format::compressor::{Compressor, CompressorOptions};
use crate::format::inode::Inode;
use crate::format::metadata::{self, MetaBlock, MetaCursor, MetaRef, MetaSource};
use crate::format::superblock::{self, flags, Superblock};
use crate::format::table::LookupTable;
use crate::format::xattr::{Xattr, XattrTable};
use crate::format::ByteSource;
use memmap2::Mmap;
use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Byte offset of the superblock inside the file (SIF, AppImage).
    pub offset: u64,
    /// Decompressed metadata blocks (8 KiB each) to keep.
    pub metadata_cache_blocks: usize,
    /// Decompressed fragment blocks (one block size each) to keep.
    pub fragment_cache_blocks: usize,
    /// Decompressed data blocks to keep (0: none; the kernel's page cache
    /// usually serves repeats, but a FUSE read of 4 KiB would otherwise
    /// decompress a whole block every time).
    pub data_cache_blocks: usize,
    /// Read with `pread` instead of a memory map: slower by a syscall per
    /// block, but an image truncated while open gives errors, not SIGBUS.
    pub pread: bool,
    /// A total for all three caches in bytes, split once the block size is
    /// known: a quarter metadata, a quarter data, half fragments (one
    /// fragment block serves many small files; with the mount's page fill
    /// the kernel keeps file data anyway). Overrides the three counts above.
    pub cache_budget: Option<u64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            offset: 0,
            metadata_cache_blocks: 2048,
            fragment_cache_blocks: 64,
            data_cache_blocks: 0,
            pread: false,
            cache_budget: None,
        }
    }
}

/// The image bytes from the superblock to `bytes_used`.
enum Source {
    Map { map: Mmap, offset: usize, len: u64 },
    File { file: File, offset: u64, len: u64 },
}

impl ByteSource for Source {
    fn size(&self) -> u64 {
        match self {
            Source::Map { len, .. } | Source::File { len, .. } => *len,
        }
    }
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let end = pos
            .checked_add(len as u64)
            .filter(|&e| e <= self.size())
            .ok_or_else(|| {
                Error::corrupt(
                    pos,
                    format!(
                        "{len} bytes at {pos} run past the image end ({})",
                        self.size()
                    ),
                )
            })?;
        match self {
            Source::Map { map, offset, .. } => Ok(Cow::Borrowed(
                &map[offset + pos as usize..offset + end as usize],
            )),
            Source::File { file, offset, .. } => {
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, offset + pos).map_err(|e| {
                    let mut err = Error::io(
                        format!("reading {len} bytes at image offset {pos} (file truncated?)"),
                        e,
                    );
                    err.offset = Some(pos);
                    err
                })?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

pub struct Image {
    src: Source,
    pub sb: Superblock,
    pub compressor: Compressor,
    pub compressor_options: Option<CompressorOptions>,
    ids: Vec<u32>,
    fragments: Option<LookupTable>,
    export: Option<LookupTable>,
    xattrs: Option<XattrTable>,
    /// End of the directory table: the first byte of whatever follows it.
    dir_limit: u64,
    meta_cache: BlockCache<MetaBlock>,
    frag_cache: BlockCache<Vec<u8>>,
    pub(crate) data_cache: BlockCache<Vec<u8>>,
}

impl MetaSource for Image {
    fn meta_block(&self, pos: u64, limit: u64) -> Result<Arc<MetaBlock>> {
        let b = self.meta_cache.get_or_load(pos, || {
            metadata::read_block(&self.src, self.compressor, pos, u64::MAX)
        })?;
        if b.next > limit {
            return Err(Error::corrupt(
                pos,
                format!("metadata block runs past its table end {limit}"),
            ));
        }
        Ok(b)
    }
}

impl Image {
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Self> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        if opts.offset >= len {
            return Err(Error::invalid(format!(
                "offset {} is not inside the {len}-byte file",
                opts.offset
            )));
        }
        let avail = len - opts.offset;
        let mut head = [0u8; superblock::SIZE];
        let n = file
            .read_at(&mut head, opts.offset)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let sb = Superblock::parse(&head[..n], avail)?;
        let compressor = Compressor::from_id(sb.compression_id).ok_or_else(|| {
            Error::unsupported(
                Some(20),
                format!("unknown compressor id {}", sb.compression_id),
            )
        })?;
        let src = if opts.pread {
            Source::File {
                file,
                offset: opts.offset,
                len: sb.bytes_used,
            }
        } else {
            // SAFETY: read-only map; every access is bounds-checked against
            // bytes_used, which was checked against the file size just now.
            // A file truncated later can fault: mounts use `pread` instead.
            let map = unsafe { Mmap::map(&file) }
                .map_err(|e| Error::io(format!("cannot map {}", path.display()), e))?;
            let offset =
                usize::try_from(opts.offset).map_err(|_| Error::invalid("offset too large"))?;
            Source::Map {
                map,
                offset,
                len: sb.bytes_used,
            }
        };
        let (meta_blocks, data_blocks, frag_blocks) = match opts.cache_budget {
            Some(total) => {
                let bs = u64::from(sb.block_size);
                let blocks = |bytes: u64, unit: u64| (bytes / unit) as usize;
                (
                    blocks(total / 4, 8192).max(16),
                    blocks(total / 4, bs),
                    blocks(total / 2, bs).max(2),
                )
            }
            None => (
                opts.metadata_cache_blocks,
                opts.data_cache_blocks,
                opts.fragment_cache_blocks,
            ),
        };
        let mut img = Image {
            src,
            sb,
            compressor,
            compressor_options: None,
            ids: Vec::new(),
            fragments: None,
            export: None,
            xattrs: None,
            dir_limit: 0,
            meta_cache: BlockCache::new(meta_blocks),
            frag_cache: BlockCache::new(frag_blocks),
            data_cache: BlockCache::new(data_blocks),
        };
        img.load_tables()?;
        Ok(img)
    }

    /// How many decompressed data blocks the data cache holds.
    pub fn data_cache_blocks(&self) -> usize {
        self.data_cache.capacity()
    }

    fn load_tables(&mut self) -> Result<()> {
        let sb = self.sb.clone();
        if sb.has(flags::COMPRESSOR_OPTIONS) {
            let b = metadata::read_block(
                &self.src,
                self.compressor,
                superblock::SIZE as u64,
                sb.inode_table_start,
            )?;
            self.compressor_options = Some(
                CompressorOptions::parse(self.compressor, &b.data).map_err(|e| {
                    Error::corrupt(superblock::SIZE as u64, format!("compressor options: {e}"))
                })?,
            );
        }
        let lower = sb.directory_table_start;
        let bytes = &self.src;
        let ids = LookupTable::load(
            "id table",
            bytes,
            sb.id_table_start,
            u64::from(sb.id_count),
            4,
            lower,
        )?;
        let fragments = match sb.fragment_table_start {
            Some(s) => Some(LookupTable::load(
                "fragment table",
                bytes,
                s,
                u64::from(sb.fragment_entry_count),
                16,
                lower,
            )?),
            None => None,
        };
        let export = match sb.export_table_start {
            Some(s) => Some(LookupTable::load(
                "export table",
                bytes,
                s,
                u64::from(sb.inode_count),
                8,
                lower,
            )?),
            None => None,
        };
        let xattrs = match sb.xattr_id_table_start {
            Some(s) => Some(XattrTable::load(bytes, s, lower)?),
            None => None,
        };
        // The directory table ends where the first later structure begins.
        let mut dir_limit = sb.bytes_used;
        for t in [Some(&ids), fragments.as_ref(), export.as_ref()]
            .into_iter()
            .flatten()
        {
            dir_limit = dir_limit.min(t.first_block());
        }
        if let Some(x) = &xattrs {
            dir_limit = dir_limit.min(x.kv_start).min(x.ids.first_block());
        }
        if dir_limit <= sb.directory_table_start {
            return Err(Error::corrupt(
                72,
                "the directory table is empty: a table starts where it does",
            ));
        }
        self.dir_limit = dir_limit;
        let mut list = Vec::with_capacity(usize::from(sb.id_count));
        let mut b = [0u8; 4];
        for i in 0..u64::from(sb.id_count) {
            ids.entry(self, i, &mut b)?;
            list.push(u32::from_le_bytes(b));
        }
        self.ids = list;
        self.fragments = fragments;
        self.export = export;
        self.xattrs = xattrs;
        Ok(())
    }

    /// `len` bytes of the image at `pos` (relative to the superblock).
    pub fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self.src.read_bytes(pos, len)
    }

    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    pub fn root_ref(&self) -> MetaRef {
        MetaRef(self.sb.root_inode_ref)
    }

    pub fn root(&self) -> Result<Inode> {
        let root = self.inode(self.root_ref())?;
        if !root.is_dir() {
            return Err(Error::corrupt(32, "the root inode is not a directory"));
        }
        Ok(root)
    }

    /// The inode at reference `r` (relative to the inode table).
    pub fn inode(&self, r: MetaRef) -> Result<Inode> {
        let mut c = MetaCursor::at(
            self,
            self.sb.inode_table_start,
            self.sb.directory_table_start,
            r,
        )?;
        Inode::parse(&mut c, self.sb.block_size, self.sb.inode_count)
    }

    /// The inode reference of inode number `n`, through the export table.
    pub fn inode_ref_by_number(&self, n: u32) -> Result<MetaRef> {
        let t = self
            .export
            .as_ref()
            .ok_or_else(|| Error::unsupported(None, "the image has no export table"))?;
        if n == 0 {
            return Err(Error::invalid("inode number 0"));
        }
        let mut b = [0u8; 8];
        t.entry(self, u64::from(n) - 1, &mut b)?;
        Ok(MetaRef(u64::from_le_bytes(b)))
    }

    pub fn has_export_table(&self) -> bool {
        self.export.is_some()
    }

    pub fn id(&self, index: u16) -> Result<u32> {
        self.ids.get(usize::from(index)).copied().ok_or_else(|| {
            Error::corrupt(
                self.sb.id_table_start,
                format!("id index {index} is past the {} ids", self.ids.len()),
            )
        })
    }
    pub fn uid(&self, i: &Inode) -> Result<u32> {
        self.id(i.uid_index)
    }
    pub fn gid(&self, i: &Inode) -> Result<u32> {
        self.id(i.gid_index)
    }
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn xattr_count(&self) -> u64 {
        self.xattrs.as_ref().map_or(0, |x| x.ids.count)
    }

    /// The inode's extended attributes, full names ("user.x"), stored order.
    pub fn xattrs(&self, i: &Inode) -> Result<Vec<Xattr>> {
        match (i.xattr, &self.xattrs) {
            (None, _) => Ok(Vec::new()),
            (Some(x), Some(t)) => t.get(self, x),
            (Some(x), None) => Err(Error::corrupt(
                56,
                format!(
                    "inode {} names xattr id {x} but the image has no xattr table",
                    i.number
                ),
            )),
        }
    }

    /// Total size of the inode's xattr list as stored (0 without xattrs).
    pub fn xattr_size(&self, i: &Inode) -> Result<u32> {
        match (i.xattr, &self.xattrs) {
            (Some(x), Some(t)) => Ok(t.id(self, x)?.size),
            _ => Ok(0),
        }
    }

    pub fn fragment_count(&self) -> u32 {
        self.sb.fragment_entry_count
    }

    pub(crate) fn dir_limit(&self) -> u64 {
        self.dir_limit
    }

    /// Sizes of the tables, in image order, for `info`.
    pub fn table_layout(&self) -> Vec<(&'static str, u64, u64)> {
        let sb = &self.sb;
        let mut starts: Vec<(&'static str, u64)> = vec![
            ("inode table", sb.inode_table_start),
            ("directory table", sb.directory_table_start),
        ];
        if let Some(f) = &self.fragments {
            starts.push(("fragment table", f.first_block()));
        }
        if let Some(e) = &self.export {
            starts.push(("export table", e.first_block()));
        }
        starts.push(("id table", self.ids_first_block()));
        if let Some(x) = &self.xattrs {
            starts.push(("xattr table", x.kv_start));
        }
        starts.sort_by_key(|s| s.1);
        let mut out = Vec::new();
        for (i, (name, start)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(sb.bytes_used, |n| n.1);
            out.push((*name, *start, end.saturating_sub(*start)));
        }
        out
    }

    fn ids_first_block(&self) -> u64 {
        // Re-derived from the image: the id list itself keeps no offsets.
        let at = self.sb.id_table_start;
        self.read_bytes(at, 8)
            .map_or(at, |b| crate::format::le::u64_at(&b, 0))
    }
}
