//! Writing the inode, directory, id, xattr, fragment and export tables from
//! the scanned tree and the placed data (the writer side of format/).

use super::data::{BlockLoc, DataResult, FileData};
use super::scan::{Kind, Node, Tree};
use super::PackError;
use crate::format::compressor::CompressSettings;
use crate::format::metadata::{MetaRef, MetaWriter};
use crate::format::NONE_U32;
use std::collections::HashMap;

/// Image bytes for the tables, and where each starts.
pub struct Tables {
    pub bytes: Vec<u8>,
    pub inode_table_start: u64,
    pub directory_table_start: u64,
    pub fragment_table_start: Option<u64>,
    pub export_table_start: Option<u64>,
    pub id_table_start: u64,
    pub xattr_id_table_start: Option<u64>,
    pub root_ref: MetaRef,
    pub inode_count: u32,
    pub id_count: u16,
}

#[derive(Default)]
struct Ids {
    list: Vec<u32>,
    map: HashMap<u32, u16>,
}

impl Ids {
    fn index(&mut self, id: u32) -> Result<u16, PackError> {
        if let Some(&i) = self.map.get(&id) {
            return Ok(i);
        }
        let i = u16::try_from(self.list.len())
            .map_err(|_| PackError::Source("more than 65536 distinct uids/gids".into()))?;
        self.list.push(id);
        self.map.insert(id, i);
        Ok(i)
    }
}

/// An inode's xattrs: full names and values, sorted.
type XattrSet = Vec<(Vec<u8>, Vec<u8>)>;

struct Xattrs {
    kv: MetaWriter,
    ids: Vec<(MetaRef, u32, u32)>,
    sets: HashMap<XattrSet, u32>,
    values: HashMap<Vec<u8>, MetaRef>,
}

impl Xattrs {
    /// The xattr id of this set (identical sets share one).
    fn add(&mut self, set: &[(Vec<u8>, Vec<u8>)]) -> u32 {
        if let Some(&i) = self.sets.get(set) {
            return i;
        }
        let at = self.kv.pos();
        let mut size = 0u32;
        for (name, value) in set {
            let (t, prefix) = if name.starts_with(b"user.") {
                (0u16, 5)
            } else if name.starts_with(b"trusted.") {
                (1, 8)
            } else {
                (2, 9)
            };
            let short = &name[prefix..];
            // A value seen before is stored once and referenced (8 bytes), when
            // that saves space.
            let shared = (value.len() > 8)
                .then(|| self.values.get(value).copied())
                .flatten();
            self.kv
                .write(&(t | if shared.is_some() { 0x100 } else { 0 }).to_le_bytes());
            self.kv.write(&(short.len() as u16).to_le_bytes());
            self.kv.write(short);
            match shared {
                Some(r) => {
                    self.kv.write(&8u32.to_le_bytes());
                    self.kv.write(&r.0.to_le_bytes());
                }
                None => {
                    self.values.entry(value.clone()).or_insert(self.kv.pos());
                    self.kv.write(&(value.len() as u32).to_le_bytes());
                    self.kv.write(value);
                }
            }
            size += (name.len() + value.len()) as u32;
        }
        let id = self.ids.len() as u32;
        self.ids.push((at, set.len() as u32, size));
        self.sets.insert(set.to_vec(), id);
        id
    }
}

/// Numbers and inode references assigned so far.
struct Builder<'a> {
    data: &'a DataResult,
    tree: &'a Tree,
    inodes: MetaWriter,
    dirs: MetaWriter,
    ids: Ids,
    xattrs: Option<Xattrs>,
    /// Per hard-link group: (number, reference) once written.
    links: Vec<Option<(u32, MetaRef)>>,
    next_number: u32,
    /// Each directory's inode number, from [`number_dirs`].
    dir_numbers: HashMap<*const Node, u32>,
    /// Per inode number - 1: its reference, for the export table.
    refs: Vec<u64>,
}

fn basic_type(k: &Kind) -> u16 {
    match k {
        Kind::Dir(_) => 1,
        Kind::File { .. } => 2,
        Kind::Symlink(_) => 3,
        Kind::BlockDev(_) => 4,
        Kind::CharDev(_) => 5,
        Kind::Fifo => 6,
        Kind::Socket => 7,
    }
}

/// Post-order numbering: children before parents, the root last; a
/// hard-link group is numbered where it is first met. One pass over the
/// tree records each directory's number (by node address: the tree is not
/// changed while tables are written), so a directory can tell its children
/// their parent's number before its own inode is written.
fn number_dirs(n: &Node, seen: &mut [bool], next: &mut u32, dirs: &mut HashMap<*const Node, u32>) {
    if let Some(l) = n.link {
        if seen[l] {
            return;
        }
        seen[l] = true;
    }
    if let Kind::Dir(children) = &n.kind {
        for c in children {
            number_dirs(c, seen, next, dirs);
        }
    }
    *next += 1;
    if matches!(n.kind, Kind::Dir(_)) {
        dirs.insert(n as *const Node, *next);
    }
}

