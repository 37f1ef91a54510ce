//! `sqfuse check`: read everything the image holds, report each problem
//! with its offset. Sound only if nothing is reported.

use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::format::metadata::MetaRef;
use crate::reader::Image;
use std::collections::HashSet;

/// Reporting stops after this many problems: a badly broken image would
/// otherwise repeat one fault thousands of times.
pub const MAX_PROBLEMS: usize = 200;

#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<Error>,
    pub inodes: u64,
    pub directories: u64,
    pub files: u64,
    pub data_bytes: u64,
    pub fragments: u64,
}

impl CheckReport {
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
    fn note(&mut self, r: Result<()>) {
        if let Err(e) = r {
            if self.problems.len() < MAX_PROBLEMS {
                self.problems.push(e);
            }
        }
    }
}

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
    let mut seen: HashSet<MetaRef> = HashSet::from([img.root_ref()]);
    let mut stack: Vec<(Inode, String)> = vec![(root.clone(), String::new())];
    let r = inode_contents(img, &root, "/", rep);
    rep.note(r);
    numbers.insert(root.number);
    while let Some((dir, path)) = stack.pop() {
        rep.directories += 1;
        let entries = match img.read_dir(&dir) {
            Ok(it) => it,
            Err(e) => {
                rep.note(Err(e));
                continue;
            }
        };
        for e in entries {
            if rep.problems.len() >= MAX_PROBLEMS {
                return Ok(());
            }
            let e = match e {
                Ok(e) => e,
                Err(err) => {
                    rep.note(Err(err));
                    break;
                }
            };
            let child_path = super::join(&path, &e.name);
            let at = img.sb.inode_table_start + e.inode_ref.block();
            let inode = match img.inode(e.inode_ref) {
                Ok(i) => i,
                Err(err) => {
                    rep.note(Err(err));
                    continue;
                }
            };
            if inode.number != e.inode_number || inode.file_type() != e.file_type {
                rep.note(Err(Error::corrupt(
                    at,
                    format!("{child_path}: directory entry disagrees with its inode"),
                )));
                continue;
            }
            let first_visit = numbers.insert(inode.number);
            if let InodeData::Dir(d) = &inode.data {
                if d.parent != dir.number {
                    rep.note(Err(Error::corrupt(
                        at,
                        format!("{child_path}: parent is {}, not {}", d.parent, dir.number),
                    )));
                }
                if !seen.insert(e.inode_ref) || !first_visit {
                    rep.note(Err(Error::corrupt(
                        at,
                        format!("{child_path}: directory loop"),
                    )));
                    continue;
                }
                stack.push((inode.clone(), child_path.clone()));
            }
            if first_visit {
                let r = inode_contents(img, &inode, &child_path, rep);
                rep.note(r);
            }
        }
    }
    Ok(())
}

fn inode_contents(img: &Image, inode: &Inode, path: &str, rep: &mut CheckReport) -> Result<()> {
    let named = |e: Error| Error {
        what: format!("{path}: {}", e.what),
        ..e
    };
    rep.inodes += 1;
    img.uid(inode).map_err(named)?;
    img.gid(inode).map_err(named)?;
    img.xattrs(inode).map_err(named)?;
    if let InodeData::File(f) = &inode.data {
        rep.files += 1;
        let mut total = 0u64;
        img.for_each_chunk(f, |c| {
            total += c.len() as u64;
            Ok(())
        })
        .map_err(named)?;
        if total != f.size {
            return Err(Error::corrupt(
                f.blocks_start,
                format!("{path}: data holds {total} bytes, size is {}", f.size),
            ));
        }
        rep.data_bytes += total;
    }
    if inode.is_dir() {
        img.dir_index(inode).map_err(named)?;
    }
    Ok(())
}
