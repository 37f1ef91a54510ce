//! `-o record=FILE`: notes what a run reads, in the order it first reads
//! it, and writes it as a [`Profile`] when the mount ends.
//!
//! Requests name nodes by id; the recorder learns each id's path from the
//! lookups and directory listings that handed it out (the kernel can only
//! name a node it was given), so every recorded step has a path from the
//! root. Memory is bounded by [`MAX_ITEMS`] steps and ranges.

use crate::error::Result;
use crate::profile::{ImageRange, Profile, ProfileStep, MAX_ITEMS};
use crate::reader::Image;
use crate::view::ROOT_ID;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Recorder {
    path: PathBuf,
    images: Vec<String>,
    state: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    /// Each node's path, as first handed out.
    paths: HashMap<u64, Vec<u8>>,
    looked: HashSet<Vec<u8>>,
    listed: HashSet<u64>,
    /// Per node, the index of its latest read step (to extend it).
    last_read: HashMap<u64, usize>,
    steps: Vec<ProfileStep>,
    ranges: Vec<ImageRange>,
    ranges_seen: HashSet<(usize, u64)>,
    full: bool,
}

impl Recorded {
    /// The path of `name` in directory `parent`, if the parent's is known.
    fn child_path(&self, parent: u64, name: &[u8]) -> Option<Vec<u8>> {
        let mut path = self.paths.get(&parent)?.clone();
        if path.len() > 1 {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        Some(path)
    }

    fn room(&mut self) -> bool {
        if self.steps.len() + self.ranges.len() >= MAX_ITEMS || self.paths.len() >= MAX_ITEMS {
            if !self.full {
                eprintln!(
                    "sqfuse: record: {MAX_ITEMS} items noted; the rest of the run is not recorded"
                );
            }
            self.full = true;
        }
        !self.full
    }
}

impl Recorder {
    /// A recorder writing to `path`, told of every block the layers read.
    pub fn new(path: PathBuf, layers: &[Arc<Image>]) -> Arc<Recorder> {
        let mut state = Recorded::default();
        state.paths.insert(ROOT_ID, b"/".to_vec());
        let r = Arc::new(Recorder {
            path,
            images: Profile::identities(layers),
            state: Mutex::new(state),
        });
        for (layer, img) in layers.iter().enumerate() {
            let rec = Arc::downgrade(&r);
            img.observe_blocks(Arc::new(move |offset, len| {
                if let Some(rec) = rec.upgrade() {
                    rec.range(layer, offset, len);
                }
            }));
        }
        r
    }

    fn range(&self, layer: usize, offset: u64, len: u64) {
        let mut s = self.state.lock();
        if !s.ranges_seen.insert((layer, offset)) || !s.room() {
            return;
        }
        // Blocks read one after another become one range.
        if let Some(last) = s.ranges.last_mut() {
            if last.layer == layer && last.offset + last.len == offset {
                last.len += len;
                return;
            }
        }
        s.ranges.push(ImageRange { layer, offset, len });
    }

    /// `name` in directory `parent` was looked up: `child` is the node it
    /// names, `None` if absent.
    pub fn looked_up(&self, parent: u64, name: &[u8], child: Option<u64>) {
        let mut s = self.state.lock();
        let Some(path) = s.child_path(parent, name) else {
            return;
        };
        if let Some(c) = child {
            if s.room() {
                s.paths.entry(c).or_insert_with(|| path.clone());
            }
        }
        if s.room() && s.looked.insert(path.clone()) {
            s.steps.push(ProfileStep::Look(path));
        }
    }

    /// A listing (readdirplus) handed out `child` for `name` in `parent`:
    /// the node's path, without a step.
    pub fn named(&self, parent: u64, name: &[u8], child: u64) {
        let mut s = self.state.lock();
        if s.paths.contains_key(&child) || !s.room() {
            return;
        }
        if let Some(path) = s.child_path(parent, name) {
            s.paths.insert(child, path);
        }
    }

    /// Directory `dir` was listed.
    pub fn listed(&self, dir: u64) {
        let mut s = self.state.lock();
        if !s.listed.insert(dir) || !s.room() {
            return;
        }
        if let Some(p) = s.paths.get(&dir).cloned() {
            s.steps.push(ProfileStep::List(p));
        }
    }

    /// `len` bytes of node `ino` were read at `offset`.
    pub fn read(&self, ino: u64, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let mut s = self.state.lock();
        let Some(path) = s.paths.get(&ino).cloned() else {
            return;
        };
        if let Some(&i) = s.last_read.get(&ino) {
            if let Some(ProfileStep::Read {
                offset: o, len: l, ..
            }) = s.steps.get_mut(i)
            {
                let end = *o + *l;
                if offset >= *o && offset <= end {
                    // Within or right after the latest read: extend it.
                    *l = (*l).max(offset + len - *o);
                    return;
                }
            }
        }
        if !s.room() {
            return;
        }
        let i = s.steps.len();
        s.steps.push(ProfileStep::Read { path, offset, len });
        s.last_read.insert(ino, i);
    }

    /// Writes the profile (temporary file, renamed into place).
    pub fn save(&self) -> Result<()> {
        let s = self.state.lock();
        let p = Profile {
            images: self.images.clone(),
            ranges: s.ranges.clone(),
            steps: s.steps.clone(),
        };
        p.save(&self.path)
    }
}
