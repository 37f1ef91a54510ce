//! Grafting pseudo definitions onto a gathered tree, with mksquashfs's
//! rules: a definition naming an entry the source has is ignored with a
//! warning (`m` changes it instead); a missing parent directory is fatal
//! unless `-pd` gives one; the source's owners and modes options apply to
//! pseudo entries unless `-pseudo-override`.

use super::{Attrs, Content, Definition, Entry, PseudoDefs};
use crate::format::dir::{MAX_DEPTH, MAX_NAME};
use crate::format::xattr::Xattr;
use crate::pack::scan::{device_number, Kind, Name, SourceFile, Tree, TreeNode};
use crate::pack::{PackError, PackOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

/// The definitions as a tree of names, as mksquashfs gathers them before
/// merging (so a parent may be defined after its children).
#[derive(Default)]
struct PNode<'a> {
    def: Option<&'a Definition>,
    xattrs: Vec<&'a Xattr>,
    children: BTreeMap<&'a [u8], PNode<'a>>,
}

fn shown(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

fn components(d: &Definition) -> Result<Vec<&[u8]>, PackError> {
    let parts: Vec<&[u8]> = d
        .path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    if parts.len() > MAX_DEPTH {
        return Err(PackError::Usage(format!(
            "pseudo definition {}: deeper than {MAX_DEPTH} directories",
            d.origin
        )));
    }
    if let Some(bad) = parts
        .iter()
        .find(|c| c.len() > MAX_NAME || **c == b"." || **c == b"..")
    {
        return Err(PackError::Usage(format!(
            "pseudo definition {}: {:?} cannot be a name in the image",
            d.origin,
            String::from_utf8_lossy(bad)
        )));
    }
    Ok(parts)
}

fn gather<'a>(defs: &'a PseudoDefs, warnings: &mut Vec<String>) -> Result<PNode<'a>, PackError> {
    let mut root = PNode::default();
    for d in &defs.defs {
        if matches!(d.entry, Entry::PseudoLink(_)) {
            continue; // linked once everything else is in place
        }
        let parts = components(d)?;
        // A parent already defined as something other than a directory?
        let mut look = &root;
        let mut blocked = None;
        for (i, c) in parts.iter().enumerate().take(parts.len().saturating_sub(1)) {
            let Some(next) = look.children.get(c) else {
                break;
            };
            if next
                .def
                .is_some_and(|p| !matches!(p.entry, Entry::Dir(_) | Entry::Modify(_)))
            {
                blocked = Some(i);
                break;
            }
            look = next;
        }
        if let Some(i) = blocked {
            warnings.push(format!(
                "pseudo definition {}: {} is defined as a non-directory; ignored",
                d.origin,
                shown(&parts[..=i].join(&b'/'))
            ));
            continue;
        }
        let mut at = &mut root;
        for c in &parts {
            at = at.children.entry(c).or_default();
        }
        match &d.entry {
            Entry::Xattr(x) => at.xattrs.push(x),
            _ if parts.is_empty() && !matches!(d.entry, Entry::Dir(_)) => warnings.push(format!(
                "pseudo definition {}: / is not a directory definition; ignored",
                d.origin
            )),
            _ if parts.is_empty() => at.def = Some(d), // the last root wins
            _ => match at.def {
                Some(old) => warnings.push(format!(
                    "pseudo definition {}: {} is already defined at {}; ignored",
                    d.origin,
                    shown(&d.path),
                    old.origin
                )),
                None if !at.children.is_empty()
                    && !matches!(d.entry, Entry::Dir(_) | Entry::Modify(_)) =>
                {
                    warnings.push(format!(
                        "pseudo definition {}: {} has pseudo entries below it, so it must be a directory; ignored",
                        d.origin,
                        shown(&d.path)
                    ))
                }
                None => at.def = Some(d),
            },
        }
    }
    Ok(root)
}

/// A directory's pseudo children still to merge, the index path from the
/// root to that directory, and its path.
type Frame<'p> = (
    std::collections::btree_map::Iter<'p, &'p [u8], PNode<'p>>,
    Vec<usize>,
    Vec<u8>,
);

