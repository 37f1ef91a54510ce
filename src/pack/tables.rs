//! The metadata tables of a packed image: numbering the scanned tree, then
//! handing each inode, listing, id, xattr set, fragment and export entry to
//! its writer in `format/`. What is the packer's here is only the order:
//! inode numbers, the order inodes and listings are written in, and which
//! data each file points at.

use super::data::{BlockLoc, DataResult, FileData};
use super::scan::{Kind, Tree, TreeNode};
use super::PackError;
use crate::format::block::BlockWord;
use crate::format::compressor::CompressSettings;
use crate::format::dir::{write_listing, IndexEntry, ListingEntry};
use crate::format::id::IdTableWriter;
use crate::format::inode::{DirInfo, FileInfo, Inode, InodeData, InodeType};
use crate::format::metadata::{MetaRef, MetaWriter};
use crate::format::table::{write_lookup_table, FragmentEntry};
use crate::format::xattr::XattrWriter;

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

/// Numbers and inode references assigned so far.
struct Builder<'a> {
    data: &'a DataResult,
    tree: &'a Tree,
    inodes: MetaWriter,
    dirs: MetaWriter,
    ids: IdTableWriter,
    xattrs: Option<XattrWriter>,
    /// Per hard-link group: (number, reference) once written.
    links: Vec<Option<(u32, MetaRef)>>,
    /// The last inode number handed out.
    next_number: u32,
    /// Per inode number - 1: its reference, for the export table.
    refs: Vec<u64>,
    block_size: u32,
    /// Directories take the extended form where mksquashfs gives it: 257
    /// entries or more, or 8 KiB of names and entry headers (its estimate
    /// of a listing needing an index).
    mksquashfs_dirs: bool,
}

/// Inodes in the tree: each hard-link group counts once.
fn count_inodes(n: &TreeNode, seen: &mut [bool], total: &mut u32) {
    if let Some(l) = n.link {
        if seen[l] {
            return;
        }
        seen[l] = true;
    }
    *total += 1;
    if let Kind::Dir(children) = &n.kind {
        for c in children {
            super::with_stack(|| count_inodes(c, seen, total));
        }
    }
}

impl Builder<'_> {
    fn xattr_index(&mut self, n: &TreeNode) -> Result<Option<u32>, PackError> {
        match &mut self.xattrs {
            Some(x) if !n.xattrs.is_empty() => Ok(Some(x.add(&n.xattrs)?)),
            _ => Ok(None),
        }
    }

    /// Encodes `n`'s inode, in its smallest form, at the inode table's end.
    fn put_inode(
        &mut self,
        n: &TreeNode,
        number: u32,
        nlink: u32,
        data: InodeData,
        index: &[IndexEntry],
        extended: bool,
    ) -> Result<MetaRef, PackError> {
        // Ids in the order inodes are written (a directory's after its
        // children's), as mksquashfs numbers them.
        let xattr = self.xattr_index(n)?;
        let smallest = InodeType::smallest(&data, nlink, xattr);
        let inode = Inode {
            inode_type: if extended {
                InodeType::new(data.file_type(), true)
            } else {
                smallest
            },
            perm: n.perm,
            uid_index: self.ids.index(n.uid)?,
            gid_index: self.ids.index(n.gid)?,
            mtime: n.mtime,
            number,
            nlink,
            xattr,
            data,
        };
        let mut bytes = Vec::with_capacity(64);
        inode.encode(index, &mut bytes)?;
        let r = self.inodes.pos();
        self.inodes.write(&bytes);
        Ok(r)
    }

    /// Writes `n` (and, for a directory, everything below it); returns its
    /// number and reference. Numbers are handed out as mksquashfs hands
    /// them out: in pre-order (an entry before what is below it, names in
    /// order), a hard-link group where it is first met, the root last
    /// (`number` given); inodes are written in post-order (a directory's
    /// after its listing, which names its children's).
    fn write(
        &mut self,
        n: &TreeNode,
        parent: u32,
        number: Option<u32>,
    ) -> Result<(u32, MetaRef), PackError> {
        if let Some(l) = n.link {
            if let Some(done) = self.links[l] {
                return Ok(done);
            }
        }
        let number = number.unwrap_or_else(|| {
            self.next_number += 1;
            self.next_number
        });
        let r = match &n.kind {
            Kind::Dir(children) => self.dir(n, children, number, parent)?,
            kind => {
                let nlink = n.link.map_or(1, |l| self.tree.links[l]);
                let data = self.leaf_data(kind)?;
                self.put_inode(n, number, nlink, data, &[], false)?
            }
        };
        if let Some(l) = n.link {
            self.links[l] = Some((number, r));
        }
        self.refs[number as usize - 1] = r.0;
        Ok((number, r))
    }

    fn leaf_data(&self, kind: &Kind) -> Result<InodeData, PackError> {
        Ok(match kind {
            Kind::File { file } => InodeData::File(self.file_info(*file)),
            Kind::Symlink(target) => InodeData::Symlink(target.clone()),
            Kind::BlockDev(rdev) => InodeData::BlockDev(*rdev),
            Kind::CharDev(rdev) => InodeData::CharDev(*rdev),
            Kind::Fifo => InodeData::Fifo,
            Kind::Socket => InodeData::Socket,
            Kind::Dir(_) => return Err(PackError::internal("a directory written as a leaf")),
        })
    }

    /// Where file `file`'s data went (a duplicate's is its original's).
    fn file_info(&self, file: usize) -> FileInfo {
        let mut fd: &FileData = &self.data.files[file];
        if let Some(orig) = fd.dup_of() {
            fd = &self.data.files[orig];
        }
        let mut start = None;
        let blocks = fd
            .blocks()
            .map(|b| match b {
                BlockLoc::Sparse => BlockWord::SPARSE,
                BlockLoc::Seq(s) => {
                    let (at, w) = self.data.placed[s as usize];
                    start.get_or_insert(at);
                    w
                }
            })
            .collect();
        // Only holes: where the data stood when the file was cut (a file
        // with no blocks at all, only a fragment, starts at 0).
        let start = start.or_else(|| {
            (fd.has_holes()).then(|| {
                let first = fd.first_seq() as usize;
                self.data.placed.get(first).map_or(self.data.end, |p| p.0)
            })
        });
        FileInfo {
            blocks_start: start.unwrap_or(0),
            size: self.tree.files[file].size,
            sparse: {
                let f = &self.tree.files[file];
                let holes = fd.sparse_bytes(f.size, self.block_size);
                // mksquashfs: at most size - 1, and only for a source that
                // was sparse itself.
                if f.report_sparse && holes > 0 {
                    holes.min(f.size - 1)
                } else {
                    0
                }
            },
            fragment: fd.fragment(),
            blocks,
        }
    }

    fn dir(
        &mut self,
        n: &TreeNode,
        children: &[TreeNode],
        number: u32,
        parent: u32,
    ) -> Result<MetaRef, PackError> {
        let mut entries = Vec::with_capacity(children.len());
        for c in children {
            let (inode_number, inode_ref) = super::with_stack(|| self.write(c, number, None))?;
            entries.push(ListingEntry {
                name: &c.name,
                inode_number,
                inode_ref,
                file_type: c.kind.file_type(),
            });
        }
        let subdirs = children
            .iter()
            .filter(|c| matches!(c.kind, Kind::Dir(_)))
            .count() as u32;
        let listing = write_listing(&mut self.dirs, &entries)?;
        let index_count = u16::try_from(listing.index.len())
            .map_err(|_| PackError::internal("directory index of over 65535 entries"))?;
        let data = InodeData::Dir(DirInfo {
            block: listing.block,
            offset: listing.offset,
            size: listing.size,
            parent,
            index_count,
            index_at: None,
        });
        let large = self.mksquashfs_dirs
            && (children.len() >= 257
                || children.iter().map(|c| c.name.len() + 8).sum::<usize>() >= 8192);
        self.put_inode(n, number, 2 + subdirs, data, &listing.index, large)
    }
}

