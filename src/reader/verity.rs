//! Reading through a dm-verity hash tree: every data block returned is
//! first hashed and checked up the tree to a root hash the caller trusts,
//! as the kernel's dm-verity target does, but in user space. Verified hash
//! blocks are cached; a block that does not match is an error for the reads
//! that need it, naming its offset.
//!
//! Blocks are counted in the file (the tree covers the whole file from its
//! first byte, as veritysetup sees it), below the image's offset: an image
//! inside a SIF or AppImage file is verified the same way.

use super::cache::BlockCache;
use crate::error::{Error, Result};
use crate::format::superblock;
use crate::format::verity::{tree_offset, Params, SUPERBLOCK_SIZE};
use crate::format::ByteSource;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the caller trusts, and where the tree is if not appended.
#[derive(Debug, Clone)]
pub struct VerityOptions {
    /// The root hash every block is verified against.
    pub root: Vec<u8>,
    /// A detached tree (superblock at its offset 0), as
    /// `veritysetup format DATA HASH` writes it.
    pub hash_file: Option<PathBuf>,
}

impl VerityOptions {
    /// Trusts `root_hex` (a root hash in hex); the tree is the one appended
    /// to the image, or `hash_file`.
    pub fn from_hex(root_hex: &str, hash_file: Option<PathBuf>) -> Result<Self> {
        Ok(VerityOptions {
            root: crate::format::verity::parse_hex(root_hex, "root hash")?,
            hash_file,
        })
    }

    /// Trusts the root hash written in hex in `root_file` (as veritysetup's
    /// `--root-hash-file` and `pack --verity-roothash` write it).
    pub fn from_root_hash_file(root_file: &Path, hash_file: Option<PathBuf>) -> Result<Self> {
        let text = std::fs::read_to_string(root_file).map_err(|e| {
            Error::io(
                format!("cannot read {}", crate::error::shown_path(root_file)),
                e,
            )
        })?;
        Self::from_hex(&text, hash_file)
    }
}

/// Where an appended tree's superblock may be, given the image's place:
/// after the image padded to 4 KiB, the file padded to the hash block.
/// `bytes_used` is read before anything is verified: checked arithmetic.
pub fn appended_candidates(offset: u64, bytes_used: u64) -> Vec<u64> {
    let round = |n: u64| n.checked_next_multiple_of(4096);
    let mut c: Vec<u64> = [
        round(bytes_used)
            .and_then(|b| offset.checked_add(b))
            .and_then(round),
        offset.checked_add(bytes_used).and_then(round),
    ]
    .into_iter()
    .flatten()
    .collect();
    c.dedup();
    c
}

/// The superblock of a tree at `at` in `src`, if there is one.
pub fn read_params(src: &dyn ByteSource, at: u64) -> Option<Params> {
    let b = src.read_bytes(at, SUPERBLOCK_SIZE).ok()?;
    Params::parse(&b, at).ok()
}

/// An appended tree after the image at `offset` (whose superblock, not yet
/// verified, says `bytes_used`): its superblock offset and parameters.
pub fn find_appended(src: &dyn ByteSource, offset: u64) -> Option<(u64, Params)> {
    let head = src.read_bytes(offset, superblock::SIZE).ok()?;
    let bytes_used =
        crate::format::le::u64_at(&head, crate::format::superblock::field::BYTES_USED as usize);
    appended_candidates(offset, bytes_used)
        .into_iter()
        .find_map(|at| read_params(src, at).map(|p| (at, p)))
}

/// The root hash of a tree as found (the digest of its top block, or of
/// the one data block): for display, never for trust.
pub fn root_as_found(
    data: &dyn ByteSource,
    hash: &dyn ByteSource,
    tree_start: u64,
    p: &Params,
) -> Option<Vec<u8>> {
    let hbs = p.hash_block_size as usize;
    if p.levels().is_empty() {
        let b = data.read_bytes(0, p.data_block_size as usize).ok()?;
        return Some(p.hash(&b));
    }
    let top = hash.read_bytes(tree_start, hbs).ok()?;
    Some(p.hash(&top))
}

/// A byte source whose bytes are all verified.
pub struct VerifiedSource {
    data: Arc<dyn ByteSource>,
    hash: Arc<dyn ByteSource>,
    /// Byte offset of the tree's first hash block in `hash`.
    tree_start: u64,
    params: Params,
    root: Vec<u8>,
    verified: BlockCache<Vec<u8>>,
    /// Where the verity superblock is: in the image file, or in a detached file.
    tree: TreeLocation,
}

/// Where a hash tree's superblock sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeLocation {
    /// At this byte offset of the image file, after the image.
    Appended(u64),
    /// At offset 0 of a file of its own (`verity_hash=`).
    Detached,
}

/// What `info` shows of a tree.
#[derive(Clone, Debug)]
pub struct TreeSummary {
    /// Where the tree is.
    pub location: TreeLocation,
    /// Its parameters.
    pub params: Params,
    /// The root hash: the one the image was checked against when `verified`,
    /// otherwise computed from the tree's top level, as found.
    pub root: Option<Vec<u8>>,
    /// Whether blocks are checked against a root hash the caller gave.
    pub verified: bool,
}

