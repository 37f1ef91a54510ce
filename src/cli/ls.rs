//! `sqfuse ls`: list a directory, a file, or (`-R`) a whole tree.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::reader::{Image, Step};
use std::io::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct LsOptions {
    pub long: bool,
    pub recursive: bool,
}

fn io(e: std::io::Error) -> Error {
    Error::io("writing the listing", e)
}

fn line(img: &Image, i: &Inode, name: &str, o: LsOptions, out: &mut dyn Write) -> Result<()> {
    if !o.long {
        return writeln!(out, "{name}").map_err(io);
    }
    let mut s = format!(
        "{} {}/{} {:>10} {} {}",
        super::mode_string(i.file_type(), i.perm),
        img.uid(i)?,
        img.gid(i)?,
        super::size_string(i),
        super::time_string(i.mtime),
        name
    );
    if let InodeData::Symlink(t) = &i.data {
        s.push_str(" -> ");
        s.push_str(&String::from_utf8_lossy(t));
    }
    writeln!(out, "{s}").map_err(io)
}

/// Lists `path`. Recursive listings print paths relative to `path`,
/// parents before children, in stored (bytewise sorted) order.
pub fn ls(img: &Image, path: &str, o: LsOptions, out: &mut dyn Write) -> Result<()> {
    let (inode, r) = img.lookup_path(path)?;
    if !inode.is_dir() {
        let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or(path);
        return line(img, &inode, name, o, out);
    }
    if !o.recursive {
        for e in img.read_dir(&inode)? {
            let e = e?;
            let child = img.entry_inode(&e)?;
            line(img, &child, &String::from_utf8_lossy(&e.name), o, out)?;
        }
        return Ok(());
    }
    for step in img.walk(&inode, r)? {
        if let Step::Entry(e) = step? {
            line(img, &e.inode, &String::from_utf8_lossy(&e.path), o, out)?;
        }
    }
    Ok(())
}
