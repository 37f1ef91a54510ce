//! dm-verity hash trees as veritysetup writes them (hash format 1, or the
//! old format 0): the 512-byte superblock, the tree's geometry, hashing,
//! and building a tree. Pure: callers bring the bytes.
//!
//! The root hash is not stored anywhere: it is what the user trusts.

use crate::error::{Error, Result};
use sha2::Digest;

/// Bytes of the dm-verity superblock (veritysetup's format).
pub const SUPERBLOCK_SIZE: usize = 512;
/// What a dm-verity superblock starts with.
pub const SIGNATURE: &[u8; 8] = b"verity\0\0";
/// The longest salt the superblock holds.
pub const MAX_SALT: usize = 256;
/// What sqfuse writes: 4 KiB data and hash blocks (what the kernel, and
/// systemd and KIWI images, use).
pub const BLOCK_SIZE: u32 = 4096;

/// The hash functions a tree may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// SHA-1.
    Sha1,
    /// SHA-256 (veritysetup's default).
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The algorithm veritysetup names `name`, if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "sha1" => Self::Sha1,
            "sha256" => Self::Sha256,
            "sha512" => Self::Sha512,
            _ => return None,
        })
    }
    /// Its name as veritysetup writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }
    /// Bytes of one digest.
    pub fn digest_size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// Everything that shapes a tree (the superblock's content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// 1: normal (salt first, digests in power-of-two slots); 0: Chrome OS.
    pub hash_type: u32,
    /// The tree's UUID.
    pub uuid: [u8; 16],
    /// The hash algorithm.
    pub algorithm: Algorithm,
    /// Bytes of one data block.
    pub data_block_size: u32,
    /// Bytes of one hash block.
    pub hash_block_size: u32,
    /// Data blocks the tree covers.
    pub data_blocks: u64,
    /// The salt hashed before each block.
    pub salt: Vec<u8>,
}

fn valid_block(bs: u32) -> bool {
    bs.is_power_of_two() && (512..=512 * 1024).contains(&bs)
}

