//! `sqfuse ls`: list a directory, a file, or (`-R`) a whole tree.

use crate::error::{Error, Result};
use crate::format::dir::MAX_DEPTH;
use crate::format::inode::{Inode, InodeData};
use crate::reader::Image;
use crate::view::View;
use std::io::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct LsOptions {
    pub long: bool,
    pub recursive: bool,
    /// A JSON array of entries with every field of the long listing.
    pub json: bool,
}

/// One entry as JSON: what `-l` shows, unformatted.
pub fn entry_json(img: &Image, i: &Inode, path: &str) -> Result<serde_json::Value> {
    let mut v = serde_json::json!({
        "path": path,
        "type": type_name(i.file_type()),
        "mode": i.perm & 0o7777,
        "uid": img.uid(i)?,
        "gid": img.gid(i)?,
        "size": i.size(),
        "mtime": i.mtime,
        "nlink": i.nlink,
        "inode": i.number,
    });
    match &i.data {
        InodeData::Symlink(t) => v["target"] = String::from_utf8_lossy(t).into(),
        InodeData::BlockDev(r) | InodeData::CharDev(r) => {
            let (major, minor) = crate::format::inode::rdev_split(*r);
            v["major"] = major.into();
            v["minor"] = minor.into();
        }
        _ => {}
    }
    Ok(v)
}

fn type_name(t: crate::format::inode::FileType) -> &'static str {
    use crate::format::inode::FileType as T;
    match t {
        T::Dir => "directory",
        T::File => "file",
        T::Symlink => "symlink",
        T::BlockDev => "block-device",
        T::CharDev => "char-device",
        T::Fifo => "fifo",
        T::Socket => "socket",
    }
}

/// Writes entries as a JSON array, one per line, as they come.
struct JsonList<'a> {
    out: &'a mut dyn Write,
    first: bool,
}

impl JsonList<'_> {
    fn push(&mut self, v: &serde_json::Value) -> Result<()> {
        let sep = if self.first { "[\n  " } else { ",\n  " };
        self.first = false;
        write!(self.out, "{sep}{v}").map_err(io)
    }
    fn end(self) -> Result<()> {
        let end = if self.first { "[]\n" } else { "\n]\n" };
        write!(self.out, "{end}").map_err(io)
    }
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

/// Where listed entries go: lines (plain or `-l`), or JSON.
enum Sink<'a> {
    Lines(&'a mut dyn Write, LsOptions),
    Json(JsonList<'a>),
}

impl Sink<'_> {
    fn put(&mut self, img: &Image, i: &Inode, name: &str) -> Result<()> {
        match self {
            Sink::Lines(out, o) => line(img, i, name, *o, *out),
            Sink::Json(j) => j.push(&entry_json(img, i, name)?),
        }
    }
    fn end(self) -> Result<()> {
        match self {
            Sink::Lines(..) => Ok(()),
            Sink::Json(j) => j.end(),
        }
    }
}

/// A directory being listed by `ls -R`: its entries, the next one, its
/// node id and its path below the listing's start.
struct Frame {
    listing: std::sync::Arc<crate::view::Listing>,
    next: usize,
    dir: u64,
    path: String,
}

/// Lists `path` of `view` (one image, or the layers of a registry image
/// merged). Recursive listings print paths relative to `path`, parents
/// before children, in the view's (for one image, stored) order, with an
/// explicit stack: an image may nest deeply.
pub fn ls(view: &dyn View, path: &str, o: LsOptions, out: &mut dyn Write) -> Result<()> {
    let node = crate::view::lookup_path(view, path)?;
    let mut sink = if o.json {
        Sink::Json(JsonList { out, first: true })
    } else {
        Sink::Lines(out, o)
    };
    if !node.inode.is_dir() {
        let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or(path);
        sink.put(view.image(&node), &node.inode, name)?;
        return sink.end();
    }
    let mut seen = std::collections::HashSet::from([node.id]);
    let mut stack = vec![Frame {
        listing: view.list(&node)?,
        next: 0,
        dir: node.id,
        path: String::new(),
    }];
    while let Some(top) = stack.last_mut() {
        let Some(e) = top.listing.entries.get(top.next) else {
            stack.pop();
            continue;
        };
        top.next += 1;
        let name = String::from_utf8_lossy(e.name());
        let shown = if top.path.is_empty() || !o.recursive {
            name.into_owned()
        } else {
            format!("{}/{name}", top.path)
        };
        let child = view.entry_node(top.dir, e)?;
        sink.put(view.image(&child), &child.inode, &shown)?;
        if !o.recursive || !child.inode.is_dir() {
            continue;
        }
        if !seen.insert(child.id) {
            return Err(
                Error::invalid("directory loop: this directory was met before").at_path(shown),
            );
        }
        // Its entries would be stack.len() + 1 names deep: what the packer
        // writes is allowed; deeper is a bound on the stack's memory.
        let listing = view.list(&child)?;
        if stack.len() >= MAX_DEPTH {
            if let Some(first) = listing.entries.first() {
                let path = format!("{shown}/{}", String::from_utf8_lossy(first.name()));
                return Err(Error::invalid(format!(
                    "nested deeper than {MAX_DEPTH} names; not walked"
                ))
                .at_path(path));
            }
        }
        stack.push(Frame {
            listing,
            next: 0,
            dir: child.id,
            path: shown,
        });
    }
    sink.end()
}
