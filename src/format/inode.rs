//! Inodes: the 16-byte common header and the 14 type-specific layouts.

use super::block::BlockWord;
use super::dir::IndexEntry;
pub use super::file_type::FileType;
use super::le::{u16_at, u32_at};
use super::metadata::{MetaCursor, MetaSource};
use super::NONE_U32;
use crate::error::{Error, Result};

/// Bytes of the header every inode starts with.
pub const HEADER_SIZE: usize = 16;

/// The 14 inode type numbers: each file type has a basic form (1..=7) and
/// an extended one 7 higher (8..=14) with room for xattrs, link counts and
/// larger sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum InodeType {
    /// Directory, basic form.
    Dir = 1,
    /// Regular file, basic form.
    File = 2,
    /// Symbolic link, basic form.
    Symlink = 3,
    /// Block device, basic form.
    BlockDev = 4,
    /// Character device, basic form.
    CharDev = 5,
    /// Named pipe, basic form.
    Fifo = 6,
    /// Socket, basic form.
    Socket = 7,
    /// Directory with a link count past 16 bits, an index or xattrs.
    ExtDir = 8,
    /// Regular file with a large start, sparse bytes, links or xattrs.
    ExtFile = 9,
    /// Symbolic link with xattrs.
    ExtSymlink = 10,
    /// Block device with xattrs.
    ExtBlockDev = 11,
    /// Character device with xattrs.
    ExtCharDev = 12,
    /// Named pipe with xattrs.
    ExtFifo = 13,
    /// Socket with xattrs.
    ExtSocket = 14,
}

/// How far an extended type number is from its basic one.
const EXTENDED_OFFSET: u16 = 7;

impl InodeType {
    const ALL: [InodeType; 14] = [
        Self::Dir,
        Self::File,
        Self::Symlink,
        Self::BlockDev,
        Self::CharDev,
        Self::Fifo,
        Self::Socket,
        Self::ExtDir,
        Self::ExtFile,
        Self::ExtSymlink,
        Self::ExtBlockDev,
        Self::ExtCharDev,
        Self::ExtFifo,
        Self::ExtSocket,
    ];

    /// The type with this number (1 to 14), if it is one.
    pub fn from_u16(t: u16) -> Option<Self> {
        Self::ALL.get(usize::from(t).checked_sub(1)?).copied()
    }
    /// The basic or extended type of `ft`.
    pub fn new(ft: FileType, extended: bool) -> Self {
        let basic = usize::from(ft.dir_entry_type() - 1);
        Self::ALL[basic
            + if extended {
                EXTENDED_OFFSET as usize
            } else {
                0
            }]
    }
    /// What kind of file it is.
    pub fn file_type(self) -> FileType {
        FileType::BASIC[usize::from(self.basic_number() - 1)]
    }
    /// Whether this is the extended form.
    pub fn is_extended(self) -> bool {
        self as u16 > EXTENDED_OFFSET
    }
    /// The basic form's number (what directory entries store).
    pub fn basic_number(self) -> u16 {
        let t = self as u16;
        if t > EXTENDED_OFFSET {
            t - EXTENDED_OFFSET
        } else {
            t
        }
    }

    /// The smallest form that holds an inode's values: the basic one unless
    /// a field needs the extended layout (xattrs; a directory index or a
    /// listing over 64 KiB; a file with links, holes, or an offset or size
    /// past 4 GiB).
    pub fn smallest(data: &InodeData, nlink: u32, xattr: Option<u32>) -> Self {
        let extended = xattr.is_some()
            || match data {
                InodeData::Dir(d) => d.index_count > 0 || d.size > u32::from(u16::MAX),
                InodeData::File(f) => {
                    nlink != 1
                        || f.sparse != 0
                        || f.blocks_start > u64::from(u32::MAX)
                        || f.size > u64::from(u32::MAX)
                }
                _ => false,
            };
        Self::new(data.file_type(), extended)
    }
}

/// A directory's listing location plus its index entries' location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInfo {
    /// Block of the listing, relative to the directory table.
    pub block: u32,
    /// Offset of the listing inside that block.
    pub offset: u16,
    /// Listing size as stored: bytes of runs plus 3.
    pub size: u32,
    /// Inode number of the parent directory (the root's is one past the inode count).
    pub parent: u32,
    /// Entries in the directory index (extended form).
    pub index_count: u16,
    /// Where the index entries start in the inode table (set by the
    /// decoder for extended directories with an index; the encoder writes
    /// the entries it is given instead).
    pub index_at: Option<(u64, usize)>,
}