impl Params {
    /// Decodes the superblock, then checks it.
    pub fn parse(b: &[u8], at: u64) -> Result<Self> {
        let bad = |what: String| Error::corrupt(at, format!("verity superblock: {what}"));
        if b.len() < SUPERBLOCK_SIZE || &b[..8] != SIGNATURE {
            return Err(bad("no 'verity' signature".into()));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
        let version = u32_at(8);
        let hash_type = u32_at(12);
        let name_end = b[32..64].iter().position(|&c| c == 0).unwrap_or(32);
        let name = String::from_utf8_lossy(&b[32..32 + name_end]).into_owned();
        let data_block_size = u32_at(64);
        let hash_block_size = u32_at(68);
        let data_blocks = u64::from_le_bytes(b[72..80].try_into().expect("8"));
        let salt_size = usize::from(u16::from_le_bytes([b[80], b[81]]));
        if version != 1 {
            return Err(bad(format!("version {version}, only 1 is known")));
        }
        if hash_type > 1 {
            return Err(bad(format!("hash type {hash_type} is not 0 or 1")));
        }
        let algorithm = Algorithm::from_name(&name)
            .ok_or_else(|| bad(format!("hash algorithm {name:?} is not supported")))?;
        if !valid_block(data_block_size) || !valid_block(hash_block_size) {
            return Err(bad(format!(
                "block sizes {data_block_size}/{hash_block_size} are not powers of two from 512 to 512K"
            )));
        }
        if hash_block_size as usize / algorithm.digest_size() < 2 {
            return Err(bad("hash blocks hold fewer than two digests".into()));
        }
        if salt_size > MAX_SALT {
            return Err(bad(format!(
                "salt of {salt_size} bytes (at most {MAX_SALT})"
            )));
        }
        if data_blocks == 0 {
            return Err(bad("no data blocks".into()));
        }
        Ok(Params {
            hash_type,
            uuid: b[16..32].try_into().expect("16"),
            algorithm,
            data_block_size,
            hash_block_size,
            data_blocks,
            salt: b[88..88 + salt_size].to_vec(),
        })
    }

    /// The writer side of [`Params::parse`].
    pub fn encode(&self) -> [u8; SUPERBLOCK_SIZE] {
        let mut b = [0u8; SUPERBLOCK_SIZE];
        b[..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&self.hash_type.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        let name = self.algorithm.name().as_bytes();
        b[32..32 + name.len()].copy_from_slice(name);
        b[64..68].copy_from_slice(&self.data_block_size.to_le_bytes());
        b[68..72].copy_from_slice(&self.hash_block_size.to_le_bytes());
        b[72..80].copy_from_slice(&self.data_blocks.to_le_bytes());
        b[80..82].copy_from_slice(&(self.salt.len() as u16).to_le_bytes());
        b[88..88 + self.salt.len()].copy_from_slice(&self.salt);
        b
    }

    /// The digest of one block, salted as the hash type says.
    pub fn hash(&self, block: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(salt: &[u8], block: &[u8], salt_first: bool) -> Vec<u8> {
            let mut h = D::new();
            if salt_first {
                h.update(salt);
                h.update(block);
            } else {
                h.update(block);
                h.update(salt);
            }
            h.finalize().to_vec()
        }
        let first = self.hash_type == 1;
        match self.algorithm {
            Algorithm::Sha1 => run::<sha1::Sha1>(&self.salt, block, first),
            Algorithm::Sha256 => run::<sha2::Sha256>(&self.salt, block, first),
            Algorithm::Sha512 => run::<sha2::Sha512>(&self.salt, block, first),
        }
    }

    /// Bytes a digest takes in a hash block: the next power of two in
    /// format 1, the digest itself in format 0.
    pub fn slot_size(&self) -> usize {
        let d = self.algorithm.digest_size();
        if self.hash_type == 1 {
            d.next_power_of_two()
        } else {
            d
        }
    }

    /// Digests per hash block: the largest power of two that fits.
    pub fn per_block(&self) -> u64 {
        let n = self.hash_block_size as usize / self.algorithm.digest_size();
        1 << (usize::BITS - 1 - n.leading_zeros())
    }

    /// The levels, top first as they are stored: (first hash block, blocks)
    /// counted from the tree's start.
    pub fn levels(&self) -> Vec<(u64, u64)> {
        let bits = self.per_block().trailing_zeros();
        // data_blocks comes from an untrusted superblock: shifts of 64 bits
        // or more give 0, never a panic.
        let above = |shift: u32| {
            (self.data_blocks.saturating_sub(1))
                .checked_shr(shift)
                .unwrap_or(0)
        };
        let mut count = 0u32;
        while above(bits * count) != 0 {
            count += 1;
        }
        // Level i (0: hashes of data blocks) has ceil(data_blocks / P^(i+1)) blocks.
        let sizes: Vec<u64> = (0..count).map(|i| above(bits * (i + 1)) + 1).collect();
        let mut out = vec![(0u64, 0u64); count as usize];
        let mut at = 0;
        for i in (0..count as usize).rev() {
            out[i] = (at, sizes[i]);
            at += sizes[i];
        }
        out
    }

    /// Hash blocks in the whole tree.
    pub fn tree_blocks(&self) -> u64 {
        self.levels().iter().map(|l| l.1).sum()
    }

    /// Where data block `b`'s digest is at each level, bottom up:
    /// (hash block from the tree's start, byte offset in that block).
    pub fn path(&self, b: u64) -> Vec<(u64, usize)> {
        let bits = self.per_block().trailing_zeros();
        self.levels()
            .iter()
            .enumerate()
            .map(|(i, &(start, _))| {
                let e = b.checked_shr(bits * i as u32).unwrap_or(0);
                let block = start + (e >> bits);
                let slot = (e & (self.per_block() - 1)) as usize;
                (block, slot * self.slot_size())
            })
            .collect()
    }
}

/// A tree and its root, built from `data_blocks` blocks handed over in
/// order: the hash area (levels top first, as stored) and the root digest.
pub struct TreeBuilder {
    params: Params,
    /// Per level, bottom up: the hash block being filled, and the blocks done.
    levels: Vec<(Vec<u8>, Vec<u8>)>,
    blocks_in: u64,
    /// The first data block's digest: the root of a one-block tree.
    first: Option<Vec<u8>>,
}

impl TreeBuilder {
    /// A builder for a tree with `params`.
    pub fn new(params: Params) -> Self {
        let n = params.levels().len();
        TreeBuilder {
            levels: vec![(Vec::new(), Vec::new()); n],
            params,
            blocks_in: 0,
            first: None,
        }
    }

    /// Adds the next data block (`data_block_size` bytes).
    pub fn push(&mut self, block: &[u8]) {
        let digest = self.params.hash(block);
        self.push_digest(&digest);
    }

    /// Adds the next data block by its digest (computed elsewhere, as
    /// [`Params::hash`] does: blocks can be hashed in parallel).
    pub fn push_digest(&mut self, digest: &[u8]) {
        self.blocks_in += 1;
        self.first.get_or_insert_with(|| digest.to_vec());
        self.add(0, digest);
    }

    fn add(&mut self, level: usize, digest: &[u8]) {
        let Some(lv) = self.levels.get_mut(level) else {
            return; // no levels: one data block, its digest is the root
        };
        let hb = self.params.hash_block_size as usize;
        let slot = self.params.slot_size();
        lv.0.extend_from_slice(digest);
        lv.0.resize(lv.0.len() + slot - digest.len(), 0);
        if lv.0.len() + slot > hb || lv.0.len() / slot == self.params.per_block() as usize {
            self.close(level);
        }
    }

    fn close(&mut self, level: usize) {
        let hb = self.params.hash_block_size as usize;
        let mut block = std::mem::take(&mut self.levels[level].0);
        block.resize(hb, 0);
        let digest = self.params.hash(&block);
        self.levels[level].1.extend_from_slice(&block);
        self.add(level + 1, &digest);
    }

    /// The hash area (top level first) and the root hash.
    pub fn finish(mut self) -> Result<(Vec<u8>, Vec<u8>)> {
        if self.blocks_in != self.params.data_blocks {
            return Err(Error::invalid(format!(
                "verity tree of {} blocks given {}",
                self.params.data_blocks, self.blocks_in
            )));
        }
        if self.levels.is_empty() {
            let root = self.first.take().expect("one block pushed");
            return Ok((Vec::new(), root));
        }
        for level in 0..self.levels.len() {
            if !self.levels[level].0.is_empty() {
                self.close(level);
            }
        }
        let top = self.levels.last().expect("levels");
        let root = self
            .params
            .hash(&top.1[..self.params.hash_block_size as usize]);
        let mut area = Vec::new();
        for lv in self.levels.iter().rev() {
            area.extend_from_slice(&lv.1);
        }
        Ok((area, root))
    }
}

/// Where an appended tree goes: its superblock at `hash_offset` (a
/// multiple of the hash block size), the tree one hash block later.
pub fn tree_offset(hash_offset: u64, hash_block_size: u32) -> u64 {
    (hash_offset + SUPERBLOCK_SIZE as u64).next_multiple_of(u64::from(hash_block_size))
}

/// Parses a root hash or salt written in hex.
pub fn parse_hex(s: &str, what: &str) -> Result<Vec<u8>> {
    hex::decode(s.trim()).map_err(|e| Error::invalid(format!("{what} {s:?} is not hex: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(blocks: u64) -> Params {
        Params {
            hash_type: 1,
            uuid: [0; 16],
            algorithm: Algorithm::Sha256,
            data_block_size: 4096,
            hash_block_size: 4096,
            data_blocks: blocks,
            salt: (0u8..32).collect(),
        }
    }

    fn tree(blocks: u64, fill: impl Fn(u64) -> u8) -> (Vec<u8>, Vec<u8>) {
        let p = params(blocks);
        let mut t = TreeBuilder::new(p);
        for b in 0..blocks {
            t.push(&[fill(b); 4096]);
        }
        t.finish().unwrap()
    }

    /// The worked example checked against veritysetup 2.6.1.
    #[test]
    fn three_blocks_give_veritysetups_root() {
        let (area, root) = tree(3, |b| [0x11, 0x22, 0x33][b as usize]);
        assert_eq!(area.len(), 4096);
        assert_eq!(
            hex::encode(root),
            "d8988b5611c53afda3437ba1003270abde192ba948840b3aac44043e752b96b4"
        );
        assert!(area[96..].iter().all(|&b| b == 0), "padding is zero");
    }

    #[test]
    fn geometry_of_larger_trees() {
        assert_eq!(params(1).levels(), vec![]);
        // Blocks counted from the tree's start (veritysetup's worked
        // example counts from the file's, one superblock block earlier).
        assert_eq!(params(200).levels(), vec![(1, 2), (0, 1)]);
        assert_eq!(params(20000).tree_blocks(), 160);
        let p = params(200);
        // Data block 150: level 0 block 1 + 1, slot 22; level 1 (top) block 0, slot 1.
        assert_eq!(p.path(150), vec![(2, 22 * 32), (0, 32)]);
        let (area, _) = tree(200, |b| b as u8);
        assert_eq!(area.len(), 3 * 4096);
    }

    #[test]
    fn hostile_block_counts_do_not_panic() {
        let mut p = params(u64::MAX);
        assert_eq!(p.levels().len(), 10);
        p.data_blocks = 1 << 63;
        let _ = p.path(u64::MAX);
        let _ = p.tree_blocks();
    }

    #[test]
    fn superblocks_round_trip_and_are_checked() {
        let p = params(7);
        assert_eq!(Params::parse(&p.encode(), 0).unwrap(), p);
        let mut bad = p.encode();
        bad[32..38].copy_from_slice(b"md5\0\0\0");
        assert!(Params::parse(&bad, 0).is_err());
        let mut bad = p.encode();
        bad[80..82].copy_from_slice(&300u16.to_le_bytes());
        assert!(Params::parse(&bad, 0).is_err());
    }
}