impl VerifiedSource {
    /// Verifies `data`, whose image starts at `offset`: with the appended
    /// tree, or the one in `opts.hash_file`. The tree must cover the image.
    pub fn new(data: Box<dyn ByteSource>, offset: u64, opts: &VerityOptions) -> Result<Self> {
        let data: Arc<dyn ByteSource> = Arc::from(data);
        let (hash, sb_at, params): (Arc<dyn ByteSource>, u64, Params) = match &opts.hash_file {
            Some(path) => {
                let src: Arc<dyn ByteSource> = Arc::new(super::source::FileSource::open(path)?);
                let within = |e: Error| e.within(crate::error::shown_path(path));
                let head = src.read_bytes(0, SUPERBLOCK_SIZE).map_err(within)?;
                let p = Params::parse(&head, 0).map_err(within)?;
                (src, 0, p)
            }
            None => {
                let (at, p) = find_appended(data.as_ref(), offset).ok_or_else(|| {
                    Error::invalid(
                        "no dm-verity hash tree after the image (pack --verity or sqfuse verity adds one; verity_hash=FILE names a detached one)",
                    )
                })?;
                (data.clone(), at, p)
            }
        };
        if opts.root.len() != params.algorithm.digest_size() {
            return Err(Error::invalid(format!(
                "the root hash has {} bytes, a {} digest {}",
                opts.root.len(),
                params.algorithm.name(),
                params.algorithm.digest_size()
            )));
        }
        let covered = params
            .data_blocks
            .checked_mul(u64::from(params.data_block_size))
            .ok_or_else(|| Error::corrupt(sb_at, "verity data size overflows"))?;
        // Only this much of the file is ever read: beyond it, nothing is verified.
        if covered > data.size() {
            return Err(Error::corrupt(
                sb_at,
                format!(
                    "the hash tree covers {covered} bytes, the file has {}",
                    data.size()
                ),
            ));
        }
        let tree_start = tree_offset(sb_at, params.hash_block_size);
        let tree_end = params
            .tree_blocks()
            .checked_mul(u64::from(params.hash_block_size))
            .and_then(|n| n.checked_add(tree_start))
            .ok_or_else(|| Error::corrupt(sb_at, "verity tree size overflows"))?;
        if tree_end > hash.size() {
            return Err(Error::corrupt(
                sb_at,
                format!(
                    "the hash tree ends at {tree_end}, past the file's {} bytes (truncated?)",
                    hash.size()
                ),
            ));
        }
        let v = VerifiedSource {
            data,
            hash,
            tree_start,
            params,
            root: opts.root.clone(),
            verified: BlockCache::new(1024),
            tree: if opts.hash_file.is_some() {
                TreeLocation::Detached
            } else {
                TreeLocation::Appended(sb_at)
            },
        };
        // A wrong root hash refuses at once, whatever is read first.
        let first = v.data.read_bytes(0, v.params.data_block_size as usize)?;
        v.check_block(0, &first).map_err(|_| {
            Error::invalid(
                "the root hash does not match this image's hash tree (a wrong root hash, or a damaged tree)",
            )
        })?;
        Ok(v)
    }

    /// The tree's parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The tree this source is checked against, and its (trusted) root.
    pub fn summary(&self) -> TreeSummary {
        TreeSummary {
            location: self.tree,
            params: self.params.clone(),
            root: Some(self.root.clone()),
            verified: true,
        }
    }

    /// Hash block `blk` (from the tree's start), checked against `want`.
    fn hash_block(&self, blk: u64, want: &[u8]) -> Result<Arc<Vec<u8>>> {
        self.verified.get_or_load(blk, || {
            let hbs = self.params.hash_block_size as usize;
            let at = self.tree_start + blk * hbs as u64;
            let b = self.hash.read_bytes(at, hbs)?;
            if self.params.hash(&b) != want {
                return Err(Error::corrupt(
                    at,
                    format!("verity hash block {blk} does not match the tree above it"),
                ));
            }
            Ok(b.into_owned())
        })
    }

    /// The trusted digest of data block `k`, from the root down.
    fn digest_of(&self, k: u64) -> Result<Vec<u8>> {
        let d = self.params.algorithm.digest_size();
        let mut want = self.root.clone();
        for &(blk, off) in self.params.path(k).iter().rev() {
            let block = self.hash_block(blk, &want)?;
            want = block[off..off + d].to_vec();
        }
        Ok(want)
    }

    fn check_block(&self, k: u64, bytes: &[u8]) -> Result<()> {
        if self.params.hash(bytes) != self.digest_of(k)? {
            return Err(Error::corrupt(
                k * u64::from(self.params.data_block_size),
                format!("data block {k} does not match its verity hash"),
            ));
        }
        Ok(())
    }
}

impl ByteSource for VerifiedSource {
    fn before_fork(&self) {
        self.data.before_fork();
        self.hash.before_fork();
    }

    /// The data only: the tree's blocks are read as the data is checked.
    fn will_need(&self, pos: u64, len: u64) -> bool {
        self.data.will_need(pos, len)
    }

    /// Only what the tree covers.
    fn size(&self) -> u64 {
        self.params.data_blocks * u64::from(self.params.data_block_size)
    }

    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        let end = pos
            .checked_add(len as u64)
            .filter(|&e| e <= self.size())
            .ok_or_else(|| {
                Error::corrupt(
                    pos,
                    format!(
                        "{len} bytes at {pos} are not covered by the hash tree ({} bytes)",
                        self.size()
                    ),
                )
            })?;
        if len == 0 {
            return Ok(Cow::Owned(Vec::new()));
        }
        let bs = u64::from(self.params.data_block_size);
        let (first, last) = (pos / bs, (end - 1) / bs);
        let span = self
            .data
            .read_bytes(first * bs, ((last - first + 1) * bs) as usize)?;
        for (i, block) in span.chunks(bs as usize).enumerate() {
            self.check_block(first + i as u64, block)?;
        }
        let a = (pos - first * bs) as usize;
        Ok(Cow::Owned(span[a..a + len].to_vec()))
    }
}
