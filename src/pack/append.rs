//! Appending to an existing image, as mksquashfs does without
//! `-noappend`: the image's tree is read back (its file data spooled), the
//! new sources join its root (a clashing name gets `_1`, `_2`...), or the
//! old root becomes one entry of the new (`-root-becomes NAME`); the whole
//! is written as a new image, through a temporary file as every pack.
//! The image's compressor, block size and compressor options are kept.

use super::scan::{Kind, Name, SourceFile, Tree, TreeNode};
use super::{PackError, PackOptions};
use crate::format::compressor::{Compressor, CompressorOptions, GZIP_STRATEGIES};
use crate::reader::walk::Step;
use crate::reader::{Image, OpenOptions};
use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

/// What appending asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Append {
    /// The old root becomes an entry of this name in the new root.
    pub root_becomes: Option<String>,
    /// The compressor asked for (mksquashfs's `-comp`): an image compressed
    /// otherwise is refused. None: the image's, whatever it is.
    pub compressor: Option<Compressor>,
}

/// Opens the image to append to, checked before anything is written.
pub(crate) fn open(image: &Path, opts: &PackOptions) -> Result<Image, PackError> {
    let o = OpenOptions {
        offset: crate::reader::Offset::At(opts.offset),
        ..Default::default()
    };
    let img = Image::open(image, &o).map_err(|e| {
        PackError::Usage(format!(
            "{}: cannot append to it, it is not an image sqfuse can read ({e}); -noappend replaces it",
            image.display()
        ))
    })?;
    if let Some(Some(c)) = opts.append.as_ref().map(|a| a.compressor) {
        if c != img.compressor {
            return Err(PackError::Usage(format!(
                "{}: compressed with {}, but -comp asks for {}; appending keeps the image's compressor",
                image.display(),
                img.compressor.name(),
                c.name()
            )));
        }
    }
    Ok(img)
}

/// `opts` with the image's compressor, block size, compressor options and
/// the choices its flags record (what is compressed, fragments,
/// duplicates, exports, xattrs), as mksquashfs keeps them.
pub(crate) fn inherit(img: &Image, opts: &PackOptions) -> PackOptions {
    use crate::format::superblock::flags;
    let mut o = opts.clone();
    let f = img.sb.flags;
    let has = |bit: u16| f & bit != 0;
    o.uncompressed = super::Uncompressed {
        inodes: has(flags::UNCOMPRESSED_INODES),
        ids: has(flags::UNCOMPRESSED_IDS),
        data: has(flags::UNCOMPRESSED_DATA),
        fragments: has(flags::UNCOMPRESSED_FRAGMENTS),
        xattrs: has(flags::UNCOMPRESSED_XATTRS),
    };
    o.no_fragments = has(flags::NO_FRAGMENTS);
    o.always_fragments = has(flags::ALWAYS_FRAGMENTS);
    o.no_dedup = !has(flags::DUPLICATES);
    o.no_exports = !has(flags::EXPORTABLE);
    o.no_xattrs = has(flags::NO_XATTRS);
    o.compressor = img.compressor;
    o.block_size = img.block_size();
    o.xz_filters = 0;
    o.tuning.xz_dict_size = None;
    o.tuning.gzip_window = 15;
    o.tuning.gzip_strategies = 0;
    match img.compressor_options {
        Some(CompressorOptions::Gzip {
            level,
            window_bits,
            strategies,
        }) => {
            o.level = Some(level);
            o.tuning.gzip_window = window_bits;
            o.tuning.gzip_strategies = strategies & ((1 << GZIP_STRATEGIES.len()) - 1);
        }
        Some(CompressorOptions::Xz { dict_size, filters }) => {
            o.tuning.xz_dict_size = Some(dict_size);
            o.xz_filters = filters;
        }
        Some(CompressorOptions::Lz4 { flags, data, .. }) => {
            o.level = Some(if flags & 1 != 0 {
                data.unwrap_or(12)
            } else {
                0
            });
        }
        Some(CompressorOptions::Zstd { level }) => o.level = Some(level),
        Some(CompressorOptions::Lzo { level, .. }) => o.level = Some(level),
        None => {
            o.level = Some(match img.compressor {
                Compressor::Zstd => 15,
                c => super::CompressSettings::default_level(c),
            })
        }
    }
    o
}

