//! Data and fragment blocks: the size word that inodes and the fragment
//! table store for each block, and the rule every block size obeys.

/// Smallest and largest block sizes SquashFS 4.0 allows.
pub const MIN_BLOCK_SIZE: u32 = 4096;
/// The largest block size SquashFS allows (1 MiB).
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;

/// A block size is a power of two from 4 KiB to 1 MiB.
pub fn valid_block_size(bs: u32) -> bool {
    bs.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs)
}

/// The size word of a data or fragment block: the low 24 bits are its bytes
/// on disk, bit 24 says it is stored uncompressed; 0 is a sparse block (a
/// hole, nothing on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct BlockWord(pub u32);

impl BlockWord {
    /// The bit saying a block is stored uncompressed.
    pub const STORED: u32 = 1 << 24;
    /// The bits holding a block's stored size.
    pub const SIZE_MASK: u32 = Self::STORED - 1;
    /// A hole: a block of zeros, nothing stored.
    pub const SPARSE: BlockWord = BlockWord(0);

    /// The word for a block of `disk_size` bytes, compressed or stored.
    pub fn new(disk_size: u32, stored: bool) -> Self {
        debug_assert!(disk_size <= Self::SIZE_MASK);
        BlockWord(disk_size | if stored { Self::STORED } else { 0 })
    }
    /// Bytes the block occupies on disk.
    pub fn disk_size(self) -> u32 {
        self.0 & Self::SIZE_MASK
    }
    /// Whether the block is stored uncompressed.
    pub fn is_stored(self) -> bool {
        self.0 & Self::STORED != 0
    }
    /// A hole: nothing on disk, the block reads as zeros.
    pub fn is_sparse(self) -> bool {
        self.disk_size() == 0
    }
    /// No bits but the size and the stored flag, and no more bytes on disk
    /// than a block holds.
    pub fn fits(self, block_size: u32) -> bool {
        self.0 & !(Self::STORED | Self::SIZE_MASK) == 0 && self.disk_size() <= block_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_sizes() {
        let w = BlockWord::new(4096, true);
        assert_eq!(w.0, 0x0100_1000);
        assert!(w.is_stored() && !w.is_sparse() && w.fits(4096) && !w.fits(2048));
        assert!(BlockWord::SPARSE.is_sparse());
        assert!(!BlockWord(1 << 25).fits(1 << 20), "unknown bit");
        assert!(valid_block_size(4096) && valid_block_size(1 << 20));
        assert!(
            !valid_block_size(2048) && !valid_block_size(3 << 12) && !valid_block_size(2 << 20)
        );
    }
}