/// Where a regular file's data lives and how big it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Image offset of the first data block.
    pub blocks_start: u64,
    /// The file's size in bytes.
    pub size: u64,
    /// Bytes of holes (blocks stored as sparse), as mksquashfs counts them.
    pub sparse: u64,
    /// Fragment index and offset of the tail, if it sits in a fragment.
    pub fragment: Option<(u32, u32)>,
    /// One size word per full block (and the tail block, without a fragment).
    pub blocks: Vec<BlockWord>,
}

/// What the inode holds beyond its header, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeData {
    /// A directory's listing place and size.
    Dir(DirInfo),
    /// A regular file's blocks.
    File(FileInfo),
    /// A symbolic link's target.
    Symlink(Vec<u8>),
    /// A block device's number (as `new_encode_dev` packs it).
    BlockDev(u32),
    /// A character device's number.
    CharDev(u32),
    /// A named pipe.
    Fifo,
    /// A socket.
    Socket,
}

impl InodeData {
    /// What kind of file it is.
    pub fn file_type(&self) -> FileType {
        match self {
            Self::Dir(_) => FileType::Dir,
            Self::File(_) => FileType::File,
            Self::Symlink(_) => FileType::Symlink,
            Self::BlockDev(_) => FileType::BlockDev,
            Self::CharDev(_) => FileType::CharDev,
            Self::Fifo => FileType::Fifo,
            Self::Socket => FileType::Socket,
        }
    }
}

/// An inode as decoded (and as the encoder writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// Its type number, basic or extended.
    pub inode_type: InodeType,
    /// Permission bits (incl. setuid, setgid, sticky) without format bits.
    pub perm: u16,
    /// Index of its owner in the id table.
    pub uid_index: u16,
    /// Index of its group in the id table.
    pub gid_index: u16,
    /// Modification time, seconds since the epoch.
    pub mtime: u32,
    /// Its inode number, 1 to the inode count.
    pub number: u32,
    /// Hard link count.
    pub nlink: u32,
    /// Its xattr id, if it has xattrs.
    pub xattr: Option<u32>,
    /// The type's own fields.
    pub data: InodeData,
}

/// Longest symlink target the kernel reads.
pub const MAX_SYMLINK: usize = 65535;

fn xattr_field(x: Option<u32>) -> u32 {
    x.unwrap_or(NONE_U32)
}