/// What applying needs besides the tree.
struct Ctx<'a> {
    opts: &'a PackOptions,
    defs: &'a PseudoDefs,
    /// The time of a definition without one.
    now: u32,
    spool_path: &'a Path,
    spool: Option<(std::fs::File, Arc<Path>, u64)>,
    newest: u32,
}

impl Ctx<'_> {
    fn time(&mut self, t: Option<u32>) -> u32 {
        let t = match t {
            Some(t) => {
                let t = self.clamp(t);
                self.newest = self.newest.max(t);
                return t;
            }
            None => self.now,
        };
        self.clamp(t)
    }

    fn clamp(&self, t: u32) -> u32 {
        match (self.opts.all_time, self.opts.source_date_epoch) {
            (Some(a), _) => a,
            (None, Some(sde)) => t.min(sde),
            (None, None) => t,
        }
    }

    /// The owner, group and permissions an entry gets: the global options
    /// win over a definition's unless `-pseudo-override`.
    fn owned(&self, perm: u16, uid: u32, gid: u32, is_dir: bool) -> (u16, u32, u32) {
        if self.defs.override_globals {
            return (perm, uid, gid);
        }
        let o = self.opts;
        let (uid, gid) = if o.all_root { (0, 0) } else { (uid, gid) };
        let change = if is_dir { &o.dir_mode } else { &o.file_mode };
        let perm = change.as_ref().map_or(perm, |c| c.apply(perm, is_dir));
        (perm, o.force_uid.unwrap_or(uid), o.force_gid.unwrap_or(gid))
    }

    fn node(&mut self, name: &[u8], a: &Attrs, kind: Kind) -> TreeNode {
        let is_dir = matches!(kind, Kind::Dir(_));
        let (perm, uid, gid) = self.owned(a.perm, a.uid, a.gid, is_dir);
        TreeNode {
            name: Name::from_slice(name),
            perm,
            uid,
            gid,
            mtime: self.time(a.mtime),
            xattrs: Vec::new(),
            link: None,
            kind,
        }
    }

    /// Runs `command`, its output appended to the spool: where it is.
    fn run(&mut self, command: &[u8], d: &Definition) -> Result<SourceFile, PackError> {
        if self.spool.is_none() {
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(self.spool_path)
                .map_err(|e| PackError::io(self.spool_path, "create", e))?;
            self.spool = Some((f, Arc::from(self.spool_path), 0));
        }
        let (spool, shared, end) = self.spool.as_mut().expect("just made");
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(command))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| PackError::io(Path::new("/bin/sh"), "run", e))?;
        let mut out = child.stdout.take().expect("piped");
        let n = std::io::copy(&mut out, spool).map_err(|e| PackError::io(shared, "write", e))?;
        let status = child
            .wait()
            .map_err(|e| PackError::io(Path::new("/bin/sh"), "wait for", e))?;
        if !status.success() {
            return Err(PackError::entry(
                shown(&d.path),
                format!(
                    "pseudo command {:?} ({}) failed: {status}",
                    String::from_utf8_lossy(command),
                    d.origin
                ),
            ));
        }
        spool
            .flush()
            .map_err(|e| PackError::io(shared, "write", e))?;
        let at = *end;
        *end += n;
        Ok(SourceFile::in_spool(shared.clone(), at, n))
    }
}

fn is_dir(n: &TreeNode) -> bool {
    matches!(n.kind, Kind::Dir(_))
}

fn children(n: &mut TreeNode) -> &mut Vec<TreeNode> {
    match &mut n.kind {
        Kind::Dir(c) => c,
        _ => unreachable!("callers check is_dir"),
    }
}

fn find(dir: &[TreeNode], name: &[u8]) -> Result<usize, usize> {
    dir.binary_search_by(|c| c.name.as_slice().cmp(name))
}

