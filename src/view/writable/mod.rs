//! The image's layers with a writable upper directory on top, merged as
//! kernel overlayfs merges `upperdir` over `lowerdir`s: what a writable
//! mount shows.
//!
//! The merged tree is kept as nodes named by (parent, name). Invariants:
//! - a node is either in the upper (`upper`) or only in the lower layers
//!   (`lower` is the lower view's node); an upper directory's `lower` is
//!   the lower directory merged below it, `None` when opaque or new;
//! - every name a node is known by in an upper directory exists in the
//!   upper (hard links of an upper file are hard links there);
//! - a node keeps its id for the mount's life, copy-up and rename
//!   included: lower nodes use the lower view's ids, nodes born in the
//!   upper get ids from [`FRESH_BASE`] on;
//! - the root is the upper directory itself and always `upper`.
//!
//! Changes are made in the upper only; see [`ops`] for the operations
//! and [`crate::view::upper`] for the directory's format.

pub mod ops;

use super::upper::{copyup, OverrideStat, UpperDir, UpperResult};
use super::{Node, View, ROOT_ID};
use crate::format::inode::FileType as SqType;
use parking_lot::Mutex;
use rustix::fs::{FileType, OFlags, Stat};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Ids of nodes born in the upper start here, above every lower view's
/// ids (a layered view's are below 2^56 for fewer than 2^24 layers).
pub const FRESH_BASE: u64 = 1 << 56;

/// Depth past which no path is followed (the kernel's PATH_MAX allows
/// no more components).
const MAX_DEPTH: usize = 4096;

#[derive(Debug)]
struct WNode {
    /// The name the node's upper path is made of (one of its names).
    parent: u64,
    name: Vec<u8>,
    /// How many (parent, name) pairs name it.
    names: u32,
    lower: Option<Node>,
    upper: bool,
    is_dir: bool,
}

#[derive(Default)]
pub(crate) struct Tree {
    nodes: HashMap<u64, WNode>,
    children: HashMap<(u64, Vec<u8>), u64>,
    /// Upper non-directories by inode number: hard links share a node.
    by_upper_ino: HashMap<u64, u64>,
    next_fresh: u64,
}

/// Where a node's attributes come from.
pub enum Attrs {
    /// The upper's entry; `merged`: a directory merging lower ones (whose
    /// link count overlayfs reports as 1).
    Upper {
        /// The upper entry's stat.
        st: Box<Stat>,
        /// The owner and mode a rootless server keeps for it.
        owner: Option<OverrideStat>,
        /// A directory merging lower ones.
        merged: bool,
    },
    /// The lower layers' node, as read-only mounts show it.
    Lower(Node),
}

/// A node and its attributes.
pub struct Found {
    /// The node's id.
    pub id: u64,
    /// Where its attributes come from.
    pub attrs: Attrs,
}

impl Found {
    /// Node `id` as its open upper file `fd` says (for a node with no name
    /// left, whose kept owner went with its path).
    pub fn of_open_file(id: u64, fd: &OwnedFd) -> UpperResult<Found> {
        Ok(Found {
            id,
            attrs: Attrs::Upper {
                st: Box::new(rustix::fs::fstat(fd)?),
                owner: None,
                merged: false,
            },
        })
    }
}

/// One name of a merged listing.
pub struct Item {
    /// The entry's name.
    pub name: Vec<u8>,
    /// The node it names.
    pub id: u64,
    /// Its type.
    pub file_type: SqType,
}

/// A merged directory's entries (without "." and "..").
pub struct MergedListing {
    /// The directory's parent.
    pub parent: u64,
    /// The entries, upper ones first.
    pub items: Vec<Item>,
}

/// A file opened for reading: the lower layers' data, or the upper's file.
pub enum Opened {
    /// Not copied up: read the lower layers' node.
    Lower(Node),
    /// The upper's file, opened read-only.
    Upper(OwnedFd),
}

/// The requester of a change: who owns what it makes.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    /// The requester's uid.
    pub uid: u32,
    /// The requester's gid.
    pub gid: u32,
}

