//! The kind of file an inode or a directory entry describes: shared by
//! both structures, so it lives apart from either.

/// What kind of file an inode (or directory entry) describes. Directory
/// entries store it as the basic inode type number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A block device.
    BlockDev,
    /// A character device.
    CharDev,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl FileType {
    /// Every file type, in basic inode type-number order (1..=7).
    pub(crate) const BASIC: [FileType; 7] = [
        FileType::Dir,
        FileType::File,
        FileType::Symlink,
        FileType::BlockDev,
        FileType::CharDev,
        FileType::Fifo,
        FileType::Socket,
    ];

    /// From a directory entry's type (basic numbers only).
    pub fn from_dir_entry(t: u16) -> Option<Self> {
        Self::BASIC.get(usize::from(t).checked_sub(1)?).copied()
    }
    /// The number a directory entry stores: the basic inode type number.
    pub fn dir_entry_type(self) -> u16 {
        match self {
            Self::Dir => 1,
            Self::File => 2,
            Self::Symlink => 3,
            Self::BlockDev => 4,
            Self::CharDev => 5,
            Self::Fifo => 6,
            Self::Socket => 7,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entry_numbers_are_the_basic_order() {
        for (i, t) in FileType::BASIC.iter().enumerate() {
            assert_eq!(usize::from(t.dir_entry_type()), i + 1);
            assert_eq!(FileType::from_dir_entry(t.dir_entry_type()), Some(*t));
        }
        assert_eq!(FileType::from_dir_entry(0), None);
        assert_eq!(
            FileType::from_dir_entry(8),
            None,
            "extended numbers are not entry types"
        );
    }
}