/// Applies `defs` to `tree` (file data made by commands goes to
/// `spool_path`, created if needed). `repro`: a definition without a time
/// takes the newest inode's (mksquashfs's `-repro`), else the clock's.
pub fn apply(
    tree: &mut Tree,
    defs: &PseudoDefs,
    opts: &PackOptions,
    spool_path: &Path,
) -> Result<(), PackError> {
    let mut warnings = Vec::new();
    let pseudo = gather(defs, &mut warnings)?;
    let repro = opts.mkfs_time.is_none() && opts.source_date_epoch.is_none();
    let now = if repro {
        tree.newest_mtime
    } else {
        crate::pack::now()
    };
    let mut cx = Ctx {
        opts,
        defs,
        now,
        spool_path,
        spool: None,
        newest: tree.newest_mtime,
    };
    if !pseudo.xattrs.is_empty() && !opts.no_xattrs {
        tree.root.xattrs = pseudo.xattrs.iter().map(|x| (*x).clone()).collect();
        tree.root.xattrs.sort();
        tree.root.xattrs.dedup_by(|a, b| a.name == b.name);
    }
    // An explicit walk (no recursion on the definitions' depth): each
    // frame is a directory's pseudo children still to merge, and the
    // path of indices from the root to that directory.
    let mut stack: Vec<Frame> = vec![(pseudo.children.iter(), Vec::new(), Vec::new())];
    while let Some((iter, at, path)) = stack.last_mut() {
        let Some((name, pn)) = iter.next() else {
            stack.pop();
            continue;
        };
        let (at, parent_path) = (at.clone(), path.clone());
        let mut here = parent_path.clone();
        if !here.is_empty() {
            here.push(b'/');
        }
        here.extend_from_slice(name);
        let dir = node_at(&mut tree.root, &at);
        let list = children(dir);
        let found = find(list, name);
        let index = match (found, pn.def.map(|d| &d.entry)) {
            (Ok(i), None) => {
                if !pn.children.is_empty() && !is_dir(&list[i]) {
                    return Err(not_a_dir(&here));
                }
                Some(i)
            }
            (Err(slot), None) => {
                if pn.children.is_empty() {
                    warnings.push(format!(
                        "pseudo xattr for {}: no such entry; ignored",
                        shown(&here)
                    ));
                    None
                } else if let Some(a) = defs.default_dir {
                    let n = cx.node(name, &a, Kind::Dir(Vec::new()));
                    children(node_at(&mut tree.root, &at)).insert(slot, n);
                    Some(slot)
                } else {
                    return Err(PackError::Usage(format!(
                        "pathname {} does not exist in the filesystem, so pseudo definitions below it cannot be made (give it a definition, or -pd)",
                        shown(&here)
                    )));
                }
            }
            (Ok(i), Some(Entry::Modify(a))) => {
                if !pn.children.is_empty() && !is_dir(&list[i]) {
                    return Err(not_a_dir(&here));
                }
                let n = &mut list[i];
                let (perm, uid, gid) = cx.owned(a.perm, a.uid, a.gid, is_dir(n));
                (n.perm, n.uid, n.gid) = (perm, uid, gid);
                if a.mtime.is_some() {
                    n.mtime = cx.time(a.mtime);
                }
                Some(i)
            }
            (Err(_), Some(Entry::Modify(_))) => {
                if !pn.children.is_empty() {
                    return Err(PackError::Usage(format!(
                        "pseudo modify pathname {} does not exist in the filesystem",
                        shown(&here)
                    )));
                }
                warnings.push(format!(
                    "pseudo modify {} ({}): no such entry in the source; ignored",
                    shown(&here),
                    pn.def.map_or("", |d| &d.origin)
                ));
                None
            }
            (Ok(i), Some(_)) => {
                warnings.push(format!(
                    "pseudo file {} ({}) exists in the source; ignored, exclude it (-e/-ef) to replace it",
                    shown(&here),
                    pn.def.map_or("", |d| &d.origin)
                ));
                if !pn.children.is_empty() && !is_dir(&list[i]) {
                    return Err(not_a_dir(&here));
                }
                Some(i)
            }
            (Err(slot), Some(_)) => {
                let d = pn.def.expect("matched Some");
                let n = make(&mut cx, tree, name, d)?;
                let made_dir = is_dir(&n);
                children(node_at(&mut tree.root, &at)).insert(slot, n);
                if !made_dir && !pn.children.is_empty() {
                    return Err(not_a_dir(&here));
                }
                Some(slot)
            }
        };
        let Some(i) = index else { continue };
        if !pn.xattrs.is_empty() && !opts.no_xattrs {
            let n = &mut children(node_at(&mut tree.root, &at))[i];
            for x in &pn.xattrs {
                n.xattrs.retain(|o| o.name != x.name);
                n.xattrs.push((*x).clone());
            }
            n.xattrs.sort();
        }
        if !pn.children.is_empty() {
            let mut down = at;
            down.push(i);
            stack.push((pn.children.iter(), down, here));
        }
    }
    for d in &defs.defs {
        if let Entry::PseudoLink(target) = &d.entry {
            link_pseudo(tree, defs, d, target)?;
        }
    }
    if let Some((f, _, _)) = &cx.spool {
        f.sync_data().ok();
    }
    tree.newest_mtime = cx.newest;
    tree.warnings.extend(warnings);
    Ok(())
}