/// The image's tree, its file data copied into `spool`.
pub(crate) fn read_tree(img: &Image, image: &Path, spool: &Path) -> Result<Tree, PackError> {
    let bad = |e: crate::error::Error| {
        PackError::Usage(format!("{}: cannot append to it: {e}", image.display()))
    };
    let mut out = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(spool)
        .map_err(|e| PackError::io(spool, "create", e))?;
    let shared: Arc<Path> = Arc::from(spool);
    let mut end = 0u64;
    let mut files = Vec::new();
    let mut links: Vec<u32> = Vec::new();
    let mut by_number: HashMap<u32, (usize, Kind)> = HashMap::new();
    let mut newest = 0u32;
    let root_inode = img.root().map_err(bad)?;
    let node_of = |i: &crate::format::inode::Inode, name: &[u8]| -> Result<TreeNode, PackError> {
        Ok(TreeNode {
            name: Name::from_slice(name),
            perm: i.perm,
            uid: img.uid(i).map_err(bad)?,
            gid: img.gid(i).map_err(bad)?,
            mtime: i.mtime,
            xattrs: img.xattrs(i).map_err(bad)?,
            link: None,
            kind: Kind::Dir(Vec::new()),
        })
    };
    // Directories being filled, the root first; each is attached to its
    // parent when the walk leaves it.
    let mut stack: Vec<TreeNode> = vec![node_of(&root_inode, b"")?];
    for step in img.walk(&root_inode, img.root_ref()).map_err(bad)? {
        match step.map_err(bad)? {
            Step::Leave { .. } => {
                let done = stack.pop().expect("a frame per directory entered");
                match stack.last_mut() {
                    Some(parent) => children(parent).push(done),
                    None => stack.push(done), // the root: kept
                }
            }
            Step::Entry(e) => {
                let name = e.path.rsplit(|&b| b == b'/').next().unwrap_or(&e.path);
                let mut node = node_of(&e.inode, name)?;
                newest = newest.max(node.mtime);
                use crate::format::inode::InodeData;
                node.kind = match &e.inode.data {
                    InodeData::Dir(_) => {
                        stack.push(node);
                        continue;
                    }
                    InodeData::File(_) => {
                        if let Some((group, kind)) = by_number.get(&e.inode.number) {
                            links[*group] += 1;
                            node.link = Some(*group);
                            node.kind = kind.clone();
                            children(stack.last_mut().expect("root")).push(node);
                            continue;
                        }
                        let f = img.open_file(&e.inode).map_err(bad)?;
                        let size = f.size();
                        out.seek(SeekFrom::Start(end))
                            .map_err(|e| PackError::io(spool, "seek in", e))?;
                        for n in 0..f.chunk_count() {
                            let c = img.read_chunk(&f, n).map_err(|err| {
                                bad(err.at_path(String::from_utf8_lossy(&e.path)))
                            })?;
                            // A hole stays a hole in the spool (no zeros made).
                            let w = match &c {
                                crate::reader::Chunk::Zeros(n) => {
                                    out.seek(SeekFrom::Current(*n as i64)).map(|_| ())
                                }
                                _ => out.write_all(&c.bytes()),
                            };
                            w.map_err(|err| PackError::io(spool, "write", err))?;
                        }
                        files.push(SourceFile::in_spool(shared.clone(), end, size));
                        end += size;
                        out.set_len(out.metadata().map_or(0, |m| m.len()).max(end))
                            .map_err(|err| PackError::io(spool, "write", err))?;
                        Kind::File {
                            file: files.len() - 1,
                        }
                    }
                    InodeData::Symlink(t) => Kind::Symlink(t.clone()),
                    InodeData::BlockDev(r) => Kind::BlockDev(*r),
                    InodeData::CharDev(r) => Kind::CharDev(*r),
                    InodeData::Fifo => Kind::Fifo,
                    InodeData::Socket => Kind::Socket,
                };
                if e.inode.nlink > 1 {
                    let group = links.len();
                    links.push(1);
                    node.link = Some(group);
                    by_number.insert(e.inode.number, (group, node.kind.clone()));
                }
                children(stack.last_mut().expect("root")).push(node);
            }
        }
    }
    out.flush().map_err(|e| PackError::io(spool, "write", e))?;
    let root = stack.pop().expect("the root");
    Ok(Tree {
        root,
        files,
        links,
        newest_mtime: newest,
        warnings: Vec::new(),
        synthetic_root: false,
    })
}

fn children(n: &mut TreeNode) -> &mut Vec<TreeNode> {
    match &mut n.kind {
        Kind::Dir(c) => c,
        _ => unreachable!("only directories are on the stack"),
    }
}

/// `new` appended to `old`: its root's entries join the old root's (a
/// name the old root has gets `_1`, `_2`...), or with `root_becomes` the
/// old root is one entry of the new. The root's own attributes are the
/// new source's.
pub(crate) fn merge(
    mut old: Tree,
    mut new: Tree,
    root_becomes: Option<&str>,
) -> Result<Tree, PackError> {
    // Renumber the new tree's files and link groups after the old ones.
    let (nf, nl) = (old.files.len(), old.links.len());
    let mut stack = vec![&mut new.root];
    while let Some(n) = stack.pop() {
        if let Some(l) = &mut n.link {
            *l += nl;
        }
        match &mut n.kind {
            Kind::File { file } => *file += nf,
            Kind::Dir(c) => stack.extend(c.iter_mut()),
            _ => {}
        }
    }
    old.files.append(&mut new.files);
    old.links.append(&mut new.links);
    let mut warnings = std::mem::take(&mut new.warnings);
    let new_entries = std::mem::take(children(&mut new.root));
    let mut root = new.root;
    let mut list = match root_becomes {
        Some(name) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(PackError::Usage(format!(
                    "-root-becomes {name:?}: not a name for a directory"
                )));
            }
            let mut old_root = old.root;
            old_root.name = Name::from_slice(name.as_bytes());
            vec![old_root]
        }
        None => std::mem::take(children(&mut old.root)),
    };
    for mut e in new_entries {
        let base = e.name.clone();
        let mut pass = 1;
        while list.iter().any(|o| o.name == e.name) {
            let mut n = base.to_vec();
            n.extend_from_slice(format!("_{pass}").as_bytes());
            pass += 1;
            if pass == 2 {
                warnings.push(format!(
                    "source directory entry {} already used in the image; trying {}",
                    String::from_utf8_lossy(&base),
                    String::from_utf8_lossy(&n)
                ));
            }
            e.name = Name::from_slice(&n);
        }
        list.push(e);
    }
    list.sort_by(|a, b| a.name.cmp(&b.name));
    *children(&mut root) = list;
    Ok(Tree {
        root,
        files: old.files,
        links: old.links,
        newest_mtime: old.newest_mtime.max(new.newest_mtime),
        warnings,
        synthetic_root: new.synthetic_root,
    })
}
