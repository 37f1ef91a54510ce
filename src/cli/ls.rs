//! `sqfuse ls`: list a directory, a file, or (`-R`) a whole tree.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::reader::{Image, Step};
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

/// Lists `path`. Recursive listings print paths relative to `path`,
/// parents before children, in stored (bytewise sorted) order.
pub fn ls(img: &Image, path: &str, o: LsOptions, out: &mut dyn Write) -> Result<()> {
    let (inode, r) = img.lookup_path(path)?;
    let mut sink = if o.json {
        Sink::Json(JsonList { out, first: true })
    } else {
        Sink::Lines(out, o)
    };
    if !inode.is_dir() {
        let name = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or(path);
        sink.put(img, &inode, name)?;
    } else if !o.recursive {
        for e in img.read_dir(&inode)? {
            let e = e?;
            sink.put(
                img,
                &img.entry_inode(&e)?,
                &String::from_utf8_lossy(&e.name),
            )?;
        }
    } else {
        for step in img.walk(&inode, r)? {
            if let Step::Entry(e) = step? {
                sink.put(img, &e.inode, &String::from_utf8_lossy(&e.path))?;
            }
        }
    }
    sink.end()
}
