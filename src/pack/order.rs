//! Laying file data out in a chosen order (`pack --order PROFILE`, the
//! mksquashfs personality's `-sort FILE`): files a program reads at start
//! placed first, in the order it reads them, so a launch reads the image
//! front to back and its small files share fragment blocks.
//!
//! Only where data lies changes: names, inodes and directories stay in
//! tree order, and the output is still the same for any thread count.

use super::scan::{Kind, Tree, TreeNode};
use super::PackError;
use std::collections::HashMap;
use std::io::BufRead;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest sort-file line read.
const MAX_SORT_LINE: usize = 16 << 10;

/// Priorities for paths in the image (relative to its root, `a/b`), as
/// mksquashfs's sort files give them: a file takes the priority of its own
/// entry, else of its nearest listed directory, else 0; higher goes first,
/// equal priorities keep tree order (reversed for a sort file, as
/// mksquashfs writes them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileOrder {
    entries: HashMap<Vec<u8>, i64>,
    /// Equal priorities in reverse tree order, as mksquashfs -sort writes
    /// them (its priority lists are built by prepending).
    reverse_ties: bool,
}

impl FileOrder {
    /// Sets `path`'s priority (a later entry for the same path wins).
    pub fn set(&mut self, path: &[u8], priority: i64) {
        let p = trim(path);
        self.entries.insert(p.to_vec(), priority);
    }

    /// The files of a profile first, in the order it lists them (each above
    /// all later ones and above everything unlisted).
    pub fn from_paths(paths: &[Vec<u8>]) -> FileOrder {
        let mut o = FileOrder::default();
        let n = paths.len() as i64;
        for (k, p) in paths.iter().enumerate().rev() {
            o.set(p, n - k as i64);
        }
        o
    }

    /// Adds a mksquashfs sort file: `PATH PRIORITY` per line (priority
    /// -32768..=32767; `\\` escapes a space in PATH; `#` starts a comment;
    /// a trailing `/*` is dropped). As mksquashfs reads them, a PATH starting
    /// with `/`, `./` or `../` names a file on this machine (inside one of
    /// `sources`), any other is inside a source directory. With several
    /// sources, each is a directory of the image named after it.
    pub fn add_sort_file(
        &mut self,
        input: impl BufRead,
        name: &Path,
        sources: &[PathBuf],
    ) -> Result<(), PackError> {
        let bad = |n: usize, what: &str| {
            PackError::Usage(format!("sort file {}: line {n}: {what}", name.display()))
        };
        let mut input = input;
        let mut n = 0;
        loop {
            let mut buf = Vec::new();
            let got = std::io::Read::take(&mut input, MAX_SORT_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| PackError::io(name, "read", e))?;
            if got == 0 {
                return Ok(());
            }
            n += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
            } else if buf.len() > MAX_SORT_LINE {
                return Err(bad(n, &format!("longer than {MAX_SORT_LINE} bytes")));
            }
            let line = buf.trim_ascii_start();
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let mut path = Vec::new();
            let mut i = 0;
            while i < line.len() && !line[i].is_ascii_whitespace() {
                if line[i] == b'\\' {
                    i += 1;
                    if i == line.len() {
                        break;
                    }
                }
                path.push(line[i]);
                i += 1;
            }
            let rest = std::str::from_utf8(line[i..].trim_ascii())
                .map_err(|_| bad(n, "the priority is not a number"))?;
            let priority: i64 = rest.parse().map_err(|_| {
                bad(
                    n,
                    &format!("'{}' is not a priority", crate::error::shorten(rest)),
                )
            })?;
            if !(-32768..=32767).contains(&priority) {
                return Err(bad(n, "priority outside -32768..32767"));
            }
            if path.ends_with(b"/*") {
                path.truncate(path.len() - 2);
            }
            for p in image_paths(&path, sources) {
                self.set(&p, priority);
            }
            self.reverse_ties = true;
        }
    }

    /// Whether no path was given.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reorders `tree.files` by priority and renumbers the tree's
    /// references to them. Returns how many entries named something in the
    /// tree.
    pub fn apply(&self, tree: &mut Tree) -> usize {
        if self.entries.is_empty() || tree.files.is_empty() {
            return 0;
        }
        let mut prio: Vec<Option<i64>> = vec![None; tree.files.len()];
        let mut matched = 0;
        // Depth-first with an explicit stack (depth comes from outside):
        // each node with its path and the priority it inherits.
        let mut stack: Vec<(&TreeNode, Vec<u8>, i64)> = Vec::new();
        match &tree.root.kind {
            Kind::Dir(children) => {
                for c in children {
                    stack.push((c, c.name.to_vec(), 0));
                }
            }
            _ => return 0,
        }
        while let Some((n, path, inherited)) = stack.pop() {
            let own = self.entries.get(&path).copied();
            if own.is_some() {
                matched += 1;
            }
            let p = own.unwrap_or(inherited);
            match &n.kind {
                Kind::Dir(children) => {
                    for c in children {
                        let mut cp = Vec::with_capacity(path.len() + 1 + c.name.len());
                        cp.extend_from_slice(&path);
                        cp.push(b'/');
                        cp.extend_from_slice(&c.name);
                        stack.push((c, cp, p));
                    }
                }
                // A hard-linked file takes its highest priority.
                Kind::File { file } => prio[*file] = Some(prio[*file].map_or(p, |q| q.max(p))),
                _ => {}
            }
        }
        let mut order: Vec<usize> = (0..tree.files.len()).collect();
        // Equal priorities keep tree order (or its reverse, as mksquashfs).
        let rev = self.reverse_ties;
        order.sort_by_key(|&i| {
            (
                std::cmp::Reverse(prio[i].unwrap_or(0)),
                if rev { usize::MAX - i } else { i },
            )
        });
        let mut new_index = vec![0usize; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let files = std::mem::take(&mut tree.files);
        let mut slots: Vec<Option<_>> = files.into_iter().map(Some).collect();
        tree.files = order
            .iter()
            .map(|&old| slots[old].take().expect("a permutation"))
            .collect();
        let mut stack: Vec<&mut TreeNode> = vec![&mut tree.root];
        while let Some(n) = stack.pop() {
            match &mut n.kind {
                Kind::Dir(children) => stack.extend(children.iter_mut()),
                Kind::File { file } => *file = new_index[*file],
                _ => {}
            }
        }
        matched
    }
}