fn not_a_dir(path: &[u8]) -> PackError {
    PackError::Usage(format!(
        "pathname {} is not a directory, so pseudo definitions below it cannot be made",
        shown(path)
    ))
}

/// The directory at `path` (indices from the root); callers only pass
/// paths of directories they walked.
fn node_at<'t>(root: &'t mut TreeNode, path: &[usize]) -> &'t mut TreeNode {
    let mut n = root;
    for &i in path {
        n = &mut children(n)[i];
    }
    n
}

/// A new entry from definition `d`.
fn make(cx: &mut Ctx, tree: &mut Tree, name: &[u8], d: &Definition) -> Result<TreeNode, PackError> {
    let entry_path = shown(&d.path);
    Ok(match &d.entry {
        Entry::Dir(a) => cx.node(name, a, Kind::Dir(Vec::new())),
        Entry::File(a, content) => {
            let source = match content {
                Content::Command(c) => cx.run(c, d)?,
                Content::Data {
                    file,
                    offset,
                    length,
                    sparse,
                } => {
                    let mut f = SourceFile::in_spool(file.clone(), *offset, *length);
                    f.report_sparse = *sparse;
                    f
                }
                Content::Path(p) => {
                    let m = std::fs::metadata(p).map_err(|e| PackError::io(p, "stat", e))?;
                    if !m.is_file() {
                        return Err(PackError::entry(
                            &entry_path,
                            format!("{} ({}) is not a regular file", p.display(), d.origin),
                        ));
                    }
                    let mut f = SourceFile::at(p, m.len());
                    f.report_sparse = m.blocks().saturating_mul(512) < m.len();
                    f
                }
            };
            tree.files.push(source);
            cx.node(
                name,
                a,
                Kind::File {
                    file: tree.files.len() - 1,
                },
            )
        }
        Entry::Symlink(a, t) => cx.node(name, a, Kind::Symlink(t.clone())),
        Entry::Device {
            attrs,
            block,
            major,
            minor,
        } => {
            let r = device_number(Path::new(&entry_path), *major, *minor)?;
            let kind = if *block {
                Kind::BlockDev(r)
            } else {
                Kind::CharDev(r)
            };
            cx.node(name, attrs, kind)
        }
        Entry::Ipc { attrs, socket } => {
            cx.node(name, attrs, if *socket { Kind::Socket } else { Kind::Fifo })
        }
        Entry::Link(p) => link_system(cx, tree, name, p)?,
        Entry::Modify(_) | Entry::Xattr(_) | Entry::PseudoLink(_) => {
            unreachable!("not made: handled by the caller")
        }
    })
}

/// `l`/`h`: the file at `p`, a hard link to it where the tree has it.
fn link_system(
    cx: &mut Ctx,
    tree: &mut Tree,
    name: &[u8],
    p: &Path,
) -> Result<TreeNode, PackError> {
    let m = std::fs::symlink_metadata(p).map_err(|e| PackError::io(p, "stat", e))?;
    let ft = m.file_type();
    if ft.is_file() {
        let same = tree.files.iter().position(|f| {
            f.size == m.len()
                && std::fs::symlink_metadata(f.path())
                    .is_ok_and(|o| (o.dev(), o.ino()) == (m.dev(), m.ino()))
        });
        if let Some(file) = same {
            if let Some(path) = find_file(&tree.root, file) {
                return Ok(hard_link(tree, &path, name));
            }
        }
    }
    let kind = if ft.is_file() {
        let mut f = SourceFile::at(p, m.len());
        f.report_sparse = m.blocks().saturating_mul(512) < m.len();
        tree.files.push(f);
        Kind::File {
            file: tree.files.len() - 1,
        }
    } else if ft.is_symlink() {
        let t = std::fs::read_link(p).map_err(|e| PackError::io(p, "read link", e))?;
        Kind::Symlink(t.as_os_str().as_bytes().to_vec())
    } else {
        use std::os::unix::fs::FileTypeExt;
        let r = || device_number(p, libc::major(m.rdev()), libc::minor(m.rdev()));
        if ft.is_block_device() {
            Kind::BlockDev(r()?)
        } else if ft.is_char_device() {
            Kind::CharDev(r()?)
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        }
    };
    let a = Attrs {
        perm: (m.mode() & 0o7777) as u16,
        uid: m.uid(),
        gid: m.gid(),
        mtime: Some(m.mtime().clamp(0, i64::from(u32::MAX)) as u32),
    };
    Ok(cx.node(name, &a, kind))
}