/// The image's layers (any [`View`]) under a writable directory.
pub struct WritableView {
    lower: Arc<dyn View>,
    upper: UpperDir,
    tree: Mutex<Tree>,
}

fn lower_errno(e: crate::error::Error) -> Errno {
    Errno::from_raw_os_error(e.errno())
}

/// The listing's type of an upper entry.
pub fn sq_type(mode: u32) -> SqType {
    match FileType::from_raw_mode(mode) {
        FileType::Directory => SqType::Dir,
        FileType::Symlink => SqType::Symlink,
        FileType::CharacterDevice => SqType::CharDev,
        FileType::BlockDevice => SqType::BlockDev,
        FileType::Fifo => SqType::Fifo,
        FileType::Socket => SqType::Socket,
        _ => SqType::File,
    }
}

impl WritableView {
    /// `upper` over `lower` (whose root is node 1).
    pub fn new(lower: Arc<dyn View>, upper: UpperDir) -> UpperResult<Self> {
        let opaque = upper.is_opaque(Path::new(""))?;
        let root_lower = if opaque {
            None
        } else {
            Some(lower.node(ROOT_ID).map_err(lower_errno)?)
        };
        let mut t = Tree {
            next_fresh: FRESH_BASE,
            ..Tree::default()
        };
        t.nodes.insert(
            ROOT_ID,
            WNode {
                parent: ROOT_ID,
                name: Vec::new(),
                names: 1,
                lower: root_lower,
                upper: true,
                is_dir: true,
            },
        );
        Ok(WritableView {
            lower,
            upper,
            tree: Mutex::new(t),
        })
    }

    /// The lower layers.
    pub fn lower(&self) -> &Arc<dyn View> {
        &self.lower
    }

    /// The upper directory.
    pub fn upper(&self) -> &UpperDir {
        &self.upper
    }

