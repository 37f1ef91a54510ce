//! Several images shown as one tree, merged the way overlayfs merges
//! read-only lower layers (`lowerdir=top:...:bottom`):
//!
//! - a name is looked up from the top layer down; a whiteout (either
//!   convention, see [`crate::whiteout`]) ends the search, a non-directory
//!   hides everything below it, directories merge until an opaque one;
//! - a merged directory lists each name once, from the topmost layer that
//!   decides it, and reports one link, as overlayfs does;
//! - stat and data come from the topmost layer holding the entry;
//!   overlayfs's private xattrs are hidden.
//!
//! Node ids: 1 for the root; otherwise the layer index plus one in the high
//! 32 bits and the inode number of the entry's topmost inode in the low
//! ones. Stable for the life of the mount, unique across layers, and hard
//! links inside one layer share theirs.

use super::{Entry, Listing, Node, View, ROOT_ID};
use crate::error::{Error, Result};
use crate::format::inode::Inode;
use crate::format::metadata::MetaRef;
use crate::format::xattr::Xattr;
use crate::reader::Image;
use crate::whiteout;
use lru::LruCache;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One layer's inode standing for (part of) a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    layer: usize,
    at: MetaRef,
}

/// What a node id stands for: its parent's id, and its inodes from the top
/// down (one for a non-directory; for a directory, every layer it merges).
#[derive(Debug)]
struct NodeInfo {
    parent: u64,
    parts: Vec<Part>,
}

/// Merged listings, least recently used evicted beyond a byte budget.
struct ListingCache {
    lru: LruCache<u64, Arc<Listing>>,
    bytes: usize,
    budget: usize,
}

/// Several images merged as overlayfs merges read-only layers: the top layer's entry wins,
/// whiteouts hide what is below, opaque directories hide the lower ones' entries.
pub struct LayeredView {
    layers: Vec<Arc<Image>>,
    /// Each layer's name for messages (its path).
    names: Vec<String>,
    /// Whether a layer stores any xattrs (without, no file is an xattr
    /// whiteout and listing it reads no inodes).
    has_xattrs: Vec<bool>,
    nodes: RwLock<HashMap<u64, Arc<NodeInfo>>>,
    listings: Mutex<ListingCache>,
}