impl Inode {
    /// What kind of file it is.
    pub fn file_type(&self) -> FileType {
        self.inode_type.file_type()
    }
    /// `st_mode`: the file type bits and the permissions.
    pub fn mode(&self) -> u32 {
        self.file_type().mode_bits() | u32::from(self.perm & 0o7777)
    }
    /// Whether it is a directory.
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
    /// A device's number (0 for anything else).
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
        let raw_type = u16_at(&h, 0);
        let inode_type = InodeType::from_u16(raw_type)
            .ok_or_else(|| Error::corrupt(pos, format!("unknown inode type {raw_type}")))?;
        let perm = u16_at(&h, 2);
        let (uid_index, gid_index) = (u16_at(&h, 4), u16_at(&h, 6));
        let mtime = u32_at(&h, 8);
        let number = u32_at(&h, 12);
        if number == 0 || number > inode_count {
            return Err(Error::corrupt(
                pos,
                format!("inode number {number} is outside 1..={inode_count}"),
            ));
        }
        let xopt = |x: u32| (x != NONE_U32).then_some(x);
        let ext = inode_type.is_extended();
        let (nlink, xattr, data) = match inode_type.file_type() {
            FileType::Dir if !ext => {
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
            FileType::Dir => {
                let nlink = c.u32()?;
                let size = c.u32()?;
                let block = c.u32()?;
                let parent = c.u32()?;
                let index_count = c.u16()?;
                let offset = c.u16()?;
                let xattr = xopt(c.u32()?);
                let index_at = Some(c.meta_ref()).filter(|_| index_count > 0);
                let d = DirInfo {
                    block,
                    offset,
                    size,
                    parent,
                    index_count,
                    index_at,
                };
                (nlink, xattr, InodeData::Dir(d))
            }
            FileType::File if !ext => {
                let blocks_start = u64::from(c.u32()?);
                let frag = c.u32()?;
                let frag_off = c.u32()?;
                let size = u64::from(c.u32()?);
                let f =
                    read_file_blocks(c, pos, blocks_start, size, 0, frag, frag_off, block_size)?;
                (1, None, InodeData::File(f))
            }
            FileType::File => {
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
            FileType::Symlink => {
                let nlink = c.u32()?;
                let len = c.u32()?;
                if len as usize > MAX_SYMLINK {
                    return Err(Error::corrupt(
                        pos,
                        format!("symlink target of {len} bytes is longer than {MAX_SYMLINK}"),
                    ));
                }
                let target = c.read_vec(u64::from(len))?;
                if target.contains(&0) {
                    return Err(Error::corrupt(pos, "symlink target contains a NUL byte"));
                }
                let xattr = if ext { xopt(c.u32()?) } else { None };
                (nlink, xattr, InodeData::Symlink(target))
            }
            ft @ (FileType::BlockDev | FileType::CharDev) => {
                let nlink = c.u32()?;
                let rdev = c.u32()?;
                let xattr = if ext { xopt(c.u32()?) } else { None };
                let d = if ft == FileType::BlockDev {
                    InodeData::BlockDev(rdev)
                } else {
                    InodeData::CharDev(rdev)
                };
                (nlink, xattr, d)
            }
            ft @ (FileType::Fifo | FileType::Socket) => {
                let nlink = c.u32()?;
                let xattr = if ext { xopt(c.u32()?) } else { None };
                let d = if ft == FileType::Fifo {
                    InodeData::Fifo
                } else {
                    InodeData::Socket
                };
                (nlink, xattr, d)
            }
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

    /// Encodes the inode in the form `inode_type` names (the writer side of
    /// [`Inode::parse`]), followed for an extended directory by its index
    /// entries. A value the form cannot hold is an error, never truncated.
    pub fn encode(&self, index: &[IndexEntry], out: &mut Vec<u8>) -> Result<()> {
        let t = self.inode_type;
        let bad = |what: String| Err(Error::invalid(format!("inode {}: {what}", self.number)));
        if t.file_type() != self.data.file_type() {
            return bad(format!("type {t:?} with {:?} data", self.data.file_type()));
        }
        let ext = t.is_extended();
        if !ext && self.xattr.is_some() {
            return bad(format!("basic type {t:?} has no room for xattrs"));
        }
        out.extend_from_slice(&(t as u16).to_le_bytes());
        for v in [self.perm, self.uid_index, self.gid_index] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.mtime.to_le_bytes());
        out.extend_from_slice(&self.number.to_le_bytes());
        let put32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
        let put64 = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_le_bytes());
        match &self.data {
            InodeData::Dir(d) => {
                if usize::from(d.index_count) != index.len() || (!ext && !index.is_empty()) {
                    return bad(format!(
                        "directory says {} index entries, {} given",
                        d.index_count,
                        index.len()
                    ));
                }
                if ext {
                    put32(out, self.nlink);
                    put32(out, d.size);
                    put32(out, d.block);
                    put32(out, d.parent);
                    out.extend_from_slice(&d.index_count.to_le_bytes());
                    out.extend_from_slice(&d.offset.to_le_bytes());
                    put32(out, xattr_field(self.xattr));
                    for e in index {
                        e.encode(out)?;
                    }
                } else {
                    let Ok(size) = u16::try_from(d.size) else {
                        return bad(format!(
                            "listing of {} bytes needs the extended form",
                            d.size
                        ));
                    };
                    put32(out, d.block);
                    put32(out, self.nlink);
                    out.extend_from_slice(&size.to_le_bytes());
                    out.extend_from_slice(&d.offset.to_le_bytes());
                    put32(out, d.parent);
                }
            }
            InodeData::File(f) => {
                let (frag, frag_off) = f.fragment.unwrap_or((NONE_U32, 0));
                if ext {
                    put64(out, f.blocks_start);
                    put64(out, f.size);
                    put64(out, f.sparse);
                    put32(out, self.nlink);
                    put32(out, frag);
                    put32(out, frag_off);
                    put32(out, xattr_field(self.xattr));
                } else {
                    let (Ok(start), Ok(size)) =
                        (u32::try_from(f.blocks_start), u32::try_from(f.size))
                    else {
                        return bad("offset or size past 4 GiB needs the extended form".into());
                    };
                    if self.nlink != 1 || f.sparse != 0 {
                        return bad("links or holes need the extended form".into());
                    }
                    put32(out, start);
                    put32(out, frag);
                    put32(out, frag_off);
                    put32(out, size);
                }
                for w in &f.blocks {
                    put32(out, w.0);
                }
            }
            InodeData::Symlink(target) => {
                if target.len() > MAX_SYMLINK {
                    return bad(format!("symlink target of {} bytes", target.len()));
                }
                put32(out, self.nlink);
                put32(out, target.len() as u32);
                out.extend_from_slice(target);
                if ext {
                    put32(out, xattr_field(self.xattr));
                }
            }
            InodeData::BlockDev(rdev) | InodeData::CharDev(rdev) => {
                put32(out, self.nlink);
                put32(out, *rdev);
                if ext {
                    put32(out, xattr_field(self.xattr));
                }
            }
            InodeData::Fifo | InodeData::Socket => {
                put32(out, self.nlink);
                if ext {
                    put32(out, xattr_field(self.xattr));
                }
            }
        }
        Ok(())
    }
}

/// How many block words a file of `size` bytes has: one per full block,
/// plus one for the tail unless the tail sits in a fragment.
pub fn block_count(size: u64, block_size: u32, has_fragment: bool) -> u64 {
    let bs = u64::from(block_size);
    if has_fragment {
        size / bs
    } else {
        size.div_ceil(bs)
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
    let fragment = (frag != NONE_U32).then_some((frag, frag_off));
    let tail = size % u64::from(block_size);
    // A fragment tail must be a partial block starting inside the fragment.
    if fragment.is_some() && tail == 0 && size > 0 {
        return Err(Error::corrupt(
            pos,
            format!("file of {size} bytes has no tail but names fragment {frag}"),
        ));
    }
    if fragment.is_some() && frag_off >= block_size {
        return Err(Error::corrupt(
            pos,
            format!("fragment offset {frag_off} is past the block size"),
        ));
    }
    let count = block_count(size, block_size, fragment.is_some());
    // Grow as words are really read: `count` is an unchecked disk value.
    let mut blocks = Vec::with_capacity(count.min(4096) as usize);
    for _ in 0..count {
        let w = BlockWord(c.u32()?);
        if !w.fits(block_size) {
            return Err(Error::corrupt(
                pos,
                format!(
                    "block size word 0x{:08x} is larger than the block size",
                    w.0
                ),
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

/// Device numbers in Linux's 32-bit encoding, as SquashFS stores them:
/// `(minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)`. Major has 12
/// bits and minor 20; larger numbers cannot be stored (`None`).
pub fn rdev_encode(major: u32, minor: u32) -> Option<u32> {
    (major <= 0xfff && minor <= 0xf_ffff)
        .then_some((minor & 0xff) | (major << 8) | ((minor & 0xfff00) << 12))
}

/// The inverse of [`rdev_encode`]: (major, minor).
pub fn rdev_split(rdev: u32) -> (u32, u32) {
    let major = (rdev >> 8) & 0xfff;
    let minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::{encode_block, MetaCursor, Uncached};
    use super::*;

    fn parse(payload: &[u8]) -> Result<Inode> {
        let img = encode_block(payload, None);
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
        p.extend_from_slice(&0x0100_1000u32.to_le_bytes()); // block 0: stored, 4096 bytes
        p.extend_from_slice(&0u32.to_le_bytes()); // block 1: sparse
        let i = parse(&p).unwrap();
        assert_eq!(i.mode(), libc::S_IFREG | 0o4755);
        let InodeData::File(f) = i.data else { panic!() };
        assert_eq!(
            f.blocks,
            vec![BlockWord::new(4096, true), BlockWord::SPARSE]
        );
        // And back: the encoder writes the same bytes.
        let mut again = Vec::new();
        parse(&p).unwrap().encode(&[], &mut again).unwrap();
        assert_eq!(again, p);
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
        assert_eq!(rdev_encode(4095, 1048575), Some(rdev));
        assert_eq!(rdev_split(0x0801), (8, 1));
        assert_eq!(rdev_encode(8, 1), Some(0x0801));
        assert_eq!(rdev_encode(4096, 0), None);
        assert_eq!(rdev_encode(0, 1 << 20), None);
    }

    #[test]
    fn type_numbers_and_forms() {
        for n in 1..=14u16 {
            let t = InodeType::from_u16(n).unwrap();
            assert_eq!(t as u16, n);
            assert_eq!(t.is_extended(), n > 7);
            assert_eq!(InodeType::new(t.file_type(), t.is_extended()), t);
        }
        assert!(InodeType::from_u16(0).is_none() && InodeType::from_u16(15).is_none());
        assert_eq!(
            FileType::from_dir_entry(8),
            None,
            "entries store basic types"
        );
        assert_eq!(FileType::Socket.dir_entry_type(), 7);
    }
}
