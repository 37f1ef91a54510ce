//! One image as it is: node ids are the image's inode numbers, except that
//! the root shown (the image's root, or a `subdir`) is node 1 and swaps
//! places with whatever inode has number 1. So `st_ino` matches the kernel
//! driver's for every entry but those two.

use super::{Entry, Listing, Node, View, ROOT_ID};
use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::format::metadata::MetaRef;
use crate::reader::Image;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// One image, the root (or a subdirectory) as node 1.
pub struct ImageView {
    layers: [Arc<Image>; 1],
    /// Image inode number shown as node 1.
    root_number: u32,
    /// Where each inode number seen so far lives, for images without an
    /// export table (with one, the table is asked instead).
    refs: RwLock<HashMap<u32, MetaRef>>,
}

impl ImageView {
    /// The view of `img` rooted at `root` (its root directory, or a subdir).
    pub fn new(img: Arc<Image>, root: (Inode, MetaRef)) -> Self {
        let mut refs = HashMap::new();
        refs.insert(root.0.number, root.1);
        ImageView {
            layers: [img],
            root_number: root.0.number,
            refs: RwLock::new(refs),
        }
    }

    /// The view of all of `img`, from its root directory.
    pub fn whole(img: Arc<Image>) -> Result<Self> {
        let root = (img.root()?, img.root_ref());
        Ok(Self::new(img, root))
    }

    fn img(&self) -> &Image {
        &self.layers[0]
    }

    fn id_of(&self, number: u32) -> u64 {
        if number == self.root_number {
            ROOT_ID
        } else if u64::from(number) == ROOT_ID {
            u64::from(self.root_number)
        } else {
            u64::from(number)
        }
    }

    fn number_of(&self, id: u64) -> Option<u32> {
        let n = u32::try_from(id).ok()?;
        Some(if u64::from(n) == ROOT_ID {
            self.root_number
        } else if n == self.root_number {
            1
        } else {
            n
        })
    }

    /// Records where inode `number` lives. With an export table the image
    /// answers that itself, so the map (the one structure that grows with the
    /// image rather than the caches) stays empty but for the root.
    fn remember(&self, number: u32, r: MetaRef) {
        if self.img().has_export_table() {
            return;
        }
        if self.refs.read().get(&number) != Some(&r) {
            self.refs.write().insert(number, r);
        }
    }

    fn node_of(&self, inode: Inode) -> Node {
        Node {
            id: self.id_of(inode.number),
            layer: 0,
            inode,
        }
    }
}

impl View for ImageView {
    fn layers(&self) -> &[Arc<Image>] {
        &self.layers
    }

    fn node(&self, id: u64) -> Result<Node> {
        let unknown = || Error::not_found(format!("node {id} was never handed out"));
        let number = self.number_of(id).ok_or_else(unknown)?;
        let known = self.refs.read().get(&number).copied();
        let r = match known {
            Some(r) => r,
            None if self.img().has_export_table() => self.img().inode_ref_by_number(number)?,
            None => return Err(unknown()),
        };
        let i = self.img().inode(r)?;
        if i.number != number {
            let at = self.img().sb.inode_table_start + r.block();
            return Err(Error::corrupt(
                at,
                format!("inode {number} is stored as {}", i.number),
            ));
        }
        Ok(self.node_of(i))
    }

    fn lookup(&self, d: &Node, name: &[u8]) -> Result<Option<Node>> {
        let Some(e) = self.img().lookup(&d.inode, name)? else {
            return Ok(None);
        };
        let i = self.img().entry_inode(&e)?;
        self.remember(i.number, e.inode_ref);
        Ok(Some(self.node_of(i)))
    }

    fn list(&self, d: &Node) -> Result<Arc<Listing>> {
        let InodeData::Dir(info) = &d.inode.data else {
            return Err(Error::invalid(format!("node {} is not a directory", d.id)));
        };
        let parent = if d.id == ROOT_ID {
            ROOT_ID
        } else {
            self.id_of(info.parent)
        };
        let entries = self
            .img()
            .read_dir(&d.inode)?
            .map(|e| {
                e.map(|dirent| Entry {
                    id: self.id_of(dirent.inode_number),
                    layer: 0,
                    dirent,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Listing { parent, entries }))
    }

    fn entry_node(&self, _dir: u64, e: &Entry) -> Result<Node> {
        let i = self.img().entry_inode(&e.dirent)?;
        self.remember(i.number, e.dirent.inode_ref);
        Ok(self.node_of(i))
    }
}
