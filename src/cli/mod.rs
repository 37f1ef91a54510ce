//! The inspection commands, as library functions the binary calls. Each
//! writes to a given writer so tests can run them in-process.

pub mod args;
pub mod cat;
pub mod check;
pub mod compat;
pub mod extract;
pub mod info;
pub mod ls;
pub mod opened;
pub mod pack;
pub mod progress;
pub mod record;
pub mod report;
pub mod umount;

use crate::format::inode::{rdev_split, FileType, Inode};

/// `ls -l`'s mode column: type letter plus rwx bits with s/S/t/T.
pub fn mode_string(t: FileType, perm: u16) -> String {
    let p = u32::from(perm);
    let mut s = String::with_capacity(10);
    s.push(t.letter());
    let bit = |mask: u32, c: char| if p & mask != 0 { c } else { '-' };
    let special = |x: bool, set: bool, lower: char, upper: char| match (x, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(p & 0o100 != 0, p & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(p & 0o010 != 0, p & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(p & 0o001 != 0, p & 0o1000 != 0, 't', 'T'));
    s
}

/// UTC "YYYY-MM-DD HH:MM" for an mtime.
pub fn time_string(t: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(t), 0)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The size column: bytes, or "major, minor" for devices.
pub fn size_string(i: &Inode) -> String {
    match i.file_type() {
        FileType::BlockDev | FileType::CharDev => {
            let (ma, mi) = rdev_split(i.rdev());
            format!("{ma}, {mi}")
        }
        _ => i.size().to_string(),
    }
}

/// Joins image path components for display; names are arbitrary bytes.
pub fn join(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_like_ls() {
        assert_eq!(mode_string(FileType::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(FileType::Dir, 0o1000), "d--------T");
        assert_eq!(mode_string(FileType::File, 0), "----------");
    }

    #[test]
    fn times_in_utc() {
        assert_eq!(time_string(0), "1970-01-01 00:00");
        assert_eq!(time_string(u32::MAX), "2106-02-07 06:28");
    }
}
