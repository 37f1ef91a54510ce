//! A SquashFS image over a byte source (a file or block device, a memory
//! map, a buffer): validated superblock and tables, cached metadata and
//! fragment blocks, inodes, directories, file data and xattrs. Safe to
//! share between threads.

mod cache;
pub mod data;
mod dir;
mod locate;
pub mod remote;
pub mod source;
pub mod verity;
pub mod walk;

pub use cache::BlockCache;
pub use data::{Chunk, FileReader, PlacedChunk};
pub use dir::DirIter;
pub use locate::{find_superblock, wrapper_kind};
pub use walk::{Step, WalkEntry, Walker};

use crate::error::{Error, Result};
use crate::format::compressor::{Compressor, CompressorOptions};
use crate::format::id::{self, IdTable};
use crate::format::inode::Inode;
use crate::format::metadata::{self, MetaBlock, MetaCursor, MetaRef, MetaSource};
use crate::format::superblock::{self, field, flags, Superblock};
use crate::format::table::{LookupTable, EXPORT_ENTRY_SIZE};
use crate::format::verity as verity_format;
use crate::format::xattr::{Xattr, XattrTable};
use crate::format::{ByteSource, METADATA_SIZE};
use source::{FileSource, MapSource, Window};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

/// Where the superblock sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// At this byte offset.
    At(u64),
    /// Search for it (an AppImage, a SIF container, another wrapper).
    Auto,
}

impl std::str::FromStr for Offset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Offset::Auto),
            _ => s
                .parse()
                .map(Offset::At)
                .map_err(|_| format!("offset {s:?} is not a byte count or \"auto\"")),
        }
    }
}

/// How to open an image: where it is in the file, how it is read and cached, verification, and
/// (with the `remote` feature) how URLs are fetched. `OpenOptions::default()` opens a plain image
/// file.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Where the superblock is inside the file (SIF, AppImage).
    pub offset: Offset,
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
    /// With `cache_budget`: at least this many bytes per byte of block
    /// size (large-block images need more memory to keep as many blocks).
    pub cache_budget_min_blocks: u64,
    /// Verify every block read against a dm-verity tree and this root hash.
    pub verity: Option<verity::VerityOptions>,
    /// How a URL image is fetched and cached (`None`: the defaults and the
    /// `SQFUSE_*` environment).
    pub remote: Option<remote::RemoteOptions>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            offset: Offset::At(0),
            metadata_cache_blocks: 2048,
            fragment_cache_blocks: 64,
            data_cache_blocks: 0,
            pread: false,
            cache_budget: None,
            cache_budget_min_blocks: 0,
            verity: None,
            remote: None,
        }
    }
}

/// An open image: every read goes through its caches, and any number of threads may read at once.
pub struct Image {
    /// The image bytes from the superblock to `bytes_used`.
    src: Window,
    /// The superblock, validated.
    pub sb: Superblock,
    /// The compressor it names.
    pub compressor: Compressor,
    /// The compressor's options record, if the image has one.
    pub compressor_options: Option<CompressorOptions>,
    ids: IdTable,
    fragments: Option<LookupTable>,
    export: Option<LookupTable>,
    xattrs: Option<XattrTable>,
    /// End of the directory table: the first byte of whatever follows it.
    dir_limit: u64,
    meta_cache: BlockCache<MetaBlock>,
    frag_cache: BlockCache<Vec<u8>>,
    pub(crate) data_cache: BlockCache<Vec<u8>>,
    /// The tree every read is checked against, when opened with a root hash.
    verified_by: Option<verity::TreeSummary>,
    /// What fetching cost, for an image read from a URL.
    remote_stats: Option<Arc<remote::RemoteStats>>,
    /// Blocks decompressed so far, and their decompressed bytes.
    decompressed: [std::sync::atomic::AtomicU64; 2],
    /// Told of every block read and decompressed (a cache miss).
    observer: std::sync::OnceLock<BlockObserver>,
}

/// Called with the image offset and on-disk length of every metadata,
/// data or fragment block as it is read (not on cache hits); what a
/// start-up profile records.
pub type BlockObserver = Arc<dyn Fn(u64, u64) + Send + Sync>;

