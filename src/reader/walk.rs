//! One walk of a directory tree for every client (`ls -R`, `check`,
//! `extract`): depth first in stored order, parents before children, with
//! an explicit stack (a hostile image may nest very deeply) and every
//! directory entered once (a second meeting is a loop, reported).

use super::{DirIter, Image};
use crate::error::{Error, Result};
use crate::format::dir::MAX_DEPTH;
use crate::format::inode::Inode;
use crate::format::metadata::MetaRef;
use std::collections::HashSet;

/// An entry met on the walk.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    /// Path below the walk's start, components joined by '/'.
    pub path: Vec<u8>,
    /// The entry's inode.
    pub inode: Inode,
    /// Where that inode is.
    pub inode_ref: MetaRef,
    /// Inode number of the directory that lists it.
    pub parent: u32,
}

/// What the walk yields, in order.
#[derive(Debug)]
pub enum Step {
    /// An entry; a directory's children follow it.
    Entry(WalkEntry),
    /// A directory's children are done (yielded for the start too, with an
    /// empty path), for work that needs them first (extract sets a
    /// directory's mode and times last).
    /// A directory's children are done: the directory and its path.
    Leave {
        /// The directory's inode.
        dir: Inode,
        /// Its path below the walk's start.
        path: Vec<u8>,
    },
}

struct Frame<'a> {
    dir: Inode,
    path: Vec<u8>,
    entries: DirIter<'a>,
}

/// Iterates over `Result<Step>`. An error names the path it concerns; the
/// walk goes on past it (skipping what it makes unreadable), so a caller
/// may stop at the first error or collect them all.
pub struct Walker<'a> {
    img: &'a Image,
    stack: Vec<Frame<'a>>,
    /// A directory to open before going on: the entry just yielded.
    descend: Option<(Inode, Vec<u8>)>,
    seen_refs: HashSet<MetaRef>,
    seen_numbers: HashSet<u32>,
}

/// The error, naming the path it concerns.
fn at_path(path: &[u8], e: Error) -> Error {
    if path.is_empty() {
        return e;
    }
    e.at_path(String::from_utf8_lossy(path))
}

/// `parent` and `name` joined by '/' (just `name` at the top).
pub fn join_path(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(parent.len() + 1 + name.len());
    if !parent.is_empty() {
        p.extend_from_slice(parent);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Image {
    /// Walks everything below directory `start` (found at `start_ref`).
    pub fn walk(&self, start: &Inode, start_ref: MetaRef) -> Result<Walker<'_>> {
        let entries = self.read_dir(start)?;
        Ok(Walker {
            img: self,
            stack: vec![Frame {
                dir: start.clone(),
                path: Vec::new(),
                entries,
            }],
            descend: None,
            seen_refs: HashSet::from([start_ref]),
            seen_numbers: HashSet::from([start.number]),
        })
    }
}

impl Walker<'_> {
    /// Does not go into the directory just yielded (its children and its
    /// `Leave` are not walked).
    pub fn skip_dir(&mut self) {
        self.descend = None;
    }
}

impl Iterator for Walker<'_> {
    type Item = Result<Step>;

    fn next(&mut self) -> Option<Result<Step>> {
        if let Some((dir, path)) = self.descend.take() {
            match self.img.read_dir(&dir) {
                Ok(entries) => self.stack.push(Frame { dir, path, entries }),
                Err(e) => return Some(Err(at_path(&path, e))),
            }
        }
        let depth = self.stack.len();
        let top = self.stack.last_mut()?;
        let e = match top.entries.next() {
            None => {
                let f = self.stack.pop()?;
                return Some(Ok(Step::Leave {
                    dir: f.dir,
                    path: f.path,
                }));
            }
            Some(Err(e)) => return Some(Err(at_path(&top.path, e))),
            Some(Ok(e)) => e,
        };
        let path = join_path(&top.path, &e.name);
        // An entry's depth is the number of frames above it. The stack
        // holds each level's path: a bound on depth is a bound on memory (a
        // small image can nest a million levels). Entries up to MAX_DEPTH
        // names deep are what the packer writes.
        if depth > MAX_DEPTH {
            let at = self.img.sb.inode_table_start + e.inode_ref.block();
            return Some(Err(at_path(
                &path,
                Error::corrupt(
                    at,
                    format!("nested deeper than {MAX_DEPTH} names; not walked"),
                ),
            )));
        }
        let parent = top.dir.number;
        let inode = match self.img.entry_inode(&e) {
            Ok(i) => i,
            Err(err) => return Some(Err(at_path(&path, err))),
        };
        if inode.is_dir() {
            if !self.seen_refs.insert(e.inode_ref) || !self.seen_numbers.insert(inode.number) {
                let at = self.img.sb.inode_table_start + e.inode_ref.block();
                return Some(Err(at_path(
                    &path,
                    Error::corrupt(at, "directory loop: this directory was met before"),
                )));
            }
            self.descend = Some((inode.clone(), path.clone()));
        }
        Some(Ok(Step::Entry(WalkEntry {
            path,
            inode,
            inode_ref: e.inode_ref,
            parent,
        })))
    }
}
