//! `sqfuse ls`: list a directory, a file, or (`-R`) a whole tree.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::format::metadata::MetaRef;
use crate::reader::Image;
use std::collections::HashSet;
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
            let child = img.inode(e.inode_ref)?;
            line(img, &child, &String::from_utf8_lossy(&e.name), o, out)?;
        }
        return Ok(());
    }
    let mut seen = HashSet::new();
    seen.insert(r);
    walk(img, &inode, "", o, out, &mut seen)
}

fn walk(
    img: &Image,
    dir: &Inode,
    prefix: &str,
    o: LsOptions,
    out: &mut dyn Write,
    seen: &mut HashSet<MetaRef>,
) -> Result<()> {
    // Explicit stack: a hostile image may nest directories very deeply.
    let mut stack: Vec<(Vec<(String, MetaRef)>, usize)> = Vec::new();
    let list = |d: &Inode, pre: &str| -> Result<Vec<(String, MetaRef)>> {
        img.read_dir(d)?
            .map(|e| e.map(|e| (super::join(pre, &e.name), e.inode_ref)))
            .collect()
    };
    stack.push((list(dir, prefix)?, 0));
    while let Some((entries, idx)) = stack.last_mut() {
        let Some((path, r)) = entries.get(*idx).cloned() else {
            stack.pop();
            continue;
        };
        *idx += 1;
        let child = img.inode(r)?;
        line(img, &child, &path, o, out)?;
        if child.is_dir() {
            if !seen.insert(r) {
                return Err(Error::corrupt(
                    img.sb.inode_table_start + r.block(),
                    format!("directory loop at {path}"),
                ));
            }
            stack.push((list(&child, &path)?, 0));
        }
    }
    Ok(())
}
