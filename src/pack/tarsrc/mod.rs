//! `pack --tar`: a tar stream (ustar, gnu, pax; long names, sparse members,
//! pax xattrs, hard links, devices) read into the same tree a directory
//! scan gives. File data is spooled to a temporary file, holes kept as
//! holes, and each file becomes a [`SourceFile`] at an offset in it.

use super::compression::StreamCompression;
use super::scan::{device_number, Kind, Name, SourceFile, Tree, TreeNode};
use super::tarstream::{kind, Data, TarStream};
use super::{PackError, PackOptions};
use crate::format::dir::{MAX_DEPTH, MAX_NAME};
use crate::format::xattr::{Namespace, Xattr};
use crate::whiteout::{self, Convention};
use base64::Engine;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

mod pax;
mod slots;

use pax::{parse_num, pax_sparse, percent_decode, read_map_1_0, SparseMap};
use slots::{build, compact, implicit_dir, lookup, lookup_comps, parent_slot, place, Slot};

/// Copies `n` bytes from `r` into `spool` at its current end, seeking over
/// all-zero 64 KiB runs so holes stay holes.
fn spool_copy(r: &mut impl Read, spool: &mut File, at: u64, n: u64) -> std::io::Result<()> {
    spool.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = n;
    while left > 0 {
        let k = (buf.len() as u64).min(left) as usize;
        r.read_exact(&mut buf[..k])?;
        if buf[..k].iter().all(|&b| b == 0) {
            spool.seek(SeekFrom::Current(k as i64))?;
        } else {
            spool.write_all(&buf[..k])?;
        }
        left -= k as u64;
    }
    Ok(())
}

/// What to do with whiteouts met in a layer (see [`crate::whiteout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Store them as they are.
    Keep,
    /// Store them in overlayfs form (devices 0/0, `trusted.overlay.opaque`).
    ToOverlay,
    /// Store them in OCI form (`.wh.NAME`, `.wh..wh..opq`).
    ToOci,
    /// Apply them to the layers read before (flattening a stack).
    Apply,
}

impl From<Convention> for Whiteouts {
    fn from(c: Convention) -> Self {
        match c {
            Convention::Keep => Self::Keep,
            Convention::Overlay => Self::ToOverlay,
            Convention::Oci => Self::ToOci,
        }
    }
}

/// The tree of one or more tar streams read one after another (a layer
/// stack, bottom first), their file data spooled to one file.
pub struct TarTree<'a> {
    slots: Vec<Slot>,
    files: Vec<SourceFile>,
    links: Vec<u32>,
    warnings: Vec<String>,
    spool: File,
    spool_end: u64,
    /// The spool file's path, shared by every file's [`SourceFile`].
    spool_shared: std::sync::Arc<Path>,
    image: &'a Path,
    opts: &'a PackOptions,
    layer: u32,
    /// Bytes of xattr names and values held by the members read so far.
    xattr_bytes: u64,
    /// Counts the members read, for a progress display.
    pub entries_seen: Option<&'a AtomicU64>,
    /// Members left out by path (mksquashfs's and sqfstar's excludes).
    excludes: super::exclude::Excludes,
}

/// Linux's limits on one xattr value and on a file's xattr names.
const XATTR_SIZE_MAX: usize = 64 << 10;
const XATTR_LIST_MAX: usize = 64 << 10;
/// Most xattr bytes (names and values, over all members) a tar stream
/// may bring.
const MAX_XATTR_BYTES: u64 = 1 << 30;

/// One tar stream into a tree, its whiteouts handled as `mode` says.
pub fn read_tar(
    input: impl Read,
    archive: &Path,
    spool_path: &Path,
    image: &Path,
    opts: &PackOptions,
    mode: Whiteouts,
    entries: &AtomicU64,
) -> Result<Tree, PackError> {
    let mut t = TarTree::new(spool_path, image, opts)?;
    t.entries_seen = Some(entries);
    let input = decompressed(input, archive)?;
    t.add_layer(input, archive, mode)?;
    t.finish()
}