/// Where a sort file's PATH is in the image (see [`FileOrder::add_sort_file`]).
fn image_paths(path: &[u8], sources: &[PathBuf]) -> Vec<Vec<u8>> {
    let in_image = |source: &Path, rel: &[u8]| -> Vec<u8> {
        if sources.len() == 1 {
            return rel.to_vec();
        }
        let mut p = source
            .file_name()
            .map_or_else(Vec::new, |n| n.as_bytes().to_vec());
        p.push(b'/');
        p.extend_from_slice(rel);
        p
    };
    let local = path.starts_with(b"/") || path.starts_with(b"./") || path.starts_with(b"../");
    let mut out = Vec::new();
    if local {
        let Ok(abs) = std::fs::canonicalize(std::ffi::OsStr::from_bytes(path)) else {
            return out;
        };
        for s in sources {
            if let Ok(sa) = std::fs::canonicalize(s) {
                if let Ok(rel) = abs.strip_prefix(&sa) {
                    out.push(in_image(s, rel.as_os_str().as_bytes()));
                }
            }
        }
    } else if sources.len() == 1 {
        out.push(path.to_vec());
    } else {
        for s in sources {
            if s.join(std::ffi::OsStr::from_bytes(path))
                .symlink_metadata()
                .is_ok()
            {
                out.push(in_image(s, path));
            }
        }
    }
    out
}

/// `path` without leading `./` or `/` and trailing `/`.
fn trim(mut p: &[u8]) -> &[u8] {
    loop {
        if let Some(r) = p.strip_prefix(b"./") {
            p = r;
        } else if let Some(r) = p.strip_prefix(b"/") {
            p = r;
        } else {
            break;
        }
    }
    while let Some(r) = p.strip_suffix(b"/") {
        p = r;
    }
    p
}
