//! `unsquashfs -pf FILE`: the image as a pseudo file, byte for byte as
//! unsquashfs 4.7.5 writes it: one definition per entry in directory
//! order (`R` for a file, with its length and offset in the data; `L` for
//! another name of one already written; `x` for each xattr), then the
//! `# START OF DATA` marker and every file's contents in the same order.
//! snapd rebuilds snaps from it with `mksquashfs - OUT -pf FILE`.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::reader::{Image, Step};
use std::collections::HashMap;
use std::io::Write;

/// A path as unsquashfs writes it: no leading slash (`/` for the root),
/// `"`, `\` and white space escaped with `\`.
fn name(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b == b'"' || b == b'\\' || b.is_ascii_whitespace() {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// An xattr's value: as it is if every byte is printable, else `0t` with
/// `\ooo` for the others (and for `\`).
fn value(v: &[u8]) -> Vec<u8> {
    if v.iter().all(|&b| (32..=126).contains(&b)) {
        return v.to_vec();
    }
    let mut out = b"0t".to_vec();
    for &b in v {
        if !(32..=126).contains(&b) || b == b'\\' {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn definition(img: &Image, path: &[u8], i: &Inode, offset: u64, out: &mut dyn Write) -> Result<()> {
    let wr = |e: std::io::Error| Error::io("writing the pseudo file", e);
    let n = name(path);
    let ty = match &i.data {
        InodeData::Dir(_) => 'D',
        InodeData::File(_) => 'R',
        InodeData::Symlink(_) => 'S',
        InodeData::BlockDev(_) => 'B',
        InodeData::CharDev(_) => 'C',
        InodeData::Fifo | InodeData::Socket => 'I',
    };
    out.write_all(&n).map_err(wr)?;
    write!(
        out,
        " {ty} {} {:o} {} {}",
        i.mtime,
        i.perm,
        // unsquashfs prints owners as signed ints.
        img.uid(i)? as i32,
        img.gid(i)? as i32
    )
    .map_err(wr)?;
    match &i.data {
        InodeData::Dir(_) => writeln!(out),
        InodeData::Symlink(t) => out
            .write_all(b" ")
            .and_then(|_| out.write_all(t))
            .and_then(|_| writeln!(out)),
        InodeData::Socket => writeln!(out, " s"),
        InodeData::Fifo => writeln!(out, " f"),
        InodeData::BlockDev(r) | InodeData::CharDev(r) => {
            writeln!(out, " {} {}", (*r as i32) >> 8, r & 0xff)
        }
        InodeData::File(f) => writeln!(out, " {} {offset} {}", f.size, u8::from(f.sparse != 0)),
    }
    .map_err(wr)?;
    for x in img.xattrs(i)? {
        out.write_all(&n).map_err(wr)?;
        out.write_all(b" x ").map_err(wr)?;
        out.write_all(&x.name).map_err(wr)?;
        out.write_all(b"=").map_err(wr)?;
        out.write_all(&value(&x.value)).map_err(wr)?;
        writeln!(out).map_err(wr)?;
    }
    Ok(())
}

/// Writes the whole image as a pseudo file to `out`.
pub fn write(img: &Image, out: &mut dyn Write) -> Result<()> {
    let wr = |e: std::io::Error| Error::io("writing the pseudo file", e);
    let root = img.root()?;
    definition(img, b"", &root, 0, out)?;
    // Other names of a file already written: by inode number.
    let mut first: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut offset = 0u64;
    for step in img.walk(&root, img.root_ref())? {
        let Step::Entry(e) = step? else { continue };
        if e.inode.is_dir() {
            definition(img, &e.path, &e.inode, 0, out)?;
            continue;
        }
        if let Some(p) = first.get(&e.inode.number) {
            out.write_all(&name(&e.path)).map_err(wr)?;
            out.write_all(b" L ").map_err(wr)?;
            out.write_all(&name(p)).map_err(wr)?;
            writeln!(out).map_err(wr)?;
            continue;
        }
        definition(img, &e.path, &e.inode, offset, out)?;
        if let InodeData::File(f) = &e.inode.data {
            offset += f.size;
        }
        first.insert(e.inode.number, e.path);
    }
    out.write_all(b"#\n# START OF DATA - DO NOT MODIFY\n#\n")
        .map_err(wr)?;
    let mut done = std::collections::HashSet::new();
    for step in img.walk(&root, img.root_ref())? {
        let Step::Entry(e) = step? else { continue };
        if !matches!(e.inode.data, InodeData::File(_)) || !done.insert(e.inode.number) {
            continue;
        }
        let f = img
            .open_file(&e.inode)
            .map_err(|err| err.at_path(String::from_utf8_lossy(&e.path)))?;
        for n in 0..f.chunk_count() {
            let c = img
                .read_chunk(&f, n)
                .map_err(|err| err.at_path(String::from_utf8_lossy(&e.path)))?;
            out.write_all(&c.bytes()).map_err(wr)?;
        }
    }
    out.flush().map_err(wr)
}