/// `input`, decompressed as its first bytes say (so `.tgz` and a
/// compressed standard input need no option), streaming.
fn decompressed<'a>(
    input: impl Read + 'a,
    archive: &Path,
) -> Result<Box<dyn Read + 'a>, PackError> {
    let mut r = std::io::BufReader::with_capacity(1 << 16, input);
    let head = std::io::BufRead::fill_buf(&mut r).map_err(|e| PackError::io(archive, "read", e))?;
    StreamCompression::sniff(head)
        .decoder(r)
        .map_err(|e| PackError::io(archive, "read", e))
}

impl<'a> TarTree<'a> {
    pub fn new(
        spool_path: &'a Path,
        image: &'a Path,
        opts: &'a PackOptions,
    ) -> Result<Self, PackError> {
        let spool = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(spool_path)
            .map_err(|source| PackError::Output {
                path: image.to_path_buf(),
                source,
            })?;
        Ok(TarTree {
            slots: vec![Slot {
                node: implicit_dir(b""),
                children: BTreeMap::new(),
                layer: 0,
                made: true,
            }],
            files: Vec::new(),
            links: Vec::new(),
            warnings: Vec::new(),
            spool,
            spool_end: 0,
            spool_shared: spool_path.into(),
            image,
            opts,
            layer: 0,
            xattr_bytes: 0,
            entries_seen: None,
            excludes: super::exclude::Excludes::build(&opts.excludes)?,
        })
    }