impl Builder<'_> {
    fn header(&mut self, t: u16, n: &Node, number: u32) -> Result<Vec<u8>, PackError> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&t.to_le_bytes());
        b.extend_from_slice(&n.perm.to_le_bytes());
        b.extend_from_slice(&self.ids.index(n.uid)?.to_le_bytes());
        b.extend_from_slice(&self.ids.index(n.gid)?.to_le_bytes());
        b.extend_from_slice(&n.mtime.to_le_bytes());
        b.extend_from_slice(&number.to_le_bytes());
        Ok(b)
    }

    fn xattr_index(&mut self, n: &Node) -> u32 {
        match (&mut self.xattrs, n.xattrs.is_empty()) {
            (Some(x), false) => x.add(&n.xattrs),
            _ => NONE_U32,
        }
    }

    /// Writes `n` (and, for a directory, everything below it); returns its
    /// number and reference.
    fn write(&mut self, n: &Node, parent: u32) -> Result<(u32, MetaRef), PackError> {
        if let Some(l) = n.link {
            if let Some(done) = self.links[l] {
                return Ok(done);
            }
        }
        let (number, r) = match &n.kind {
            Kind::Dir(children) => self.dir(n, children, parent)?,
            _ => {
                let number = self.take_number();
                let r = self.inodes.pos();
                let bytes = self.leaf(n, &n.kind, number)?;
                self.inodes.write(&bytes);
                (number, r)
            }
        };
        if let Some(l) = n.link {
            self.links[l] = Some((number, r));
        }
        self.refs[number as usize - 1] = r.0;
        Ok((number, r))
    }

    fn take_number(&mut self) -> u32 {
        self.next_number += 1;
        self.next_number
    }

    fn leaf(&mut self, n: &Node, kind: &Kind, number: u32) -> Result<Vec<u8>, PackError> {
        let nlink = n.link.map_or(1, |l| self.tree.links[l]);
        let xattr = self.xattr_index(n);
        let ext = xattr != NONE_U32;
        let t = basic_type(kind) + if ext { 7 } else { 0 };
        Ok(match kind {
            Kind::File { file } => return self.file(n, *file, number, nlink, xattr),
            Kind::Symlink(target) => {
                let mut b = self.header(t, n, number)?;
                b.extend_from_slice(&nlink.to_le_bytes());
                b.extend_from_slice(&(target.len() as u32).to_le_bytes());
                b.extend_from_slice(target);
                if ext {
                    b.extend_from_slice(&xattr.to_le_bytes());
                }
                b
            }
            Kind::BlockDev(rdev) | Kind::CharDev(rdev) => {
                let mut b = self.header(t, n, number)?;
                b.extend_from_slice(&nlink.to_le_bytes());
                b.extend_from_slice(&rdev.to_le_bytes());
                if ext {
                    b.extend_from_slice(&xattr.to_le_bytes());
                }
                b
            }
            Kind::Fifo | Kind::Socket => {
                let mut b = self.header(t, n, number)?;
                b.extend_from_slice(&nlink.to_le_bytes());
                if ext {
                    b.extend_from_slice(&xattr.to_le_bytes());
                }
                b
            }
            Kind::Dir(_) => unreachable!("directories go through dir()"),
        })
    }

    fn file(
        &mut self,
        n: &Node,
        file: usize,
        number: u32,
        nlink: u32,
        xattr: u32,
    ) -> Result<Vec<u8>, PackError> {
        let size = self.tree.files[file].size;
        let mut fd: &FileData = &self.data.files[file];
        if let Some(orig) = fd.dup_of {
            fd = &self.data.files[orig];
        }
        let mut words = Vec::with_capacity(fd.blocks.len());
        let mut start = None;
        for b in &fd.blocks {
            match *b {
                BlockLoc::Sparse => words.push(0u32),
                BlockLoc::Seq(s) => {
                    let (at, w) = self.data.placed[s as usize];
                    start.get_or_insert(at);
                    words.push(w);
                }
            }
        }
        let blocks_start = start.unwrap_or(0);
        let (frag, frag_off) = fd.fragment.unwrap_or((NONE_U32, 0));
        let basic = xattr == NONE_U32
            && nlink == 1
            && fd.sparse_bytes == 0
            && blocks_start <= u64::from(u32::MAX)
            && size <= u64::from(u32::MAX);
        let mut b = self.header(if basic { 2 } else { 9 }, n, number)?;
        if basic {
            b.extend_from_slice(&(blocks_start as u32).to_le_bytes());
            b.extend_from_slice(&frag.to_le_bytes());
            b.extend_from_slice(&frag_off.to_le_bytes());
            b.extend_from_slice(&(size as u32).to_le_bytes());
        } else {
            b.extend_from_slice(&blocks_start.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&fd.sparse_bytes.to_le_bytes());
            b.extend_from_slice(&nlink.to_le_bytes());
            b.extend_from_slice(&frag.to_le_bytes());
            b.extend_from_slice(&frag_off.to_le_bytes());
            b.extend_from_slice(&xattr.to_le_bytes());
        }
        for w in words {
            b.extend_from_slice(&w.to_le_bytes());
        }
        Ok(b)
    }

    fn dir(
        &mut self,
        n: &Node,
        children: &[Node],
        parent: u32,
    ) -> Result<(u32, MetaRef), PackError> {
        // Numbered before writing (number_dirs): after all its descendants.
        let number = self.dir_numbers[&(n as *const Node)];
        let mut entries = Vec::with_capacity(children.len());
        for c in children {
            let (num, r) = self.write(c, number)?;
            let t = basic_type(&c.kind);
            entries.push((c.name.as_slice(), num, r, t));
        }
        let taken = self.take_number();
        if taken != number {
            // Children were told `number` as their parent: never write a lie.
            return Err(PackError::Source(format!(
                "internal error: directory numbered {taken}, expected {number}"
            )));
        }
        let subdirs = children
            .iter()
            .filter(|c| matches!(c.kind, Kind::Dir(_)))
            .count() as u32;
        let (block, offset, size, index) = self.listing(&entries);
        let xattr = self.xattr_index(n);
        let r = self.inodes.pos();
        let ext = xattr != NONE_U32 || !index.is_empty() || size > 0xFFFF;
        let mut b = self.header(if ext { 8 } else { 1 }, n, number)?;
        let nlink = 2 + subdirs;
        if ext {
            b.extend_from_slice(&nlink.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&block.to_le_bytes());
            b.extend_from_slice(&parent.to_le_bytes());
            b.extend_from_slice(&(index.len() as u16).to_le_bytes());
            b.extend_from_slice(&offset.to_le_bytes());
            b.extend_from_slice(&xattr.to_le_bytes());
            for (at, start, name) in index {
                b.extend_from_slice(&at.to_le_bytes());
                b.extend_from_slice(&start.to_le_bytes());
                b.extend_from_slice(&(name.len() as u32 - 1).to_le_bytes());
                b.extend_from_slice(name);
            }
        } else {
            b.extend_from_slice(&block.to_le_bytes());
            b.extend_from_slice(&nlink.to_le_bytes());
            b.extend_from_slice(&(size as u16).to_le_bytes());
            b.extend_from_slice(&offset.to_le_bytes());
            b.extend_from_slice(&parent.to_le_bytes());
        }
        self.inodes.write(&b);
        Ok((number, r))
    }

    /// Writes a listing; returns its block, offset, stored size (bytes + 3)
    /// and index entries (byte offset of a run header, its directory-table
    /// block, the run's first name) for each run starting in a new block.
    #[allow(clippy::type_complexity)]
    fn listing<'n>(
        &mut self,
        entries: &[(&'n [u8], u32, MetaRef, u16)],
    ) -> (u32, u16, u32, Vec<(u32, u32, &'n [u8])>) {
        let start = self.dirs.pos();
        let mut written = 0u32;
        let mut index = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let (_, base, r0, _) = entries[i];
            let mut j = i + 1;
            while j < entries.len()
                && j - i < 256
                && entries[j].2.block() == r0.block()
                && (i64::from(entries[j].1) - i64::from(base)).abs() <= 32767
            {
                j += 1;
            }
            let header_at = self.dirs.pos();
            if i > 0
                && header_at.block() != start.block()
                && index
                    .last()
                    .is_none_or(|&(_, b, _)| u64::from(b) != header_at.block())
            {
                index.push((written, header_at.block() as u32, entries[i].0));
            }
            let mut h = Vec::with_capacity(12);
            h.extend_from_slice(&((j - i - 1) as u32).to_le_bytes());
            h.extend_from_slice(&(r0.block() as u32).to_le_bytes());
            h.extend_from_slice(&base.to_le_bytes());
            self.dirs.write(&h);
            written += 12;
            for &(name, num, r, t) in &entries[i..j] {
                let mut e = Vec::with_capacity(8 + name.len());
                e.extend_from_slice(&(r.offset() as u16).to_le_bytes());
                e.extend_from_slice(&((i64::from(num) - i64::from(base)) as i16).to_le_bytes());
                e.extend_from_slice(&t.to_le_bytes());
                e.extend_from_slice(&(name.len() as u16 - 1).to_le_bytes());
                e.extend_from_slice(name);
                self.dirs.write(&e);
                written += e.len() as u32;
            }
            i = j;
        }
        (
            start.block() as u32,
            start.offset() as u16,
            written + 3,
            index,
        )
    }
}

