//! Directory listing, name lookup through the directory index, and path
//! resolution.

use super::Image;
use crate::error::{Error, Result};
use crate::format::dir::{self, DirEntry, DirReader};
use crate::format::inode::{DirInfo, Inode, InodeData};
use crate::format::metadata::{MetaCursor, MetaRef};
use crate::format::METADATA_SIZE;

/// Entries of one directory, in stored (sorted) order.
pub type DirIter<'a> = DirReader<'a, Image>;

impl Image {
    fn dir_info<'i>(&self, i: &'i Inode) -> Result<&'i DirInfo> {
        match &i.data {
            InodeData::Dir(d) => Ok(d),
            _ => Err(Error::invalid(format!(
                "inode {} is not a directory",
                i.number
            ))),
        }
    }

    fn listing_bytes(&self, d: &DirInfo) -> Result<u64> {
        u64::from(d.size).checked_sub(3).ok_or_else(|| {
            Error::corrupt(
                self.sb.directory_table_start,
                format!("directory size {} is below 3", d.size),
            )
        })
    }

    /// Streams a directory's entries.
    pub fn read_dir(&self, i: &Inode) -> Result<DirIter<'_>> {
        let d = self.dir_info(i)?;
        let bytes = self.listing_bytes(d)?;
        if bytes == 0 {
            // An empty directory has no listing, and its reference may point
            // at the end of the table (an image whose only directory is an
            // empty root has an empty table). The reader reads nothing: any
            // block will do, the inode table's first (the root is there).
            let c = MetaCursor::new(
                self,
                self.sb.inode_table_start,
                self.sb.directory_table_start,
                0,
                0,
            )?;
            return Ok(DirReader::new(c, 0, self.sb.inode_count));
        }
        let c = MetaCursor::new(
            self,
            self.sb.directory_table_start,
            self.dir_limit(),
            u64::from(d.block),
            usize::from(d.offset),
        )?;
        Ok(DirReader::new(c, bytes, self.sb.inode_count))
    }

    /// Streams a directory's entries from the `skip`-th on: resuming a
    /// listing at an offset handed out before.
    pub fn read_dir_from(&self, i: &Inode, skip: u64) -> Result<DirIter<'_>> {
        let mut it = self.read_dir(i)?;
        for _ in 0..skip {
            if it.next_entry()?.is_none() {
                break;
            }
        }
        Ok(it)
    }

    /// The directory index of an extended directory (empty otherwise).
    pub fn dir_index(&self, i: &Inode) -> Result<Vec<dir::IndexEntry>> {
        let d = self.dir_info(i)?;
        let Some((block, off)) = d.index_at else {
            return Ok(Vec::new());
        };
        let mut c = MetaCursor::new(
            self,
            self.sb.inode_table_start,
            self.sb.directory_table_start,
            block,
            off,
        )?;
        dir::read_index(&mut c, d.index_count, self.listing_bytes(d)?)
    }

    /// Finds `name` in directory `i`: binary search over the directory index,
    /// then a scan that stops at the first name past it.
    pub fn lookup(&self, i: &Inode, name: &[u8]) -> Result<Option<DirEntry>> {
        let d = self.dir_info(i)?;
        let bytes = self.listing_bytes(d)?;
        let index = self.dir_index(i)?;
        let mut it = match dir::index_for(&index, name) {
            Some(e) => {
                let skipped = u64::from(e.index);
                let off = (usize::from(d.offset) + e.index as usize) % METADATA_SIZE;
                let c = MetaCursor::new(
                    self,
                    self.sb.directory_table_start,
                    self.dir_limit(),
                    u64::from(e.start),
                    off,
                )?;
                DirReader::new(c, bytes - skipped, self.sb.inode_count)
            }
            None => self.read_dir(i)?,
        };
        while let Some(e) = it.next_entry()? {
            match e.name.as_slice().cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(e)),
                std::cmp::Ordering::Greater => return Ok(None),
                std::cmp::Ordering::Less => {}
            }
        }
        Ok(None)
    }

    /// The inode a directory entry names, checked against the number and
    /// type the entry records for it.
    pub fn entry_inode(&self, e: &DirEntry) -> Result<Inode> {
        let i = self.inode(e.inode_ref)?;
        if i.number != e.inode_number || i.file_type() != e.file_type {
            return Err(Error::corrupt(
                self.sb.inode_table_start + e.inode_ref.block(),
                format!(
                    "entry {:?} names inode {} ({:?}), the inode there is {} ({:?})",
                    String::from_utf8_lossy(&e.name),
                    e.inode_number,
                    e.file_type,
                    i.number,
                    i.file_type()
                ),
            ));
        }
        Ok(i)
    }

    /// Resolves a '/'-separated path from the root without following
    /// symlinks; "" and "/" name the root. Returns the inode and its reference.
    pub fn lookup_path(&self, path: &str) -> Result<(Inode, MetaRef)> {
        let mut r = self.root_ref();
        let mut inode = self.root()?;
        for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if comp == ".." {
                return Err(Error::invalid(format!(
                    "'..' is not supported in image paths: {path}"
                )));
            }
            if !inode.is_dir() {
                return Err(Error::not_found(format!(
                    "{path}: a path component is not a directory"
                )));
            }
            let e = self
                .lookup(&inode, comp.as_bytes())?
                .ok_or_else(|| Error::not_found(format!("{path}: no such file or directory")))?;
            inode = self.entry_inode(&e)?;
            r = e.inode_ref;
        }
        Ok((inode, r))
    }
}