    /// Checks one member's xattrs against what Linux can hold (a value of
    /// at most 64 KiB, names of at most 64 KiB together) and the archive's
    /// against [`MAX_XATTR_BYTES`]: each node keeps its own copy, and a
    /// global pax header may give the same large set to every member.
    fn count_xattrs(&mut self, member: &Path, xattrs: &[Xattr]) -> Result<(), PackError> {
        let mut names = 0usize;
        for x in xattrs {
            if x.value.len() > XATTR_SIZE_MAX {
                return Err(PackError::entry(
                    member,
                    format!(
                        "xattr {} holds {} bytes, more than Linux allows ({XATTR_SIZE_MAX})",
                        String::from_utf8_lossy(&x.name),
                        x.value.len()
                    ),
                ));
            }
            names += x.name.len() + 1;
        }
        if names > XATTR_LIST_MAX {
            return Err(PackError::entry(
                member,
                format!(
                    "xattr names take {names} bytes, more than Linux allows ({XATTR_LIST_MAX})"
                ),
            ));
        }
        let bytes: usize = xattrs.iter().map(|x| x.name.len() + x.value.len()).sum();
        self.xattr_bytes = self.xattr_bytes.saturating_add(bytes as u64);
        if self.xattr_bytes > MAX_XATTR_BYTES {
            return Err(PackError::entry(
                member,
                format!(
                    "the archive's xattrs exceed {} MiB, the most sqfuse packs",
                    MAX_XATTR_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    /// The spool is part of the output: its errors name the image.
    fn spool_err(&self, source: std::io::Error) -> PackError {
        PackError::Output {
            path: self.image.to_path_buf(),
            source,
        }
    }

    /// Reads one tar stream (one layer) over what was read before; stops at
    /// the archive's end marker (the caller drains what follows, if needed).
    pub fn add_layer(
        &mut self,
        input: impl Read,
        archive: &Path,
        mode: Whiteouts,
    ) -> Result<(), PackError> {
        let mut ar = TarStream::new(input);
        self.layer += 1;
        let opts = self.opts;
        let terr = |e: std::io::Error| PackError::io(archive, "read the tar stream", e);
        while let Some(m) = ar.next_member().map_err(terr)? {
            if let Some(n) = self.entries_seen {
                n.fetch_add(1, Ordering::Relaxed);
            }
            let get = |k: &str| m.pax_value(k);
            let sparse = match &m.gnu_sparse {
                Some((runs, real_size)) => Some(SparseMap {
                    runs: runs.clone(),
                    real_size: *real_size,
                    name: None,
                    map_in_data: false,
                }),
                None => pax_sparse(&m),
            };
            let mut path = m.path.clone();
            if let Some(n) = sparse.as_ref().and_then(|s| s.name.clone()) {
                path = n;
            }
            let comps: Vec<&[u8]> = path
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b".")
                .collect();
            let member = PathBuf::from(OsStr::from_bytes(&path));
            // An excluded path takes everything below it along (its data
            // is skipped with the member).
            if !self.excludes.no_path_rules() && comps.len() <= MAX_DEPTH {
                let mut prefix = PathBuf::new();
                let excluded = comps.iter().any(|c| {
                    prefix.push(OsStr::from_bytes(c));
                    self.excludes.by_path(&prefix)
                });
                if excluded {
                    continue;
                }
            }
            if comps.iter().any(|c| *c == b"..") {
                return Err(PackError::entry(&member, "tar member climbs out with '..'"));
            }
            if comps.len() > MAX_DEPTH {
                return Err(PackError::entry(
                    &member,
                    format!("tar member is nested deeper than {MAX_DEPTH} directories, the most sqfuse packs"),
                ));
            }
            if comps.iter().any(|c| c.len() > MAX_NAME) {
                return Err(PackError::entry(
                    &member,
                    format!("tar member has a name longer than {MAX_NAME} bytes"),
                ));
            }
            let mtime_raw = get("mtime").and_then(parse_num).unwrap_or(m.mtime);
            let clamped = mtime_raw.clamp(0, i64::from(u32::MAX)) as u32;
            if i64::from(clamped) != mtime_raw {
                self.warnings.push(format!(
                    "{}: mtime {mtime_raw} clamped to {clamped}",
                    String::from_utf8_lossy(&path)
                ));
            }
            let mut mtime = opts.all_time.unwrap_or(clamped);
            if opts.all_time.is_none() {
                if let Some(sde) = opts.source_date_epoch {
                    mtime = mtime.min(sde);
                }
            }
            let num = |k: &str, fallback: u64| {
                get(k)
                    .and_then(parse_num)
                    .map_or(fallback, |n| n.max(0) as u64)
            };
            let uid = u32::try_from(num("uid", m.uid)).unwrap_or(u32::MAX);
            let gid = u32::try_from(num("gid", m.gid)).unwrap_or(u32::MAX);
            let (uid, gid) = if opts.all_root { (0, 0) } else { (uid, gid) };
            let mut xattrs: Vec<Xattr> = Vec::new();
            if !opts.no_xattrs {
                for (k, v) in m.pax_records() {
                    let (name, value) = if let Some(n) = k.strip_prefix("SCHILY.xattr.") {
                        (n.as_bytes().to_vec(), v.clone())
                    } else if let Some(n) = k.strip_prefix("LIBARCHIVE.xattr.") {
                        let name = percent_decode(n);
                        // libarchive writes base64 without padding; accept either.
                        let engine = base64::engine::GeneralPurpose::new(
                            &base64::alphabet::STANDARD,
                            base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(
                                base64::engine::DecodePaddingMode::Indifferent,
                            ),
                        );
                        let value = engine
                            .decode(
                                v.iter()
                                    .copied()
                                    .filter(|b| !b.is_ascii_whitespace())
                                    .collect::<Vec<_>>(),
                            )
                            .map_err(|e| {
                                PackError::entry(&member, format!("{k}: bad base64 value: {e}"))
                            })?;
                        (name, value)
                    } else {
                        continue;
                    };
                    // A NUL cannot be in a name Linux stores (nor one the
                    // reader accepts back).
                    if Namespace::split(&name).is_some() && !name.contains(&0) {
                        xattrs.retain(|x| x.name != name);
                        xattrs.push(Xattr { name, value });
                    } else {
                        // Quoted: the name is anyone's bytes (control
                        // characters shown escaped, never sent to a terminal).
                        self.warnings.push(format!(
                            "{}: xattr {:?} cannot be stored in SquashFS",
                            crate::error::shorten(&String::from_utf8_lossy(&path)),
                            String::from_utf8_lossy(&name)
                        ));
                    }
                }
                xattrs.sort();
            }
            let perm = (m.mode & 0o7777) as u16;
            let rdev = || device_number(&member, m.devmajor, m.devminor);
            let mut link = None;
            let kind = match m.kind {
                kind::DIR | kind::GNU_DUMPDIR => Kind::Dir(Vec::new()),
                kind::SYMLINK => Kind::Symlink(m.link.clone()),
                kind::CHAR => Kind::CharDev(rdev()?),
                kind::BLOCK => Kind::BlockDev(rdev()?),
                kind::FIFO => Kind::Fifo,
                kind::HARD_LINK => {
                    let target = m.link.clone();
                    let Some(t) = lookup(&self.slots, &target) else {
                        return Err(PackError::entry(
                            &member,
                            format!(
                                "tar member links to {:?}, which comes nowhere before it",
                                String::from_utf8_lossy(&target)
                            ),
                        ));
                    };
                    if matches!(self.slots[t].node.kind, Kind::Dir(_)) {
                        return Err(PackError::entry(
                            &member,
                            "tar member hard-links a directory",
                        ));
                    }
                    let group = match self.slots[t].node.link {
                        Some(g) => g,
                        None => {
                            self.links.push(1);
                            self.slots[t].node.link = Some(self.links.len() - 1);
                            self.links.len() - 1
                        }
                    };
                    self.links[group] += 1;
                    link = Some(group);
                    // One inode: tar stores its xattrs on the first name
                    // only (GNU tar, libarchive), so the link shares them.
                    if xattrs.is_empty() {
                        xattrs = self.slots[t].node.xattrs.clone();
                    }
                    self.slots[t].node.kind.clone()
                }
                kind::REGULAR | kind::REGULAR_OLD | kind::CONTIGUOUS | kind::GNU_SPARSE => {
                    let start = self.spool_end;
                    let terr = |e: std::io::Error| PackError::io(&member, "read tar member", e);
                    let size = match &sparse {
                        Some(sm) => {
                            let mut data = Data(&mut ar);
                            let runs = if sm.map_in_data {
                                read_map_1_0(&mut data).map_err(terr)?.0
                            } else {
                                sm.runs.clone()
                            };
                            for (off, len) in runs {
                                if off.checked_add(len).is_none_or(|e| e > sm.real_size) {
                                    return Err(PackError::entry(
                                        &member,
                                        "tar member has a sparse run past the file size",
                                    ));
                                }
                                spool_copy(&mut data, &mut self.spool, start + off, len)
                                    .map_err(terr)?;
                            }
                            sm.real_size
                        }
                        None => {
                            let n = m.size;
                            spool_copy(&mut Data(&mut ar), &mut self.spool, start, n)
                                .map_err(terr)?;
                            n
                        }
                    };
                    self.spool_end = start
                        .checked_add(size)
                        .ok_or_else(|| PackError::entry(&member, "tar member size overflows"))?;
                    self.spool
                        .set_len(self.spool_end)
                        .map_err(|e| self.spool_err(e))?;
                    self.files
                        .push(SourceFile::in_spool(self.spool_shared.clone(), start, size));
                    Kind::File {
                        file: self.files.len() - 1,
                    }
                }
                other => {
                    self.warnings.push(format!(
                        "{}: tar member of type {:?} skipped",
                        String::from_utf8_lossy(&path),
                        char::from(other)
                    ));
                    continue;
                }
            };
            // After the hard-link case, which copies its target's set.
            self.count_xattrs(&member, &xattrs)?;
            let node = TreeNode {
                name: comps
                    .last()
                    .map(|c| Name::from_slice(c))
                    .unwrap_or_default(),
                perm,
                uid: opts.force_uid.unwrap_or(uid),
                gid: opts.force_gid.unwrap_or(gid),
                mtime,
                xattrs,
                link,
                kind,
            };
            if comps.is_empty() && !opts.tar_root_from_archive {
                continue; // the root is made, not taken from the archive
            }
            self.add(&comps, node, mode)?;
        }
        Ok(())
    }

    /// Places one member, handling whiteouts as `mode` says.
    fn add(
        &mut self,
        comps: &[&[u8]],
        mut node: TreeNode,
        mode: Whiteouts,
    ) -> Result<(), PackError> {
        let layer = self.layer;
        let Some((&name, parent)) = comps.split_last() else {
            place(&mut self.slots, comps, node, layer);
            return Ok(());
        };
        let is_dir = matches!(node.kind, Kind::Dir(_));
        let device_or_xattr_whiteout = match &node.kind {
            Kind::CharDev(0) => true,
            Kind::File { file } => {
                self.files[*file].size == 0 && whiteout::is_xattr_whiteout(&node.xattrs)
            }
            _ => false,
        };
        match mode {
            Whiteouts::Keep => {}
            Whiteouts::Apply => {
                if name == whiteout::OCI_OPAQUE {
                    self.make_opaque(parent, &node);
                } else if let Some(target) = whiteout::oci_target(name) {
                    let mut path = parent.to_vec();
                    path.push(target);
                    self.remove(&path);
                } else if whiteout::is_oci_name(name) {
                    // AUFS bookkeeping: nothing to apply.
                } else if device_or_xattr_whiteout {
                    self.remove(comps);
                } else {
                    let opaque = is_dir && whiteout::is_opaque(&node.xattrs);
                    node.xattrs
                        .retain(|x| !whiteout::is_overlay_private(&x.name));
                    place(&mut self.slots, comps, node, layer);
                    if opaque {
                        let template = self.slots[0].node.clone();
                        self.make_opaque(comps, &template);
                    }
                }
                return Ok(());
            }
            Whiteouts::ToOverlay => {
                if name == whiteout::OCI_OPAQUE {
                    let at = self.dir_at(parent, &node);
                    let x = &mut self.slots[at].node.xattrs;
                    x.retain(|x| !whiteout::is_overlay_private(&x.name));
                    x.push(whiteout::overlay_opaque_xattr());
                    x.sort();
                    return Ok(());
                }
                if let Some(target) = whiteout::oci_target(name) {
                    let mut path = parent.to_vec();
                    path.push(target);
                    let dev = TreeNode {
                        name: Name::from_slice(target),
                        perm: 0,
                        xattrs: Vec::new(),
                        link: None,
                        kind: Kind::CharDev(0),
                        ..node
                    };
                    place(&mut self.slots, &path, dev, layer);
                    return Ok(());
                }
                if whiteout::is_oci_name(name) {
                    return Ok(()); // AUFS bookkeeping means nothing to overlayfs
                }
            }
            Whiteouts::ToOci => {
                if device_or_xattr_whiteout {
                    let mut path = parent.to_vec();
                    let wh = whiteout::oci_whiteout_name(name);
                    path.push(&wh);
                    let empty = self.empty_file(&wh, &node);
                    place(&mut self.slots, &path, empty, layer);
                    return Ok(());
                }
                if is_dir && whiteout::is_opaque(&node.xattrs) {
                    node.xattrs
                        .retain(|x| !whiteout::is_overlay_private(&x.name));
                    let marker = self.empty_file(whiteout::OCI_OPAQUE, &node);
                    place(&mut self.slots, comps, node, layer);
                    let mut path = comps.to_vec();
                    path.push(whiteout::OCI_OPAQUE);
                    place(&mut self.slots, &path, marker, layer);
                    return Ok(());
                }
            }
        }
        place(&mut self.slots, comps, node, layer);
        Ok(())
    }

    /// An empty regular file named `name`, owned and timed as `like`.
    fn empty_file(&mut self, name: &[u8], like: &TreeNode) -> TreeNode {
        self.files.push(SourceFile::in_spool(
            self.spool_shared.clone(),
            self.spool_end,
            0,
        ));
        TreeNode {
            name: Name::from_slice(name),
            perm: 0o644,
            uid: like.uid,
            gid: like.gid,
            mtime: like.mtime,
            xattrs: Vec::new(),
            link: None,
            kind: Kind::File {
                file: self.files.len() - 1,
            },
        }
    }

    /// The directory slot at `comps`, made (with `like`'s owner and time)
    /// if this layer names it only through its contents.
    fn dir_at(&mut self, comps: &[&[u8]], like: &TreeNode) -> usize {
        if let Some(at) = lookup_comps(&self.slots, comps) {
            if matches!(self.slots[at].node.kind, Kind::Dir(_)) {
                self.slots[at].layer = self.layer;
                return at;
            }
        }
        let dir = TreeNode {
            name: comps
                .last()
                .map(|c| Name::from_slice(c))
                .unwrap_or_default(),
            perm: 0o755,
            xattrs: Vec::new(),
            link: None,
            kind: Kind::Dir(Vec::new()),
            ..like.clone()
        };
        let at = place(&mut self.slots, comps, dir, self.layer);
        self.slots[at].made = true;
        at
    }

    /// Deletes `comps` if a lower layer put it there (a whiteout applies
    /// to the layers below, never to its own layer).
    fn remove(&mut self, comps: &[&[u8]]) {
        if let Some((parent, name)) = parent_slot(&self.slots, comps) {
            let older = self.slots[parent]
                .children
                .get(name)
                .is_some_and(|&i| self.slots[i].layer < self.layer);
            if older {
                self.slots[parent].children.remove(name);
            }
        }
    }

    /// Makes the directory at `comps` opaque: everything lower layers put
    /// below it goes, what this layer put there stays.
    fn make_opaque(&mut self, comps: &[&[u8]], like: &TreeNode) {
        let at = self.dir_at(comps, like);
        let layer = self.layer;
        let mut stack = vec![at];
        while let Some(d) = stack.pop() {
            let children: Vec<(Vec<u8>, usize)> = self.slots[d]
                .children
                .iter()
                .map(|(n, &i)| (n.clone(), i))
                .collect();
            for (name, i) in children {
                if self.slots[i].layer < layer {
                    self.slots[d].children.remove(&name);
                } else if matches!(self.slots[i].node.kind, Kind::Dir(_)) {
                    stack.push(i);
                }
            }
        }
    }

    /// The tree read so far: only what is still reachable, files numbered
    /// in the order they were read, link counts from the names left.
    pub fn finish(mut self) -> Result<Tree, PackError> {
        self.spool.sync_data().map_err(|e| self.spool_err(e))?;
        let opts = self.opts;
        let as_mksquashfs = opts.tuning.engine == crate::format::compressor::Engine::SquashfsTools;
        // Made directories do not count (mksquashfs gives them no time of
        // their own).
        let newest = self
            .slots
            .iter()
            .filter(|s| !(as_mksquashfs && s.made))
            .map(|s| s.node.mtime)
            .max()
            .unwrap_or(0);
        if as_mksquashfs || opts.made_dir != crate::pack::MadeDir::default() {
            // Made as mksquashfs makes them: -default-mode/-uid/-gid or 0755
            // and the caller's, the clock's time (clamped as every time).
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let made_time = opts.made_dir.mtime.unwrap_or_else(super::now);
            let mtime = match (opts.all_time, opts.source_date_epoch) {
                (Some(t), _) => t,
                (None, Some(sde)) => made_time.min(sde),
                (None, None) => made_time,
            };
            // The root too, when the archive has no entry for it and the
            // tool keeps the archive's root.
            let skip = usize::from(!opts.tar_root_from_archive);
            for s in self.slots.iter_mut().skip(skip).filter(|s| s.made) {
                let n = &mut s.node;
                n.perm = opts.made_dir.perm.unwrap_or(0o755);
                n.uid = opts.made_dir.uid.unwrap_or(uid);
                n.gid = opts.made_dir.gid.unwrap_or(gid);
                if !opts.all_root {
                    n.uid = opts.force_uid.unwrap_or(n.uid);
                    n.gid = opts.force_gid.unwrap_or(n.gid);
                } else {
                    (n.uid, n.gid) = (0, 0);
                }
                n.mtime = mtime;
            }
        }
        if !opts.tar_root_from_archive {
            // SAFETY: getuid/getgid have no preconditions.
            let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
            let root = &mut self.slots[0].node;
            root.perm = 0o777;
            (root.uid, root.gid) = if opts.all_root { (0, 0) } else { (uid, gid) };
            root.uid = opts.force_uid.unwrap_or(root.uid);
            root.gid = opts.force_gid.unwrap_or(root.gid);
        }
        let mut root = build(&self.slots, 0);
        let (files, links) = compact(&mut root, &self.files, self.links.len());
        Ok(Tree {
            root,
            files,
            links,
            newest_mtime: newest,
            warnings: self.warnings,
            synthetic_root: !opts.tar_root_from_archive,
        })
    }
}
