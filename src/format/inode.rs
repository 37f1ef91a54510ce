//! Inodes: the 16-byte common header and the 14 type-specific layouts.

use super::metadata::{MetaCursor, MetaSource};
use super::NONE_U32;
use crate::error::{Error, Result};

pub const HEADER_SIZE: usize = 16;

/// Inode types as stored (basic 1..7, extended 8..14).
pub mod types {
    pub const DIR: u16 = 1;
    pub const FILE: u16 = 2;
    pub const SYMLINK: u16 = 3;
    pub const BLKDEV: u16 = 4;
    pub const CHRDEV: u16 = 5;
    pub const FIFO: u16 = 6;
    pub const SOCKET: u16 = 7;
    pub const EXT_OFFSET: u16 = 7;
}

/// What kind of file an inode (or directory entry) describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Dir,
    File,
    Symlink,
    BlockDev,
    CharDev,
    Fifo,
    Socket,
}

impl FileType {
    /// From a basic or extended type number.
    pub fn from_type(t: u16) -> Option<Self> {
        let basic = if t > types::EXT_OFFSET {
            t - types::EXT_OFFSET
        } else {
            t
        };
        Some(match basic {
            1 => Self::Dir,
            2 => Self::File,
            3 => Self::Symlink,
            4 => Self::BlockDev,
            5 => Self::CharDev,
            6 => Self::Fifo,
            7 => Self::Socket,
            _ => return None,
        })
        .filter(|_| (1..=14).contains(&t))
    }
    /// The `S_IF*` format bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            Self::Dir => libc::S_IFDIR,
            Self::File => libc::S_IFREG,
            Self::Symlink => libc::S_IFLNK,
            Self::BlockDev => libc::S_IFBLK,
            Self::CharDev => libc::S_IFCHR,
            Self::Fifo => libc::S_IFIFO,
            Self::Socket => libc::S_IFSOCK,
        }
    }
    /// `ls -l`'s type letter.
    pub fn letter(self) -> char {
        match self {
            Self::Dir => 'd',
            Self::File => '-',
            Self::Symlink => 'l',
            Self::BlockDev => 'b',
            Self::CharDev => 'c',
            Self::Fifo => 'p',
            Self::Socket => 's',
        }
    }
}