impl LayeredView {
    /// The union of `layers` (top first, each with a name for messages);
    /// merged listings are cached up to `listing_budget` bytes.
    pub fn new(layers: Vec<(String, Arc<Image>)>, listing_budget: usize) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::invalid("a layered view needs at least one image"));
        }
        let u32_layers = u32::try_from(layers.len()).ok().filter(|n| *n < u32::MAX);
        if u32_layers.is_none() {
            return Err(Error::invalid("too many layers"));
        }
        let (names, layers): (Vec<String>, Vec<Arc<Image>>) = layers.into_iter().unzip();
        let has_xattrs = layers.iter().map(|l| l.xattr_count() > 0).collect();
        let view = LayeredView {
            layers,
            names,
            has_xattrs,
            nodes: RwLock::new(HashMap::new()),
            listings: Mutex::new(ListingCache {
                lru: LruCache::unbounded(),
                bytes: 0,
                budget: listing_budget,
            }),
        };
        let mut parts = Vec::new();
        for (layer, img) in view.layers.iter().enumerate() {
            let at = img.root_ref();
            let root = view.inode(Part { layer, at })?;
            parts.push(Part { layer, at });
            if view.is_opaque_dir(layer, &root)? {
                break;
            }
        }
        view.nodes.write().insert(
            ROOT_ID,
            Arc::new(NodeInfo {
                parent: ROOT_ID,
                parts,
            }),
        );
        Ok(view)
    }

    /// The error, saying which layer it happened in.
    fn in_layer(&self, layer: usize, e: Error) -> Error {
        e.within(format!("layer {}", self.names[layer]))
    }

    fn inode(&self, p: Part) -> Result<Inode> {
        self.layers[p.layer]
            .inode(p.at)
            .map_err(|e| self.in_layer(p.layer, e))
    }

    fn raw_xattrs(&self, layer: usize, i: &Inode) -> Result<Vec<Xattr>> {
        if i.xattr.is_none() {
            return Ok(Vec::new());
        }
        self.layers[layer]
            .xattrs(i)
            .map_err(|e| self.in_layer(layer, e))
    }

    /// Whether directory `i` of `layer` hides the layers below it.
    fn is_opaque_dir(&self, layer: usize, i: &Inode) -> Result<bool> {
        let img = &self.layers[layer];
        let oci = img
            .lookup(i, whiteout::OCI_OPAQUE)
            .map_err(|e| self.in_layer(layer, e))?
            .is_some();
        Ok(oci || whiteout::is_opaque(&self.raw_xattrs(layer, i)?))
    }

    /// Whether inode `i` of `layer` is an overlayfs whiteout.
    fn is_whiteout(&self, layer: usize, i: &Inode) -> Result<bool> {
        if whiteout::is_device_whiteout(i) {
            return Ok(true);
        }
        if !self.has_xattrs[layer] || !whiteout::may_be_xattr_whiteout(i) {
            return Ok(false);
        }
        Ok(whiteout::is_xattr_whiteout(&self.raw_xattrs(layer, i)?))
    }

    fn id_for(layer: usize, number: u32) -> u64 {
        ((layer as u64 + 1) << 32) | u64::from(number)
    }

    fn info(&self, id: u64) -> Result<Arc<NodeInfo>> {
        self.nodes
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("node {id} was never handed out")))
    }

    /// Records what `id` stands for; the first record stays (ids are stable).
    fn register(&self, id: u64, parent: u64, parts: Vec<Part>) -> Arc<NodeInfo> {
        if let Some(known) = self.nodes.read().get(&id) {
            return known.clone();
        }
        self.nodes
            .write()
            .entry(id)
            .or_insert_with(|| Arc::new(NodeInfo { parent, parts }))
            .clone()
    }

    /// The node for `id`, given its top inode (already loaded).
    fn make_node(&self, id: u64, info: &NodeInfo, mut inode: Inode) -> Node {
        // As overlayfs: a merged directory's link count is not the sum of
        // anything meaningful, so it says 1 ("unknown" to find(1)).
        if inode.is_dir() && info.parts.len() > 1 {
            inode.nlink = 1;
        }
        Node {
            id,
            layer: info.parts[0].layer,
            inode,
        }
    }

    /// The layers' inodes `name` stands for below the directory `parts`
    /// (top first, `dir_top` the inode of `parts[0]`), and the top one.
    fn resolve(
        &self,
        parts: &[Part],
        dir_top: &Inode,
        name: &[u8],
    ) -> Result<Option<(Vec<Part>, Inode)>> {
        let mut found: Vec<Part> = Vec::new();
        let mut top: Option<Inode> = None;
        for (k, p) in parts.iter().enumerate() {
            let img = &self.layers[p.layer];
            let ctx = |e| self.in_layer(p.layer, e);
            let loaded;
            let dir = if k == 0 {
                dir_top
            } else {
                loaded = self.inode(*p)?;
                &loaded
            };
            if let Some(e) = img.lookup(dir, name).map_err(ctx)? {
                let i = img.entry_inode(&e).map_err(ctx)?;
                if self.is_whiteout(p.layer, &i)? {
                    break;
                }
                let here = Part {
                    layer: p.layer,
                    at: e.inode_ref,
                };
                if !i.is_dir() {
                    // A non-directory under a directory of an upper layer
                    // is hidden by it; on top, it hides everything below.
                    if found.is_empty() {
                        found.push(here);
                        top = Some(i);
                    }
                    break;
                }
                let opaque = self.is_opaque_dir(p.layer, &i)?;
                found.push(here);
                top.get_or_insert(i);
                if opaque {
                    break;
                }
            }
            // An OCI whiteout deletes the name from the layers below this one.
            let wh = whiteout::oci_whiteout_name(name);
            if img.lookup(dir, &wh).map_err(ctx)?.is_some() {
                break;
            }
        }
        Ok(top.map(|t| (found, t)))
    }

    fn cache_get(&self, id: u64) -> Option<Arc<Listing>> {
        self.listings.lock().lru.get(&id).cloned()
    }

    fn cache_put(&self, id: u64, l: Arc<Listing>) {
        let mut c = self.listings.lock();
        let size = l.footprint();
        if size > c.budget {
            return;
        }
        if let Some(old) = c.lru.put(id, l) {
            c.bytes -= old.footprint();
        }
        c.bytes += size;
        while c.bytes > c.budget {
            match c.lru.pop_lru() {
                Some((_, old)) => c.bytes -= old.footprint(),
                None => break,
            }
        }
    }

    /// Lists the merged directory `info` (its top inode `top`).
    fn merge(&self, info: &NodeInfo, top: &Inode) -> Result<Listing> {
        // Names decided by an upper layer: shown, whited out or deleted.
        let mut decided: HashSet<Vec<u8>> = HashSet::new();
        let mut entries = Vec::new();
        for (k, p) in info.parts.iter().enumerate() {
            let img = &self.layers[p.layer];
            let ctx = |e| self.in_layer(p.layer, e);
            let loaded;
            let dir = if k == 0 {
                top
            } else {
                loaded = self.inode(*p)?;
                &loaded
            };
            let mut deleted = Vec::new();
            for e in img.read_dir(dir).map_err(ctx)? {
                let e = e.map_err(ctx)?;
                if whiteout::is_oci_name(&e.name) {
                    if let Some(t) = whiteout::oci_target(&e.name) {
                        deleted.push(t.to_vec());
                    }
                    continue;
                }
                if decided.contains(&e.name) {
                    continue;
                }
                decided.insert(e.name.clone());
                if whiteout::entry_may_be_whiteout(e.file_type) {
                    let i = img.entry_inode(&e).map_err(ctx)?;
                    if self.is_whiteout(p.layer, &i)? {
                        continue;
                    }
                }
                entries.push(Entry {
                    id: Self::id_for(p.layer, e.inode_number),
                    layer: p.layer,
                    dirent: e,
                });
            }
            decided.extend(deleted);
        }
        entries.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(Listing {
            parent: info.parent,
            entries,
        })
    }
}