pub fn build(
    tree: &Tree,
    data: &DataResult,
    settings: CompressSettings,
    opts: &super::PackOptions,
    at: u64,
) -> Result<Tables, PackError> {
    // Metadata blocks are compressed as mksquashfs compresses them, or
    // stored where asked.
    let meta = settings.for_metadata();
    let u = opts.uncompressed;
    let mut total = 0;
    count_inodes(&tree.root, &mut vec![false; tree.links.len()], &mut total);
    let mut b = Builder {
        data,
        tree,
        inodes: MetaWriter::new(meta.stored_if(u.inodes)),
        dirs: MetaWriter::new(meta.stored_if(u.inodes)),
        ids: IdTableWriter::default(),
        xattrs: (!opts.no_xattrs).then(|| XattrWriter::new(meta.stored_if(u.xattrs))),
        links: vec![None; tree.links.len()],
        next_number: 0,
        refs: vec![0; total as usize],
        block_size: opts.block_size,
        mksquashfs_dirs: opts.tuning.engine == crate::format::compressor::Engine::SquashfsTools,
    };
    // The root's parent is one past the last inode, as mksquashfs has it.
    let (_, root_ref) = b.write(&tree.root, total + 1, Some(total))?;
    if b.next_number + 1 != total {
        // Listings were told numbers on the way: never write a lie.
        return Err(PackError::internal(format!(
            "{} inodes numbered of {total}",
            b.next_number + 1
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
    let mut out = Vec::new();
    let inode_table_start = at;
    out.extend_from_slice(&inodes.finish().0);
    let directory_table_start = at + out.len() as u64;
    out.extend_from_slice(&dirs.finish().0);
    // No fragments: mksquashfs still records where the table would be
    // (an empty table); sqfuse's own packs record none.
    let empty_fragment_table = (data.fragments.is_empty()
        && opts.tuning.engine == crate::format::compressor::Engine::SquashfsTools)
        .then_some(at + out.len() as u64);
    let fragment_table_start = (!data.fragments.is_empty()).then(|| {
        let entries: Vec<u8> = data
            .fragments
            .iter()
            .flat_map(|&seq| {
                let (start, size) = data.placed[seq as usize];
                FragmentEntry { start, size }.encode()
            })
            .collect();
        write_lookup_table(&mut out, at, &entries, &[], meta.stored_if(u.fragments))
    });
    let fragment_table_start = fragment_table_start.or(empty_fragment_table);
    let export_table_start = (!opts.no_exports).then(|| {
        let entries: Vec<u8> = refs.iter().flat_map(|r| r.to_le_bytes()).collect();
        write_lookup_table(&mut out, at, &entries, &[], meta.stored_if(u.inodes))
    });
    let id_table_start = ids.finish(&mut out, at, meta.stored_if(u.inodes || u.ids));
    let xattr_id_table_start =
        xattrs.and_then(|x| x.finish(&mut out, at, meta.stored_if(u.xattrs)));
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
        id_count: ids.len() as u16,
    })
}