/// A directory's listing location plus its index entries' location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInfo {
    /// Block of the listing, relative to the directory table.
    pub block: u32,
    pub offset: u16,
    /// Listing size as stored: bytes of runs plus 3.
    pub size: u32,
    pub parent: u32,
    pub index_count: u16,
    /// Where the index entries start in the inode table (extended only).
    pub index_at: Option<(u64, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub blocks_start: u64,
    pub size: u64,
    pub sparse: u64,
    /// Fragment index and offset of the tail, if it sits in a fragment.
    pub fragment: Option<(u32, u32)>,
    /// Block-size words: bit 24 = stored, low 24 bits = bytes on disk, 0 = sparse.
    pub blocks: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeData {
    Dir(DirInfo),
    File(FileInfo),
    Symlink(Vec<u8>),
    BlockDev(u32),
    CharDev(u32),
    Fifo,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub inode_type: u16,
    /// Permission bits (incl. setuid, setgid, sticky) without format bits.
    pub perm: u16,
    pub uid_index: u16,
    pub gid_index: u16,
    pub mtime: u32,
    pub number: u32,
    pub nlink: u32,
    pub xattr: Option<u32>,
    pub data: InodeData,
}

pub const BLOCK_STORED: u32 = 1 << 24;
pub const BLOCK_SIZE_MASK: u32 = BLOCK_STORED - 1;

impl Inode {
    pub fn file_type(&self) -> FileType {
        FileType::from_type(self.inode_type).expect("validated at parse")
    }
    pub fn mode(&self) -> u32 {
        self.file_type().mode_bits() | u32::from(self.perm & 0o7777)
    }
    pub fn is_dir(&self) -> bool {
        matches!(self.data, InodeData::Dir(_))
    }
    /// Size as `stat` reports it.
    pub fn size(&self) -> u64 {
        match &self.data {
            InodeData::Dir(d) => u64::from(d.size),
            InodeData::File(f) => f.size,
            InodeData::Symlink(t) => t.len() as u64,
            _ => 0,
        }
    }
    pub fn rdev(&self) -> u32 {
        match self.data {
            InodeData::BlockDev(r) | InodeData::CharDev(r) => r,
            _ => 0,
        }
    }

    /// Parses the inode at the cursor. `block_size` and `inode_count` bound
    /// what the fields may say; `pos` is the image offset for errors.
    pub fn parse<S: MetaSource + ?Sized>(
        c: &mut MetaCursor<'_, S>,
        block_size: u32,
        inode_count: u32,
    ) -> Result<Self> {
        let pos = c.pos();
        let mut h = [0u8; HEADER_SIZE];
        c.read(&mut h)?;
        let le16 = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let inode_type = le16(0);
        if FileType::from_type(inode_type).is_none() {
            return Err(Error::corrupt(
                pos,
                format!("unknown inode type {inode_type}"),
            ));
        }
        let perm = le16(2);
        let (uid_index, gid_index) = (le16(4), le16(6));
        let mtime = u32::from_le_bytes(h[8..12].try_into().unwrap());
        let number = u32::from_le_bytes(h[12..16].try_into().unwrap());
        if number == 0 || number > inode_count {
            return Err(Error::corrupt(
                pos,
                format!("inode number {number} is outside 1..={inode_count}"),
            ));
        }
        let xopt = |x: u32| (x != NONE_U32).then_some(x);
        let (nlink, xattr, data) = match inode_type {
            1 => {
                let block = c.u32()?;
                let nlink = c.u32()?;
                let size = u32::from(c.u16()?);
                let offset = c.u16()?;
                let parent = c.u32()?;
                let d = DirInfo {
                    block,
                    offset,
                    size,
                    parent,
                    index_count: 0,
                    index_at: None,
                };
                (nlink, None, InodeData::Dir(d))
            }
            8 => {
                let nlink = c.u32()?;
                let size = c.u32()?;
                let block = c.u32()?;
                let parent = c.u32()?;
                let index_count = c.u16()?;
                let offset = c.u16()?;
                let xattr = xopt(c.u32()?);
                let index_at = Some(c.meta_ref()).filter(|_| index_count > 0);
                (
                    nlink,
                    xattr,
                    InodeData::Dir(DirInfo {
                        block,
                        offset,
                        size,
                        parent,
                        index_count,
                        index_at,
                    }),
                )
            }
            2 => {
                let blocks_start = u64::from(c.u32()?);
                let frag = c.u32()?;
                let frag_off = c.u32()?;
                let size = u64::from(c.u32()?);
                let f =
                    read_file_blocks(c, pos, blocks_start, size, 0, frag, frag_off, block_size)?;
                (1, None, InodeData::File(f))
            }
            9 => {
                let blocks_start = c.u64()?;
                let size = c.u64()?;
                let sparse = c.u64()?;
                let nlink = c.u32()?;
                let frag = c.u32()?;
                let frag_off = c.u32()?;
                let xattr = xopt(c.u32()?);
                let f = read_file_blocks(
                    c,
                    pos,
                    blocks_start,
                    size,
                    sparse,
                    frag,
                    frag_off,
                    block_size,
                )?;
                (nlink, xattr, InodeData::File(f))
            }
            3 | 10 => {
                let nlink = c.u32()?;
                let len = c.u32()?;
                if len > 65535 {
                    return Err(Error::corrupt(
                        pos,
                        format!("symlink target of {len} bytes is longer than 65535"),
                    ));
                }
                let target = c.read_vec(u64::from(len))?;
                if target.contains(&0) {
                    return Err(Error::corrupt(pos, "symlink target contains a NUL byte"));
                }
                let xattr = if inode_type == 10 {
                    xopt(c.u32()?)
                } else {
                    None
                };
                (nlink, xattr, InodeData::Symlink(target))
            }
            4 | 5 | 11 | 12 => {
                let nlink = c.u32()?;
                let rdev = c.u32()?;
                let xattr = if inode_type > 7 { xopt(c.u32()?) } else { None };
                let d = if inode_type % 7 == 4 {
                    InodeData::BlockDev(rdev)
                } else {
                    InodeData::CharDev(rdev)
                };
                (nlink, xattr, d)
            }
            6 | 7 | 13 | 14 => {
                let nlink = c.u32()?;
                let xattr = if inode_type > 7 { xopt(c.u32()?) } else { None };
                (
                    nlink,
                    xattr,
                    if inode_type % 7 == 6 {
                        InodeData::Fifo
                    } else {
                        InodeData::Socket
                    },
                )
            }
            _ => unreachable!("type validated above"),
        };
        Ok(Inode {
            inode_type,
            perm,
            uid_index,
            gid_index,
            mtime,
            number,
            nlink,
            xattr,
            data,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn read_file_blocks<S: MetaSource + ?Sized>(
    c: &mut MetaCursor<'_, S>,
    pos: u64,
    blocks_start: u64,
    size: u64,
    sparse: u64,
    frag: u32,
    frag_off: u32,
    block_size: u32,
) -> Result<FileInfo> {
    let bs = u64::from(block_size);
    let fragment = (frag != NONE_U32).then_some((frag, frag_off));
    let tail = size % bs;
    let count = if fragment.is_some() {
        size / bs
    } else {
        size.div_ceil(bs)
    };
    if fragment.is_some() && (tail == 0 && size > 0 || u64::from(frag_off) >= bs) {
        // A fragment tail must be a partial block starting inside the fragment.
        if tail == 0 && size > 0 {
            return Err(Error::corrupt(
                pos,
                format!("file of {size} bytes has no tail but names fragment {frag}"),
            ));
        }
        return Err(Error::corrupt(
            pos,
            format!("fragment offset {frag_off} is past the block size"),
        ));
    }
    // Grow as words are really read: `count` is an unchecked disk value.
    let mut blocks = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let w = c.u32()?;
        if w & !(BLOCK_STORED | BLOCK_SIZE_MASK) != 0 || (w & BLOCK_SIZE_MASK) > block_size {
            return Err(Error::corrupt(
                pos,
                format!("block size word 0x{w:08x} is larger than the block size"),
            ));
        }
        blocks.push(w);
    }
    Ok(FileInfo {
        blocks_start,
        size,
        sparse,
        fragment,
        blocks,
    })
}

/// Device number in Linux's encoding: `(minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)`.
pub fn rdev_split(rdev: u32) -> (u32, u32) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::{MetaCursor, Uncached};
    use super::*;

    fn stored_block(payload: &[u8]) -> Vec<u8> {
        let mut b = (0x8000u16 | payload.len() as u16).to_le_bytes().to_vec();
        b.extend_from_slice(payload);
        b
    }

    fn parse(payload: &[u8]) -> Result<Inode> {
        let img = stored_block(payload);
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        let mut c = MetaCursor::new(&src, 0, img.len() as u64, 0, 0)?;
        Inode::parse(&mut c, 4096, 10)
    }

    #[test]
    fn basic_file_with_fragment_tail() {
        let mut p = Vec::new();
        p.extend_from_slice(&2u16.to_le_bytes()); // type: basic file
        p.extend_from_slice(&0o4755u16.to_le_bytes()); // perm incl. setuid
        p.extend_from_slice(&0u16.to_le_bytes()); // uid index
        p.extend_from_slice(&1u16.to_le_bytes()); // gid index
        p.extend_from_slice(&1234u32.to_le_bytes()); // mtime
        p.extend_from_slice(&5u32.to_le_bytes()); // inode number
        p.extend_from_slice(&96u32.to_le_bytes()); // blocks_start
        p.extend_from_slice(&0u32.to_le_bytes()); // fragment index
        p.extend_from_slice(&100u32.to_le_bytes()); // fragment offset
        p.extend_from_slice(&(4096u32 * 2 + 10).to_le_bytes()); // file size
        p.extend_from_slice(&(BLOCK_STORED | 4096).to_le_bytes()); // block 0: stored
        p.extend_from_slice(&0u32.to_le_bytes()); // block 1: sparse
        let i = parse(&p).unwrap();
        assert_eq!(i.mode(), libc::S_IFREG | 0o4755);
        let InodeData::File(f) = i.data else { panic!() };
        assert_eq!(f.blocks, vec![BLOCK_STORED | 4096, 0]);
        assert_eq!(f.fragment, Some((0, 100)));
        // Truncate the block list: the parse must fail, not read past.
        assert!(parse(&p[..p.len() - 2]).is_err());
    }

    #[test]
    fn extended_symlink_and_bad_numbers() {
        let mut p = Vec::new();
        p.extend_from_slice(&10u16.to_le_bytes()); // type: ext symlink
        p.extend_from_slice(&0o777u16.to_le_bytes()); // perm
        p.extend_from_slice(&[0, 0, 0, 0]); // uid, gid index
        p.extend_from_slice(&0u32.to_le_bytes()); // mtime
        p.extend_from_slice(&3u32.to_le_bytes()); // inode number
        p.extend_from_slice(&1u32.to_le_bytes()); // nlink
        p.extend_from_slice(&4u32.to_le_bytes()); // target size
        p.extend_from_slice(b"/tmp"); // target
        p.extend_from_slice(&7u32.to_le_bytes()); // xattr index
        let i = parse(&p).unwrap();
        assert_eq!(i.data, InodeData::Symlink(b"/tmp".to_vec()));
        assert_eq!(i.xattr, Some(7));
        let mut bad = p.clone();
        bad[12..16].copy_from_slice(&11u32.to_le_bytes()); // number > inode_count
        assert!(parse(&bad).is_err());
        bad = p.clone();
        bad[0] = 15; // unknown type
        assert!(parse(&bad).is_err());
    }

    #[test]
    fn rdev_encoding_matches_linux() {
        // major 4095, minor 1048575: the largest Linux can encode here.
        let rdev = (0xff) | (4095 << 8) | ((1048575u32 & !0xff) << 12);
        assert_eq!(rdev_split(rdev), (4095, 1048575));
        assert_eq!(rdev_split(0x0801), (8, 1));
    }
}