/// The index path of the node holding file `file`.
fn find_file(root: &TreeNode, file: usize) -> Option<Vec<usize>> {
    // Depth-first with an explicit stack of (node, path).
    let mut stack = vec![(root, Vec::new())];
    while let Some((n, path)) = stack.pop() {
        match &n.kind {
            Kind::File { file: f } if *f == file => return Some(path),
            Kind::Dir(c) => {
                for (i, ch) in c.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i);
                    stack.push((ch, p));
                }
            }
            _ => {}
        }
    }
    None
}

/// A new name `name` for the node at `path`: both in one hard-link group.
fn hard_link(tree: &mut Tree, path: &[usize], name: &[u8]) -> TreeNode {
    let next = tree.links.len();
    let (parent, last) = path.split_at(path.len() - 1);
    let target = &mut children(node_at(&mut tree.root, parent))[last[0]];
    let group = *target.link.get_or_insert(next);
    if group == next {
        tree.links.push(1);
    }
    tree.links[group] += 1;
    let mut n = target.clone();
    n.name = Name::from_slice(name);
    n
}

/// `NAME L TARGET`: a hard link to an entry another definition made.
fn link_pseudo(
    tree: &mut Tree,
    defs: &PseudoDefs,
    d: &Definition,
    target: &[u8],
) -> Result<(), PackError> {
    let fail = |what: &str| PackError::Usage(format!("pseudo definition {}: {what}", d.origin));
    let defined = defs.defs.iter().any(|o| {
        o.path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .eq(target.split(|&b| b == b'/').filter(|c| !c.is_empty()))
            && !matches!(
                o.entry,
                Entry::Modify(_) | Entry::Xattr(_) | Entry::PseudoLink(_)
            )
    });
    if !defined {
        return Err(fail(&format!(
            "link target {} is not a pseudo file",
            shown(target)
        )));
    }
    let walk = |tree: &Tree, parts: &[&[u8]]| -> Option<Vec<usize>> {
        let mut n = &tree.root;
        let mut path = Vec::new();
        for c in parts {
            let Kind::Dir(list) = &n.kind else {
                return None;
            };
            let i = find(list, c).ok()?;
            path.push(i);
            n = &list[i];
        }
        Some(path)
    };
    let tparts: Vec<&[u8]> = target
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let tpath = walk(tree, &tparts).ok_or_else(|| {
        fail(&format!(
            "link target {} is not in the image",
            shown(target)
        ))
    })?;
    {
        let (p, l) = tpath.split_at(tpath.len() - 1);
        if is_dir(&children(node_at(&mut tree.root, p))[l[0]]) {
            return Err(fail("cannot hard-link to a pseudo directory"));
        }
    }
    let parts = components(d)?;
    let Some((name, parent)) = parts.split_last() else {
        return Err(fail("the root cannot be a link"));
    };
    let ppath = walk(tree, parent).ok_or_else(|| fail("its parent directory does not exist"))?;
    if !is_dir(node_at(&mut tree.root, &ppath)) {
        return Err(not_a_dir(&d.path));
    }
    if find(children(node_at(&mut tree.root, &ppath)), name).is_ok() {
        tree.warnings.push(format!(
            "pseudo file {} ({}) exists in the source; ignored",
            shown(&d.path),
            d.origin
        ));
        return Ok(());
    }
    let n = hard_link(tree, &tpath, name);
    let list = children(node_at(&mut tree.root, &ppath));
    let slot = find(list, name).unwrap_err();
    list.insert(slot, n);
    Ok(())
}
