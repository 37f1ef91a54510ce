//! What a mount shows: one image as it is ([`ImageView`]), or several
//! merged the way overlayfs merges read-only layers ([`LayeredView`]).
//!
//! A view is a layer over readers: it names every node with a stable id
//! (the FUSE node id and `st_ino`, 1 for the root), resolves names, lists
//! directories and says which image holds each node's inode. The mount
//! turns nodes into replies; it never knows how many images there are.

pub mod layered;
pub mod single;
pub mod upper;
pub mod writable;

pub use layered::LayeredView;
pub use single::ImageView;
pub use writable::WritableView;

use crate::error::{Error, Result};
use crate::format::dir::DirEntry;
use crate::format::inode::{FileType, Inode};
use crate::format::xattr::Xattr;
use crate::reader::Image;
use std::sync::Arc;

/// The node id of the root of every view.
pub const ROOT_ID: u64 = 1;

/// A node of the view: its id and the inode that stands for it (the
/// topmost layer's, in a layered view).
#[derive(Clone, Debug)]
pub struct Node {
    /// The node's number, as the mount hands it to the kernel.
    pub id: u64,
    /// Index into [`View::layers`] of the image holding `inode` (what
    /// [`View::image`] returns); the view's to set.
    pub(crate) layer: usize,
    /// The inode that stands for the node.
    pub inode: Inode,
}

/// One name of a directory listing. Kept small (a listing of a huge
/// directory holds one per name): the name and type live in the
/// directory entry it was read from.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The id of the node it names.
    pub id: u64,
    /// Where the entry was found: enough to load its node without a lookup.
    pub(crate) layer: usize,
    pub(crate) dirent: DirEntry,
}

impl Entry {
    /// The entry's name.
    pub fn name(&self) -> &[u8] {
        &self.dirent.name
    }

    /// Its type.
    pub fn file_type(&self) -> FileType {
        self.dirent.file_type
    }
}

/// A directory's entries (without "." and "..") and its parent's id.
#[derive(Clone, Debug)]
pub struct Listing {
    /// The parent directory's node id.
    pub parent: u64,
    /// The entries, in a stable order.
    pub entries: Vec<Entry>,
}

impl Listing {
    /// Roughly what the listing costs in memory, for cache budgets.
    pub fn footprint(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.name().len() + std::mem::size_of::<Entry>())
            .sum::<usize>()
            + std::mem::size_of::<Self>()
    }
}

/// Totals for `statfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Blocks of `block_size` bytes the images use.
    pub blocks: u64,
    /// Inodes in all layers.
    pub inodes: u64,
    /// The unit of `blocks`.
    pub block_size: u32,
}

/// A read-only tree of nodes over one or more images. Every method may be
/// called from many threads at once.
pub trait View: Send + Sync {
    /// The images, top layer first (one for a plain mount).
    fn layers(&self) -> &[Arc<Image>];

    /// The node with this id (one handed out before), or a NotFound error.
    fn node(&self, id: u64) -> Result<Node>;

    /// The node `name` names in directory `dir` (a node this view handed
    /// out), if any.
    fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Option<Node>>;

    /// The entries of directory `dir`, in a stable order.
    fn list(&self, dir: &Node) -> Result<Arc<Listing>>;

    /// The node of an entry `list` returned for directory `dir`.
    fn entry_node(&self, dir: u64, e: &Entry) -> Result<Node>;

    /// The image holding `n`'s inode: where its data, ids and xattrs are
    /// read. The view handed `n` out, so its layer is one of its own.
    fn image(&self, n: &Node) -> &Arc<Image> {
        &self.layers()[n.layer]
    }

    /// The node's extended attributes as the view shows them.
    fn xattrs(&self, n: &Node) -> Result<Vec<Xattr>> {
        self.image(n).xattrs(&n.inode)
    }

    /// What `statfs` reports: the layers' sizes and inode counts summed, in
    /// units of the top layer's block size.
    fn totals(&self) -> Totals {
        let layers = self.layers();
        let block_size = layers.first().map_or(4096, |l| l.sb.block_size);
        let bytes: u64 = layers
            .iter()
            .map(|l| l.sb.bytes_used)
            .fold(0, u64::saturating_add);
        Totals {
            // As the kernel driver rounds: at least one block.
            blocks: bytes.saturating_sub(1) / u64::from(block_size) + 1,
            inodes: layers.iter().map(|l| u64::from(l.sb.inode_count)).sum(),
            block_size,
        }
    }
}

/// The node `path` names below the view's root: components split at '/',
/// "." and empty ones skipped, ".." refused (as [`Image::lookup_path`]).
pub fn lookup_path(view: &dyn View, path: &str) -> Result<Node> {
    let mut node = view.node(ROOT_ID)?;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(Error::invalid(format!(
                "'..' is not supported in image paths: {path}"
            )));
        }
        if !node.inode.is_dir() {
            return Err(Error::not_found(format!(
                "{path}: a path component is not a directory"
            )));
        }
        node = view
            .lookup(&node, comp.as_bytes())?
            .ok_or_else(|| Error::not_found(format!("{path}: no such file or directory")))?;
    }
    Ok(node)
}