    /// The upper path of node `id`.
    fn rel(t: &Tree, id: u64) -> UpperResult<PathBuf> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut cur = id;
        while cur != ROOT_ID {
            let n = t.nodes.get(&cur).ok_or(Errno::NOENT)?;
            names.push(&n.name);
            cur = n.parent;
            if names.len() > MAX_DEPTH {
                return Err(Errno::LOOP);
            }
        }
        let mut p = PathBuf::new();
        for n in names.iter().rev() {
            p.push(OsStr::from_bytes(n));
        }
        Ok(p)
    }

    fn child_rel(t: &Tree, dir: u64, name: &[u8]) -> UpperResult<PathBuf> {
        Ok(Self::rel(t, dir)?.join(OsStr::from_bytes(name)))
    }

    fn fresh(t: &mut Tree) -> u64 {
        t.next_fresh += 1;
        t.next_fresh
    }

    /// Records that (dir, name) names `id`.
    fn name_it(t: &mut Tree, dir: u64, name: &[u8], id: u64) {
        if t.children.insert((dir, name.to_vec()), id) != Some(id) {
            if let Some(n) = t.nodes.get_mut(&id) {
                n.names += 1;
            }
        }
    }

    /// Forgets that (dir, name) names anything; a node left with no name
    /// is dropped (open files keep their descriptors).
    fn unname(t: &mut Tree, dir: u64, name: &[u8]) {
        let Some(id) = t.children.remove(&(dir, name.to_vec())) else {
            return;
        };
        let Some(n) = t.nodes.get_mut(&id) else {
            return;
        };
        n.names = n.names.saturating_sub(1);
        if n.names == 0 {
            t.nodes.remove(&id);
            t.by_upper_ino.retain(|_, v| *v != id);
            return;
        }
        if n.parent == dir && n.name == name {
            // Its path was that name: take another of its names.
            if let Some((k, _)) = t.children.iter().find(|(_, v)| **v == id) {
                let (p, nm) = k.clone();
                let n = t.nodes.get_mut(&id).expect("present above");
                n.parent = p;
                n.name = nm;
            }
        }
    }

    /// The node `name` names in directory `dir`, registering it.
    fn lookup_locked(&self, t: &mut Tree, dir: u64, name: &[u8]) -> UpperResult<Option<u64>> {
        if let Some(&id) = t.children.get(&(dir, name.to_vec())) {
            return Ok(Some(id));
        }
        let d = t.nodes.get(&dir).ok_or(Errno::NOENT)?;
        if !d.is_dir {
            return Err(Errno::NOTDIR);
        }
        let (d_upper, d_lower) = (d.upper, d.lower.clone());
        if d_upper {
            if UpperDir::is_temp_name(name) {
                return Ok(None);
            }
            let rel = Self::child_rel(t, dir, name)?;
            match self.upper.stat(&rel) {
                Ok(st) => return self.register_upper(t, dir, name, &rel, &st, d_lower.as_ref()),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let Some(ld) = d_lower else {
            return Ok(None);
        };
        let Some(n) = self.lower.lookup(&ld, name).map_err(lower_errno)? else {
            return Ok(None);
        };
        Ok(Some(self.register_lower(t, dir, name, n)?))
    }

    fn register_upper(
        &self,
        t: &mut Tree,
        dir: u64,
        name: &[u8],
        rel: &Path,
        st: &Stat,
        d_lower: Option<&Node>,
    ) -> UpperResult<Option<u64>> {
        if self.upper.is_whiteout(rel, st)? {
            return Ok(None);
        }
        let lower = match d_lower {
            Some(ld) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                if self.upper.is_opaque(rel)? {
                    None
                } else {
                    self.lower
                        .lookup(ld, name)
                        .map_err(lower_errno)?
                        .filter(|n| n.inode.is_dir())
                }
            }
            _ => None,
        };
        Ok(Some(Self::insert_upper(t, dir, name, st, lower)))
    }

    /// Names the upper entry `name` of `dir` (stat `st`, not a whiteout),
    /// merged with lower directory `lower` if there is one.
    fn insert_upper(t: &mut Tree, dir: u64, name: &[u8], st: &Stat, lower: Option<Node>) -> u64 {
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        let id = if is_dir {
            let id = match &lower {
                Some(n) if !t.nodes.contains_key(&n.id) => n.id,
                _ => Self::fresh(t),
            };
            t.nodes.insert(
                id,
                WNode {
                    parent: dir,
                    name: name.to_vec(),
                    names: 0,
                    lower,
                    upper: true,
                    is_dir: true,
                },
            );
            id
        } else if let Some(&id) = t
            .by_upper_ino
            .get(&st.st_ino)
            .filter(|id| t.nodes.contains_key(id))
        {
            id
        } else {
            let id = Self::fresh(t);
            t.nodes.insert(
                id,
                WNode {
                    parent: dir,
                    name: name.to_vec(),
                    names: 0,
                    lower: None,
                    upper: true,
                    is_dir: false,
                },
            );
            t.by_upper_ino.insert(st.st_ino, id);
            id
        };
        Self::name_it(t, dir, name, id);
        id
    }

    fn register_lower(&self, t: &mut Tree, dir: u64, name: &[u8], n: Node) -> UpperResult<u64> {
        let id = n.id;
        if let Some(existing) = t.nodes.get(&id) {
            // Another name of a lower hard link seen before. Once copied up,
            // its other names are links in the upper too.
            if existing.upper && !existing.is_dir {
                let from = Self::rel(t, id)?;
                self.ensure_upper(t, dir)?;
                let to = Self::child_rel(t, dir, name)?;
                self.upper.link(&from, &to)?;
            }
            Self::name_it(t, dir, name, id);
            return Ok(id);
        }
        let is_dir = n.inode.is_dir();
        t.nodes.insert(
            id,
            WNode {
                parent: dir,
                name: name.to_vec(),
                names: 0,
                lower: Some(n),
                upper: false,
                is_dir,
            },
        );
        Self::name_it(t, dir, name, id);
        Ok(id)
    }

    fn attrs_locked(&self, t: &Tree, id: u64) -> UpperResult<Attrs> {
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if !n.upper {
            return Ok(Attrs::Lower(n.lower.clone().ok_or(Errno::IO)?));
        }
        let merged = n.is_dir && n.lower.is_some();
        let rel = Self::rel(t, id)?;
        let st = self.upper.stat(&rel)?;
        Ok(Attrs::Upper {
            st: Box::new(st),
            owner: self.upper.override_stat(&rel),
            merged,
        })
    }

    /// Node `id`'s attributes.
    pub fn attrs(&self, id: u64) -> UpperResult<Found> {
        let t = self.tree.lock();
        Ok(Found {
            id,
            attrs: self.attrs_locked(&t, id)?,
        })
    }

    /// The node `name` names in directory `dir`, if any.
    pub fn lookup(&self, dir: u64, name: &[u8]) -> UpperResult<Option<Found>> {
        let mut t = self.tree.lock();
        let Some(id) = self.lookup_locked(&mut t, dir, name)? else {
            return Ok(None);
        };
        Ok(Some(Found {
            id,
            attrs: self.attrs_locked(&t, id)?,
        }))
    }

    fn list_locked(&self, t: &mut Tree, dir: u64) -> UpperResult<MergedListing> {
        let d = t.nodes.get(&dir).ok_or(Errno::NOENT)?;
        if !d.is_dir {
            return Err(Errno::NOTDIR);
        }
        let (parent, d_upper, d_lower) = (d.parent, d.upper, d.lower.clone());
        let mut items = Vec::new();
        let mut decided: HashSet<Vec<u8>> = HashSet::new();
        if d_upper {
            let rel = Self::rel(t, dir)?;
            let fd = self
                .upper
                .open_at(&rel, OFlags::DIRECTORY | OFlags::RDONLY, 0)?;
            let mut names = Vec::new();
            for e in rustix::fs::Dir::read_from(&fd)? {
                let e = e?;
                let name = e.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                names.push(name.to_vec());
            }
            for name in names {
                decided.insert(name.clone());
                if let Some(id) = self.lookup_locked(t, dir, &name)? {
                    let file_type = match self.attrs_locked(t, id)? {
                        Attrs::Upper { st, .. } => sq_type(st.st_mode),
                        Attrs::Lower(n) => n.inode.file_type(),
                    };
                    items.push(Item {
                        name,
                        id,
                        file_type,
                    });
                }
            }
        }
        if let Some(ld) = d_lower {
            let listing = self.lower.list(&ld).map_err(lower_errno)?;
            for e in &listing.entries {
                if decided.contains(e.name()) {
                    continue;
                }
                let id = match t.children.get(&(dir, e.name().to_vec())) {
                    Some(&id) => id,
                    None => {
                        let n = self.lower.entry_node(ld.id, e).map_err(lower_errno)?;
                        self.register_lower(t, dir, e.name(), n)?
                    }
                };
                items.push(Item {
                    name: e.name().to_vec(),
                    id,
                    file_type: e.file_type(),
                });
            }
        }
        Ok(MergedListing { parent, items })
    }

    /// The merged entries of directory `dir`.
    pub fn list(&self, dir: u64) -> UpperResult<MergedListing> {
        let mut t = self.tree.lock();
        self.list_locked(&mut t, dir)
    }

    /// Copies node `id` and the directories above it up, where not yet.
    fn ensure_upper(&self, t: &mut Tree, id: u64) -> UpperResult<()> {
        let mut chain = Vec::new();
        let mut cur = id;
        loop {
            let n = t.nodes.get(&cur).ok_or(Errno::NOENT)?;
            if n.upper {
                break;
            }
            chain.push(cur);
            cur = n.parent;
            if chain.len() > MAX_DEPTH {
                return Err(Errno::LOOP);
            }
        }
        for id in chain.into_iter().rev() {
            self.copy_up_one(t, id)?;
        }
        Ok(())
    }

    /// Copies node `id`, whose parent is in the upper, up; a hard link of
    /// the lower layers gets its other known names linked too.
    fn copy_up_one(&self, t: &mut Tree, id: u64) -> UpperResult<()> {
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        let lower = n.lower.clone().ok_or(Errno::IO)?;
        let is_dir = n.is_dir;
        let rel = Self::rel(t, id)?;
        copyup::copy_up(&self.upper, &*self.lower, &lower, &rel)?;
        let n = t.nodes.get_mut(&id).expect("present above");
        n.upper = true;
        if is_dir {
            return Ok(());
        }
        n.lower = None;
        let (p, nm) = (n.parent, n.name.clone());
        let ino = self.upper.stat(&rel)?.st_ino;
        t.by_upper_ino.insert(ino, id);
        let others: Vec<(u64, Vec<u8>)> = t
            .children
            .iter()
            .filter(|(k, v)| **v == id && !(k.0 == p && k.1 == nm))
            .map(|(k, _)| k.clone())
            .collect();
        for (dir, name) in others {
            self.ensure_upper(t, dir)?;
            let to = Self::child_rel(t, dir, &name)?;
            self.upper.link(&rel, &to)?;
        }
        Ok(())
    }

    /// Copies the directory `id` up with everything below it and makes it
    /// opaque in memory (the caller marks it on disk): what a rename of a
    /// directory with lower entries needs. Walks with a stack, not
    /// recursion.
    fn copy_up_tree(&self, t: &mut Tree, id: u64) -> UpperResult<()> {
        self.ensure_upper(t, id)?;
        let mut stack = vec![id];
        while let Some(d) = stack.pop() {
            let listing = self.list_locked(t, d)?;
            for item in listing.items {
                let (upper, is_dir) = match t.nodes.get(&item.id) {
                    Some(n) => (n.upper, n.is_dir),
                    None => {
                        // Listed from a lower-only directory: register it.
                        self.lookup_locked(t, d, &item.name)?;
                        let n = t.nodes.get(&item.id).ok_or(Errno::IO)?;
                        (n.upper, n.is_dir)
                    }
                };
                if !upper {
                    self.copy_up_one(t, item.id)?;
                }
                if is_dir {
                    stack.push(item.id);
                }
            }
            if let Some(n) = t.nodes.get_mut(&d) {
                n.lower = None;
            }
            // Not merged any more: overlayfs would list its whiteouts.
            self.remove_whiteouts(&Self::rel(t, d)?, false)?;
        }
        Ok(())
    }

    /// Whether a lower layer shows `name` in directory `dir` (so deleting
    /// it from the upper needs a whiteout).
    fn lower_has(&self, t: &Tree, dir: u64, name: &[u8]) -> UpperResult<bool> {
        let Some(ld) = t.nodes.get(&dir).and_then(|d| d.lower.as_ref()) else {
            return Ok(false);
        };
        Ok(self.lower.lookup(ld, name).map_err(lower_errno)?.is_some())
    }

    /// Opens node `id` for reading.
    pub fn open_read(&self, id: u64) -> UpperResult<Opened> {
        let t = self.tree.lock();
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if !n.upper {
            return n.lower.clone().map(Opened::Lower).ok_or(Errno::IO);
        }
        let rel = Self::rel(&t, id)?;
        let fd = self.upper.open_at(&rel, OFlags::RDONLY, 0)?;
        Ok(Opened::Upper(fd))
    }

    /// Opens node `id` for writing (`flags`: the open's own, less what the
    /// kernel already did), copying it up first.
    pub fn open_write(&self, id: u64, flags: OFlags) -> UpperResult<OwnedFd> {
        let mut t = self.tree.lock();
        self.ensure_upper(&mut t, id)?;
        let rel = Self::rel(&t, id)?;
        self.upper.open_at(&rel, flags, 0)
    }

    /// A symlink's target.
    pub fn readlink(&self, id: u64) -> UpperResult<Vec<u8>> {
        let t = self.tree.lock();
        let n = t.nodes.get(&id).ok_or(Errno::NOENT)?;
        if !n.upper {
            return match &n.lower {
                Some(Node {
                    inode:
                        crate::format::inode::Inode {
                            data: crate::format::inode::InodeData::Symlink(s),
                            ..
                        },
                    ..
                }) => Ok(s.clone()),
                _ => Err(Errno::INVAL),
            };
        }
        let rel = Self::rel(&t, id)?;
        self.upper.readlink(&rel)
    }
}
