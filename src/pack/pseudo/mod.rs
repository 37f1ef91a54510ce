//! Pseudo definitions, as mksquashfs 4.7 takes them (`-p`, `-pf`, `-pd`):
//! entries that are not in the source (directories, files made from a
//! command's output or from data in the pseudo file itself, devices,
//! symlinks, fifos, sockets, hard links, xattrs) and changes to entries
//! that are (`m`). `parse` reads the text; [`apply`] grafts the
//! definitions onto a gathered tree.

mod apply;
pub mod packfile;
mod parse;

pub use apply::apply;
pub use parse::{parse_time, parse_xattr, DataFile};

use crate::format::xattr::Xattr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Attributes a definition gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// Permission bits (07777).
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time; None: the pack's clock (an original, lower-case
    /// definition).
    pub mtime: Option<u32>,
}

/// Where a pseudo file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// What `/bin/sh -c COMMAND` writes to standard output.
    Command(Vec<u8>),
    /// The contents of this file of the system (gensquashfs's `file`).
    Path(PathBuf),
    /// `length` bytes at `offset` in `file` (an `R` definition: data that
    /// `unsquashfs -pf` put after the pseudo file's definitions).
    Data {
        /// The file holding the data.
        file: Arc<Path>,
        /// Where the file's bytes start.
        offset: u64,
        /// How many.
        length: u64,
        /// The file was sparse (its holes are reported).
        sparse: bool,
    },
}

/// What one definition makes or changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `d`/`D`: a directory.
    Dir(Attrs),
    /// `m`/`M`: new mode, owner (and time) of an entry of the source.
    Modify(Attrs),
    /// `f`/`F`/`R`: a regular file.
    File(Attrs, Content),
    /// `s`/`S`: a symbolic link to these bytes.
    Symlink(Attrs, Vec<u8>),
    /// `b`/`c`/`B`/`C`: a device node.
    Device {
        /// Its attributes.
        attrs: Attrs,
        /// Block (else character) device.
        block: bool,
        /// Major number (at most 0xfff).
        major: u32,
        /// Minor number (at most 0xfffff).
        minor: u32,
    },
    /// `i`/`I`: a socket or a fifo.
    Ipc {
        /// Its attributes.
        attrs: Attrs,
        /// A socket (else a fifo).
        socket: bool,
    },
    /// `x`: one extended attribute added to the entry.
    Xattr(Xattr),
    /// `l`/`h`: the file at this path of the system (`h`: the symbolic
    /// link followed), a hard link when it is also in the source.
    Link(PathBuf),
    /// `L`: a hard link to another pseudo entry (its path in the image).
    PseudoLink(Vec<u8>),
}

/// One definition and where it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// Its path in the image, without leading slashes; empty: the root.
    pub path: Vec<u8>,
    /// What it makes.
    pub entry: Entry,
    /// Where it was read: `-p "..."`, or `FILE:LINE`.
    pub origin: String,
}

/// All the pseudo definitions of one pack.
#[derive(Debug, Clone, Default)]
pub struct PseudoDefs {
    /// In the order given.
    pub defs: Vec<Definition>,
    /// `-pd`: the directory made for a missing parent of a definition.
    pub default_dir: Option<Attrs>,
    /// `-pseudo-override`: the definitions' owners and modes win over
    /// `-all-root`, `-force-uid`, `-force-gid` and the mode options.
    pub override_globals: bool,
    /// Files holding `R` data copied from standard input: removed when
    /// the definitions are dropped.
    pub(crate) data_files: Vec<Arc<DataFile>>,
}

impl PseudoDefs {
    /// No definitions at all.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty() && self.default_dir.is_none()
    }

    /// Adds one definition given on the command line (`-p`).
    pub fn add_definition(&mut self, text: &[u8]) -> Result<(), String> {
        let origin = format!("-p \"{}\"", String::from_utf8_lossy(text));
        let def = parse::definition(text, &origin, None)?;
        self.defs.push(def);
        Ok(())
    }

    /// Sets the default directory (`-pd "d mode uid gid"` or
    /// `"D time mode uid gid"`).
    pub fn set_default_dir(&mut self, text: &[u8]) -> Result<(), String> {
        self.default_dir = Some(parse::default_dir(text)?);
        Ok(())
    }

    /// Adds the definitions of a pseudo file (`-pf`; `-`: standard input).
    /// `R` data read from standard input is copied into a file in
    /// `spool_dir`, removed when these definitions are dropped.
    pub fn add_file(&mut self, path: &Path, spool_dir: &Path) -> Result<(), String> {
        let read = parse::file(path, spool_dir)?;
        self.defs.extend(read.defs);
        self.data_files.extend(read.data_file);
        Ok(())
    }

    /// Whether the root is defined (`/ d ...`), or a default directory
    /// stands in for it: what packing with no source at all (`-`) needs.
    pub fn root_attrs(&self) -> Option<Attrs> {
        self.defs
            .iter()
            .rev()
            .find_map(|d| match (&d.entry, d.path.is_empty()) {
                (Entry::Dir(a), true) => Some(*a),
                _ => None,
            })
            .or(self.default_dir)
    }
}

/// The tree of a pack with no source (`-`): only a root, from the `/`
/// definition or `-pd`, for the definitions to fill.
pub(crate) fn root_only(
    defs: &PseudoDefs,
    opts: &crate::pack::PackOptions,
) -> Result<crate::pack::scan::Tree, crate::pack::PackError> {
    let Some(a) = defs.root_attrs() else {
        return Err(crate::pack::PackError::Usage(
            "the source is \"-\" but no pseudo definition makes \"/\" (give -p \"/ d MODE UID GID\" or -pd)"
                .into(),
        ));
    };
    use crate::pack::scan::{Kind, Name, Tree, TreeNode};
    // Owners and modes as the options make them, unless -pseudo-override.
    let o = opts;
    let (mut perm, mut uid, mut gid) = (a.perm, a.uid, a.gid);
    if !o.pseudo.override_globals {
        (uid, gid) = if o.all_root { (0, 0) } else { (uid, gid) };
        (uid, gid) = (o.force_uid.unwrap_or(uid), o.force_gid.unwrap_or(gid));
        if let Some(c) = &o.dir_mode {
            perm = c.apply(perm, true);
        }
    }
    let mut mtime = a.mtime.unwrap_or_else(crate::pack::now);
    if let Some(t) = o.all_time {
        mtime = t;
    } else if let Some(sde) = o.source_date_epoch {
        mtime = mtime.min(sde);
    }
    Ok(Tree {
        root: TreeNode {
            name: Name::new(),
            perm,
            uid,
            gid,
            mtime,
            xattrs: Vec::new(),
            link: None,
            kind: Kind::Dir(Vec::new()),
        },
        files: Vec::new(),
        links: Vec::new(),
        newest_mtime: a.mtime.unwrap_or(0),
        warnings: Vec::new(),
        synthetic_root: false,
    })
}