impl View for LayeredView {
    fn layers(&self) -> &[Arc<Image>] {
        &self.layers
    }

    fn node(&self, id: u64) -> Result<Node> {
        let info = self.info(id)?;
        let inode = self.inode(info.parts[0])?;
        Ok(self.make_node(id, &info, inode))
    }

    fn lookup(&self, dir: &Node, name: &[u8]) -> Result<Option<Node>> {
        if whiteout::is_oci_name(name) {
            return Ok(None);
        }
        if !dir.inode.is_dir() {
            return Err(Error::invalid(format!(
                "node {} is not a directory",
                dir.id
            )));
        }
        let info = self.info(dir.id)?;
        let Some((parts, top)) = self.resolve(&info.parts, &dir.inode, name)? else {
            return Ok(None);
        };
        let id = Self::id_for(parts[0].layer, top.number);
        let info = self.register(id, dir.id, parts);
        Ok(Some(self.make_node(id, &info, top)))
    }

    fn list(&self, dir: &Node) -> Result<Arc<Listing>> {
        if let Some(l) = self.cache_get(dir.id) {
            return Ok(l);
        }
        if !dir.inode.is_dir() {
            return Err(Error::invalid(format!(
                "node {} is not a directory",
                dir.id
            )));
        }
        let info = self.info(dir.id)?;
        let listing = Arc::new(self.merge(&info, &dir.inode)?);
        self.cache_put(dir.id, listing.clone());
        Ok(listing)
    }

    fn entry_node(&self, dir: u64, e: &Entry) -> Result<Node> {
        if e.dirent.file_type == crate::format::inode::FileType::Dir {
            // Which layers merge into it takes a lookup.
            let d = self.node(dir)?;
            return self
                .lookup(&d, e.name())?
                .ok_or_else(|| Error::not_found("the entry is gone from its directory"));
        }
        let img = &self.layers[e.layer];
        let i = img
            .entry_inode(&e.dirent)
            .map_err(|err| self.in_layer(e.layer, err))?;
        let part = Part {
            layer: e.layer,
            at: e.dirent.inode_ref,
        };
        let info = self.register(e.id, dir, vec![part]);
        Ok(self.make_node(e.id, &info, i))
    }

    fn xattrs(&self, n: &Node) -> Result<Vec<Xattr>> {
        let mut all = self.raw_xattrs(n.layer, &n.inode)?;
        all.retain(|x| !whiteout::is_overlay_private(&x.name));
        Ok(all)
    }
}