/// Appends a lookup table (entries in metadata blocks, then the u64 index)
/// at image offset `at`; returns the table's start (its index).
fn lookup_table(out: &mut Vec<u8>, at: u64, entries: &[u8], settings: CompressSettings) -> u64 {
    let mut w = MetaWriter::new(settings);
    w.write(entries);
    let (bytes, starts) = w.finish();
    let base = at + out.len() as u64;
    out.extend_from_slice(&bytes);
    let start = at + out.len() as u64;
    for s in starts {
        out.extend_from_slice(&(base + s).to_le_bytes());
    }
    start
}

pub fn build(
    tree: &Tree,
    data: &DataResult,
    settings: CompressSettings,
    opts: &super::PackOptions,
    at: u64,
) -> Result<Tables, PackError> {
    let mut total = 0;
    let mut dir_numbers = HashMap::new();
    number_dirs(
        &tree.root,
        &mut vec![false; tree.links.len()],
        &mut total,
        &mut dir_numbers,
    );
    let mut b = Builder {
        data,
        tree,
        inodes: MetaWriter::new(settings),
        dirs: MetaWriter::new(settings),
        ids: Ids::default(),
        xattrs: (!opts.no_xattrs).then(|| Xattrs {
            kv: MetaWriter::new(settings),
            ids: Vec::new(),
            sets: HashMap::new(),
            values: HashMap::new(),
        }),
        links: vec![None; tree.links.len()],
        next_number: 0,
        dir_numbers,
        refs: vec![0; total as usize],
    };
    let (root_number, root_ref) = b.write(&tree.root, total + 1)?;
    if root_number != total {
        return Err(PackError::Source(format!(
            "internal error: root numbered {root_number} of {total}"
        )));
    }
    let Builder {
        inodes,
        dirs,
        ids,
        xattrs,
        refs,
        ..
    } = b;
    let (inode_bytes, _) = inodes.finish();
    let (dir_bytes, _) = dirs.finish();
    let mut out = Vec::new();
    let inode_table_start = at;
    out.extend_from_slice(&inode_bytes);
    let directory_table_start = at + out.len() as u64;
    out.extend_from_slice(&dir_bytes);
    let fragment_table_start = if data.fragments.is_empty() {
        None
    } else {
        let mut e = Vec::with_capacity(data.fragments.len() * 16);
        for &seq in &data.fragments {
            let (start, word) = data.placed[seq as usize];
            e.extend_from_slice(&start.to_le_bytes());
            e.extend_from_slice(&word.to_le_bytes());
            e.extend_from_slice(&0u32.to_le_bytes());
        }
        Some(lookup_table(&mut out, at, &e, settings))
    };
    let export_table_start = if opts.no_exports {
        None
    } else {
        let e: Vec<u8> = refs.iter().flat_map(|r| r.to_le_bytes()).collect();
        Some(lookup_table(&mut out, at, &e, settings))
    };
    let id_entries: Vec<u8> = ids.list.iter().flat_map(|i| i.to_le_bytes()).collect();
    let id_table_start = lookup_table(&mut out, at, &id_entries, settings);
    let xattr_id_table_start = match xattrs {
        Some(x) if !x.ids.is_empty() => {
            let kv_start = at + out.len() as u64;
            let (kv, _) = x.kv.finish();
            out.extend_from_slice(&kv);
            let mut e = Vec::with_capacity(x.ids.len() * 16);
            for (r, count, size) in &x.ids {
                e.extend_from_slice(&r.0.to_le_bytes());
                e.extend_from_slice(&count.to_le_bytes());
                e.extend_from_slice(&size.to_le_bytes());
            }
            let mut w = MetaWriter::new(settings);
            w.write(&e);
            let (bytes, starts) = w.finish();
            let base = at + out.len() as u64;
            out.extend_from_slice(&bytes);
            let hdr = at + out.len() as u64;
            out.extend_from_slice(&kv_start.to_le_bytes());
            out.extend_from_slice(&(x.ids.len() as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            for s in starts {
                out.extend_from_slice(&(base + s).to_le_bytes());
            }
            Some(hdr)
        }
        _ => None,
    };
    Ok(Tables {
        bytes: out,
        inode_table_start,
        directory_table_start,
        fragment_table_start,
        export_table_start,
        id_table_start,
        xattr_id_table_start,
        root_ref,
        inode_count: total,
        id_count: ids.list.len() as u16,
    })
}
