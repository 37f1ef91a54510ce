//! The tree a tar stream is read into: one slot per path, children by
//! name, later members replacing earlier ones, and the finished tree built
//! from what is still reachable.

use super::super::scan::{Kind, Name, SourceFile, TreeNode};
use std::collections::BTreeMap;

pub(super) struct Slot {
    pub(super) node: TreeNode,
    pub(super) children: BTreeMap<Vec<u8>, usize>,
    /// The layer that last placed this entry or something below it.
    pub(super) layer: u32,
    /// A directory no member named, made for members below it.
    pub(super) made: bool,
}

pub(super) fn implicit_dir(name: &[u8]) -> TreeNode {
    TreeNode {
        name: Name::from_slice(name),
        perm: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
        xattrs: Vec::new(),
        link: None,
        kind: Kind::Dir(Vec::new()),
    }
}

pub(super) fn lookup_comps(slots: &[Slot], comps: &[&[u8]]) -> Option<usize> {
    let mut at = 0;
    for c in comps {
        at = *slots[at].children.get(*c)?;
    }
    Some(at)
}

pub(super) fn lookup(slots: &[Slot], path: &[u8]) -> Option<usize> {
    let mut at = 0;
    for c in path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
    {
        at = *slots[at].children.get(c)?;
    }
    Some(at)
}

/// Puts `node` at `comps`, creating missing parents; a later member for the
/// same path replaces the earlier one (a directory keeps its children).
/// Every slot on the way is marked as touched by `layer`. Returns the slot.
pub(super) fn place(slots: &mut Vec<Slot>, comps: &[&[u8]], node: TreeNode, layer: u32) -> usize {
    slots[0].layer = layer;
    if comps.is_empty() {
        // An entry for the root itself ("./"): its attributes apply to the root.
        if matches!(node.kind, Kind::Dir(_)) {
            let name = std::mem::take(&mut slots[0].node.name);
            slots[0].node = TreeNode { name, ..node };
            slots[0].made = false;
        }
        return 0;
    }
    let mut at = 0;
    for c in &comps[..comps.len() - 1] {
        at = match slots[at].children.get(*c).copied() {
            Some(i) if matches!(slots[i].node.kind, Kind::Dir(_)) => i,
            old => {
                let i = occupy(slots, at, c, old, implicit_dir(c), layer);
                slots[i].made = true;
                i
            }
        };
        slots[at].layer = layer;
    }
    let name = comps[comps.len() - 1];
    match slots[at].children.get(name).copied() {
        Some(i)
            if matches!(slots[i].node.kind, Kind::Dir(_)) && matches!(node.kind, Kind::Dir(_)) =>
        {
            slots[i].node = node;
            slots[i].layer = layer;
            slots[i].made = false;
            i
        }
        old => occupy(slots, at, name, old, node, layer),
    }
}

/// Puts `node` (with no children) under `parent` as `name`: in the slot of
/// the entry it replaces, `old`, if there is one (nothing else refers to a
/// slot, so a name flipping between file and directory a million times
/// costs one), else in a new slot. Returns the slot.
pub(super) fn occupy(
    slots: &mut Vec<Slot>,
    parent: usize,
    name: &[u8],
    old: Option<usize>,
    node: TreeNode,
    layer: u32,
) -> usize {
    let slot = Slot {
        node,
        children: BTreeMap::new(),
        layer,
        made: false,
    };
    match old {
        Some(i) => {
            slots[i] = slot;
            i
        }
        None => {
            slots.push(slot);
            let i = slots.len() - 1;
            slots[parent].children.insert(name.to_vec(), i);
            i
        }
    }
}

/// The parent slot of `comps` and the last name, if the parent exists.
pub(super) fn parent_slot<'c>(slots: &[Slot], comps: &[&'c [u8]]) -> Option<(usize, &'c [u8])> {
    let (name, dirs) = comps.split_last()?;
    let mut at = 0;
    for c in dirs {
        at = *slots[at].children.get(*c)?;
    }
    Some((at, name))
}

/// Tree-wide renumbering once the tree is final: only the files still
/// named are kept (in the order they were read), and hard-link groups are
/// counted from the names left (a group of one is no group).
pub(super) fn compact(
    root: &mut TreeNode,
    files: &[SourceFile],
    groups: usize,
) -> (Vec<SourceFile>, Vec<u32>) {
    let mut used = vec![false; files.len()];
    let mut names = vec![0u32; groups];
    let mut stack: Vec<&TreeNode> = vec![root];
    while let Some(n) = stack.pop() {
        match &n.kind {
            Kind::Dir(children) => stack.extend(children.iter()),
            Kind::File { file } => used[*file] = true,
            _ => {}
        }
        if let Some(g) = n.link {
            names[g] += 1;
        }
    }
    let mut file_map = vec![usize::MAX; files.len()];
    let mut kept = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if used[i] {
            file_map[i] = kept.len();
            kept.push(f.clone());
        }
    }
    let mut group_map = vec![None; groups];
    let mut links = Vec::new();
    for (g, &n) in names.iter().enumerate() {
        if n > 1 {
            group_map[g] = Some(links.len());
            links.push(n);
        }
    }
    let mut stack: Vec<&mut TreeNode> = vec![root];
    while let Some(n) = stack.pop() {
        n.link = n.link.and_then(|g| group_map[g]);
        match &mut n.kind {
            Kind::Dir(children) => stack.extend(children.iter_mut()),
            Kind::File { file } => *file = file_map[*file],
            _ => {}
        }
    }
    (kept, links)
}

pub(super) fn build(slots: &[Slot], at: usize) -> TreeNode {
    let mut n = slots[at].node.clone();
    if let Kind::Dir(_) = n.kind {
        n.kind = Kind::Dir(
            slots[at]
                .children
                .values()
                .map(|&c| super::super::with_stack(|| build(slots, c)))
                .collect(),
        );
    }
    n
}