impl MetaSource for Image {
    fn meta_block(&self, pos: u64, limit: u64) -> Result<Arc<MetaBlock>> {
        let b = self.meta_cache.get_or_load(pos, || {
            let b = metadata::read_block(&self.src, self.compressor, pos, u64::MAX)?;
            self.block_read(pos, b.next.saturating_sub(pos), b.data.len());
            Ok::<_, Error>(b)
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
    /// Stops the threads reading the image may have started (a URL's
    /// network runtime) before the process forks; see
    /// [`ByteSource::before_fork`].
    pub fn before_fork(&self) {
        self.src.before_fork();
    }

    /// Opens the image in a file or block device: read through a memory map,
    /// or with `pread` when `opts.pread` is set (or the file is a device).
    /// A URL (`http(s)://`, `s3://`) is fetched by range as it is read.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Self> {
        if remote::is_remote(path) {
            let ropts = match &opts.remote {
                Some(r) => r.clone(),
                None => remote::RemoteOptions::from_env()?,
            };
            let (src, stats) = remote::open(&path.to_string_lossy(), &ropts)?;
            let mut img = Self::from_source(src, opts)?;
            img.remote_stats = Some(stats);
            return Ok(img);
        }
        let src: Box<dyn ByteSource> = if opts.pread {
            Box::new(FileSource::open(path)?)
        } else {
            MapSource::open(path)?
        };
        Self::from_source(src, opts)
    }

    /// An image held in memory.
    pub fn from_bytes(bytes: Vec<u8>, opts: &OpenOptions) -> Result<Self> {
        Self::from_source(Box::new(bytes), opts)
    }

    /// An image in any byte source (the superblock at `opts.offset`).
    pub fn from_source(src: Box<dyn ByteSource>, opts: &OpenOptions) -> Result<Self> {
        let offset = match opts.offset {
            Offset::At(n) => n,
            Offset::Auto => find_superblock(src.as_ref())?,
        };
        // Below the window: the tree covers the file from its first byte.
        let (src, verified_by): (Box<dyn ByteSource>, _) = match &opts.verity {
            Some(v) => {
                let checked = verity::VerifiedSource::new(src, offset, v)?;
                let summary = checked.summary();
                (Box::new(checked), Some(summary))
            }
            None => (src, None),
        };
        let len = src.size();
        if offset >= len {
            return Err(Error::invalid(format!(
                "offset {offset} is not inside the {len}-byte file"
            )));
        }
        let avail = len - offset;
        let head = src.read_bytes(offset, (superblock::SIZE as u64).min(avail) as usize)?;
        let sb = match Superblock::parse(&head, avail) {
            Ok(sb) => sb,
            Err(e) => {
                // A wrapper at 0 whose image lies further in: say how to reach it.
                return Err(
                    match wrapper_kind(&src.read_bytes(0, 64.min(len) as usize)?) {
                        Some(kind) if opts.offset == Offset::At(0) => Error {
                            what: format!(
                                "{}; the file is {kind}: try offset=auto (--offset auto)",
                                e.what
                            ),
                            ..e
                        },
                        _ => e,
                    },
                );
            }
        };
        let compressor = Compressor::from_id(sb.compression_id).ok_or_else(|| {
            Error::unsupported(
                Some(field::COMPRESSION_ID),
                format!("unknown compressor id {}", sb.compression_id),
            )
        })?;
        let (meta_blocks, data_blocks, frag_blocks) = match opts.cache_budget {
            Some(total) => {
                let bs = u64::from(sb.block_size);
                let total = total.max(opts.cache_budget_min_blocks.saturating_mul(bs));
                let blocks = |bytes: u64, unit: u64| (bytes / unit) as usize;
                (
                    blocks(total / 4, METADATA_SIZE as u64).max(16),
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
        let src = Window::new(src, offset, sb.bytes_used);
        let mut img = Image {
            src,
            sb,
            compressor,
            compressor_options: None,
            ids: IdTable::default(), // until load_tables reads it
            fragments: None,
            export: None,
            xattrs: None,
            dir_limit: 0,
            meta_cache: BlockCache::new(meta_blocks),
            frag_cache: BlockCache::new(frag_blocks),
            data_cache: BlockCache::new(data_blocks),
            verified_by,
            remote_stats: None,
            decompressed: Default::default(),
            observer: std::sync::OnceLock::new(),
        };
        img.load_tables()?;
        Ok(img)
    }

    /// Counts a block read from the image and tells the observer.
    pub(crate) fn block_read(&self, pos: u64, disk_len: u64, len: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.decompressed[0].fetch_add(1, Relaxed);
        self.decompressed[1].fetch_add(len as u64, Relaxed);
        if let Some(f) = self.observer.get() {
            f(pos, disk_len);
        }
    }

    /// Blocks read from the image and decompressed so far (cache misses),
    /// and the bytes they held decompressed.
    pub fn blocks_decompressed(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.decompressed[0].load(Relaxed),
            self.decompressed[1].load(Relaxed),
        )
    }

    /// Sets the function told of every block read (once; later calls are
    /// ignored).
    pub fn observe_blocks(&self, f: BlockObserver) {
        let _ = self.observer.set(f);
    }

    /// Brings `len` bytes at `pos` into the source's caches ahead of use:
    /// the kernel's read-ahead for a file (not waited for), else read now
    /// and dropped (a URL's chunk cache). Ranges past the image are cut.
    pub fn warm_range(&self, pos: u64, len: u64) -> Result<()> {
        const STEP: u64 = 4 << 20;
        let end = pos.saturating_add(len).min(self.sb.bytes_used);
        if pos >= end || self.src.will_need(pos, end - pos) {
            return Ok(());
        }
        let mut at = pos;
        while at < end {
            let n = (end - at).min(STEP);
            self.read_bytes(at, n as usize)?;
            at += n;
        }
        Ok(())
    }

    /// Where the superblock is in the file (found by `Offset::Auto`).
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// The size of what the image is read from (the file, device or blob,
    /// with whatever surrounds the image).
    pub fn source_size(&self) -> u64 {
        self.src.raw().size()
    }

    /// The dm-verity tree: the one reads are checked against when the image
    /// was opened with a root hash, else one appended after the image, if
    /// any, with its root hash as found (to show, not to trust: only a root
    /// hash from elsewhere proves anything).
    pub fn verity_tree(&self) -> Option<verity::TreeSummary> {
        if let Some(v) = &self.verified_by {
            return Some(v.clone());
        }
        let raw = self.src.raw();
        let (at, params) = verity::find_appended(raw, self.offset())?;
        let tree = verity_format::tree_offset(at, params.hash_block_size);
        let root = verity::root_as_found(raw, raw, tree, &params);
        Some(verity::TreeSummary {
            location: verity::TreeLocation::Appended(at),
            params,
            root,
            verified: false,
        })
    }

    /// Requests, bytes and cache hits so far, for an image read from a URL.
    pub fn remote_stats(&self) -> Option<&remote::RemoteStats> {
        self.remote_stats.as_deref()
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
        let fragments = match sb.fragment_table_start {
            Some(s) => Some(LookupTable::load(
                "fragment table",
                bytes,
                s,
                u64::from(sb.fragment_entry_count),
                crate::format::table::FragmentEntry::SIZE,
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
                EXPORT_ENTRY_SIZE,
                lower,
            )?),
            None => None,
        };
        let xattrs = match sb.xattr_id_table_start {
            Some(s) => Some(XattrTable::load(bytes, s, lower)?),
            None => None,
        };
        let ids = id::read_ids(&self.src, self, sb.id_table_start, sb.id_count, lower)?;
        // The directory table ends where the first later structure begins.
        let mut dir_limit = sb.bytes_used;
        for t in [Some(&ids.table), fragments.as_ref(), export.as_ref()]
            .into_iter()
            .flatten()
        {
            dir_limit = dir_limit.min(t.first_block());
        }
        if let Some(x) = &xattrs {
            dir_limit = dir_limit.min(x.kv_start).min(x.ids.first_block());
        }
        // Equal is an empty table: an image whose only directory is an
        // empty root (mksquashfs writes one; reading a listing from it
        // fails, and an empty directory reads none).
        if dir_limit < sb.directory_table_start {
            return Err(Error::corrupt(
                field::DIRECTORY_TABLE_START,
                "a table starts before the directory table it follows",
            ));
        }
        self.dir_limit = dir_limit;
        self.ids = ids;
        self.fragments = fragments;
        self.export = export;
        self.xattrs = xattrs;
        Ok(())
    }

    /// `len` bytes of the image at `pos` (relative to the superblock).
    pub fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self.src.read_bytes(pos, len)
    }

    /// Data block size.
    pub fn block_size(&self) -> u32 {
        self.sb.block_size
    }

    /// Where the root directory's inode is.
    pub fn root_ref(&self) -> MetaRef {
        MetaRef(self.sb.root_inode_ref)
    }

    /// The root directory's inode.
    pub fn root(&self) -> Result<Inode> {
        let root = self.inode(self.root_ref())?;
        if !root.is_dir() {
            return Err(Error::corrupt(
                field::ROOT_INODE_REF,
                "the root inode is not a directory",
            ));
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
        let mut b = [0u8; EXPORT_ENTRY_SIZE];
        t.entry(self, u64::from(n) - 1, &mut b)?;
        Ok(MetaRef(u64::from_le_bytes(b)))
    }

    /// Whether inodes can be found by number (an export table).
    pub fn has_export_table(&self) -> bool {
        self.export.is_some()
    }

    /// Id table entry `index`.
    pub fn id(&self, index: u16) -> Result<u32> {
        self.ids
            .ids
            .get(usize::from(index))
            .copied()
            .ok_or_else(|| {
                Error::corrupt(
                    self.sb.id_table_start,
                    format!("id index {index} is past the {} ids", self.ids.ids.len()),
                )
            })
    }
    /// The owner of inode `i`.
    pub fn uid(&self, i: &Inode) -> Result<u32> {
        self.id(i.uid_index)
    }
    /// The group of inode `i`.
    pub fn gid(&self, i: &Inode) -> Result<u32> {
        self.id(i.gid_index)
    }
    /// Every id, by index.
    pub fn ids(&self) -> &[u32] {
        &self.ids.ids
    }

    /// Xattr ids in the image (0 without xattrs).
    pub fn xattr_count(&self) -> u64 {
        self.xattrs.as_ref().map_or(0, |x| x.ids.count)
    }

    /// The inode's extended attributes, full names ("user.x"), stored order.
    pub fn xattrs(&self, i: &Inode) -> Result<Vec<Xattr>> {
        match (i.xattr, &self.xattrs) {
            (None, _) => Ok(Vec::new()),
            (Some(x), Some(t)) => t.get(self, x),
            (Some(x), None) => Err(Error::corrupt(
                field::XATTR_ID_TABLE_START,
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

    /// Fragment blocks in the image.
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
        starts.push(("id table", self.ids.table.first_block()));
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
}
