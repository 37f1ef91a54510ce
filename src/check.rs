//! `sqfuse check`: read everything the image holds, report each problem
//! with its offset. Sound only if nothing is reported.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::reader::{Image, Step};
use std::collections::HashSet;

/// Reporting stops after this many problems: a badly broken image would
/// otherwise repeat one fault thousands of times.
pub const MAX_PROBLEMS: usize = 200;

/// What [`check`] found: each distinct problem once, and what it read.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Each distinct problem once, in the order found.
    pub problems: Vec<Error>,
    /// For each problem, how many more paths met the same one (one damaged
    /// block shared by many files is one problem).
    pub repeats: Vec<u64>,
    seen: std::collections::HashMap<(Option<u64>, String), usize>,
    /// Inodes read.
    pub inodes: u64,
    /// Directories listed.
    pub directories: u64,
    /// Regular files whose data was read.
    pub files: u64,
    /// Bytes of file data read and decompressed.
    pub data_bytes: u64,
    /// Fragment blocks read.
    pub fragments: u64,
}

impl CheckReport {
    /// Whether nothing was wrong.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
    fn note(&mut self, r: Result<()>) {
        let Err(e) = r else { return };
        let key = (e.offset, e.what.clone());
        if let Some(&i) = self.seen.get(&key) {
            self.repeats[i] += 1;
        } else if self.problems.len() < MAX_PROBLEMS {
            self.seen.insert(key, self.problems.len());
            self.problems.push(e);
            self.repeats.push(0);
        }
    }
}

/// Reads everything `img` holds (every inode, listing, data and fragment block, xattr and id) and
/// reports each problem with its offset, up to [`MAX_PROBLEMS`].
pub fn check(img: &Image) -> CheckReport {
    let mut rep = CheckReport::default();
    let mut numbers = HashSet::new();
    let r = walk(img, &mut rep, &mut numbers);
    rep.note(r);
    if rep.problems.is_empty() && numbers.len() as u64 != u64::from(img.sb.inode_count) {
        rep.note(Err(Error::corrupt(
            4,
            format!(
                "superblock counts {} inodes, the tree holds {}",
                img.sb.inode_count,
                numbers.len()
            ),
        )));
    }
    for i in 0..img.fragment_count() {
        if rep.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let r = img.fragment_block(i).map(|_| ());
        rep.fragments += u64::from(r.is_ok());
        rep.note(r);
    }
    if img.has_export_table() {
        for n in 1..=img.sb.inode_count {
            if rep.problems.len() >= MAX_PROBLEMS {
                break;
            }
            let r = img
                .inode_ref_by_number(n)
                .and_then(|r| img.inode(r))
                .and_then(|i| {
                    if i.number == n {
                        Ok(())
                    } else {
                        Err(Error::corrupt(
                            img.sb.export_table_start.unwrap_or(88),
                            format!("export entry {n} leads to inode {}", i.number),
                        ))
                    }
                });
            rep.note(r);
        }
    }
    rep
}

fn walk(img: &Image, rep: &mut CheckReport, numbers: &mut HashSet<u32>) -> Result<()> {
    let root = img.root()?;
    rep.directories += 1;
    let r = inode_contents(img, &root, "/", rep);
    rep.note(r);
    numbers.insert(root.number);
    for step in img.walk(&root, img.root_ref())? {
        if rep.problems.len() >= MAX_PROBLEMS {
            break;
        }
        let e = match step {
            Ok(Step::Entry(e)) => e,
            Ok(Step::Leave { .. }) => continue,
            Err(err) => {
                rep.note(Err(err));
                continue;
            }
        };
        let path = String::from_utf8_lossy(&e.path);
        if let InodeData::Dir(d) = &e.inode.data {
            rep.directories += 1;
            if d.parent != e.parent {
                rep.note(Err(Error::corrupt(
                    img.sb.inode_table_start + e.inode_ref.block(),
                    format!("parent is {}, not {}", d.parent, e.parent),
                )
                .at_path(path.clone())));
            }
        }
        // Hard links: read each inode's contents once. A directory cannot
        // be one (the walker saw no other directory with its number).
        if numbers.insert(e.inode.number) {
            let r = inode_contents(img, &e.inode, &path, rep);
            rep.note(r);
        } else if e.inode.is_dir() {
            rep.note(Err(Error::corrupt(
                img.sb.inode_table_start + e.inode_ref.block(),
                format!("directory shares inode number {}", e.inode.number),
            )
            .at_path(path.clone())));
        }
    }
    Ok(())
}

fn inode_contents(img: &Image, inode: &Inode, path: &str, rep: &mut CheckReport) -> Result<()> {
    let named = |e: Error| e.at_path(path);
    rep.inodes += 1;
    img.uid(inode).map_err(named)?;
    img.gid(inode).map_err(named)?;
    img.xattrs(inode).map_err(named)?;
    if let InodeData::File(info) = &inode.data {
        rep.files += 1;
        let f = img.open_file(inode).map_err(named)?;
        let mut total = 0u64;
        img.for_each_chunk(&f, |c| {
            total += c.len() as u64;
            Ok(())
        })
        .map_err(named)?;
        if total != info.size {
            return Err(Error::corrupt(
                info.blocks_start,
                format!("data holds {total} bytes, size is {}", info.size),
            )
            .at_path(path));
        }
        rep.data_bytes += total;
    }
    if inode.is_dir() {
        img.dir_index(inode).map_err(named)?;
    }
    Ok(())
}
