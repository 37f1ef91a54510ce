//! Which source entries a pack leaves out: sqfuse's own globs, and the
//! three kinds mksquashfs takes (plain paths, `-wildcards`, `-regex`).

use super::PackError;
use crate::pattern::{PathPattern, PatternKind};
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// One exclusion rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// `sqfuse pack -e GLOB`: `**` crosses directories; a leading '/'
    /// anchors at SOURCE, otherwise the glob matches at any depth.
    Glob(String),
    /// mksquashfs's plain `-e PATH`: the file PATH names (by device and
    /// inode, as mksquashfs compares them), wherever it is met.
    /// The file with this device and inode number.
    Inode {
        /// The device holding it.
        dev: u64,
        /// Its inode number.
        ino: u64,
    },
    /// mksquashfs's `-wildcards` / `-regex` patterns: '/'-separated parts,
    /// each matched against one path component (shell glob, or a POSIX-style
    /// regular expression searched in it), anchored at SOURCE unless written
    /// "... PATTERN", which matches at any depth.
    /// A pattern, glob parts or (with `regex`) regular expressions.
    Components {
        /// The pattern as written.
        pattern: String,
        /// Its parts are regular expressions, not globs.
        regex: bool,
    },
}

/// The compiled rules.
#[derive(Default)]
pub struct Excludes {
    globs: Option<(globset::GlobSet, globset::GlobSet)>,
    inodes: HashSet<(u64, u64)>,
    patterns: Vec<PathPattern>,
}

fn usage(what: String) -> PackError {
    PackError::Usage(what)
}

impl Excludes {
    pub(crate) fn build(rules: &[Rule]) -> Result<Self, PackError> {
        let mut ex = Excludes::default();
        let (mut anchored, mut anywhere) = (
            globset::GlobSetBuilder::new(),
            globset::GlobSetBuilder::new(),
        );
        let mut any_glob = false;
        for rule in rules {
            match rule {
                Rule::Glob(p) => {
                    let glob = |s: &str| {
                        globset::GlobBuilder::new(s)
                            .literal_separator(true)
                            .build()
                            .map_err(|e| usage(format!("bad exclude pattern {p:?}: {e}")))
                    };
                    match p.strip_prefix('/') {
                        Some(rest) => anchored.add(glob(rest)?),
                        None => anywhere.add(glob(&format!("**/{p}"))?),
                    };
                    any_glob = true;
                }
                Rule::Inode { dev, ino } => {
                    ex.inodes.insert((*dev, *ino));
                }
                Rule::Components { pattern, regex } => {
                    let kind = if *regex {
                        PatternKind::Regex
                    } else {
                        PatternKind::Glob
                    };
                    ex.patterns
                        .push(PathPattern::compile(pattern, kind).map_err(usage)?);
                }
            }
        }
        if any_glob {
            let build = |b: globset::GlobSetBuilder| {
                b.build()
                    .map_err(|e| usage(format!("exclude patterns: {e}")))
            };
            ex.globs = Some((build(anchored)?, build(anywhere)?));
        }
        Ok(ex)
    }

    /// Whether no path rule is given (only inode rules, or none).
    pub fn no_path_rules(&self) -> bool {
        self.globs.is_none() && self.patterns.is_empty()
    }

    /// Whether the patterns leave out `rel` (relative to its source): known
    /// before the entry is even looked at.
    pub fn by_path(&self, rel: &Path) -> bool {
        let globbed = self
            .globs
            .as_ref()
            .is_some_and(|(a, b)| a.is_match(rel) || b.is_match(Path::new("x").join(rel)));
        if globbed || self.patterns.is_empty() {
            return globbed;
        }
        let comps: Vec<&[u8]> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.as_bytes()),
                _ => None,
            })
            .collect();
        self.patterns.iter().any(|p| p.matches(&comps))
    }

    /// Whether the file with this device and inode is left out.
    pub fn by_inode(&self, dev: u64, ino: u64) -> bool {
        !self.inodes.is_empty() && self.inodes.contains(&(dev, ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(rules: &[Rule]) -> Excludes {
        Excludes::build(rules).unwrap()
    }

    #[test]
    fn globs_anchor_with_a_slash() {
        let e = ex(&[Rule::Glob("*.o".into()), Rule::Glob("/build/**".into())]);
        assert!(e.by_path(Path::new("a/b/x.o")));
        assert!(e.by_path(Path::new("build/x/y")));
        assert!(!e.by_path(Path::new("src/build/y")));
    }

    #[test]
    fn mksquashfs_wildcards_and_regex_per_component() {
        let e = ex(&[
            Rule::Components {
                pattern: "dir/*.o".into(),
                regex: false,
            },
            Rule::Components {
                pattern: "... core".into(),
                regex: false,
            },
            Rule::Components {
                pattern: "^tmp[0-9]+$".into(),
                regex: true,
            },
        ]);
        assert!(e.by_path(Path::new("dir/a.o")));
        assert!(!e.by_path(Path::new("x/dir/a.o")), "anchored without ...");
        assert!(
            !e.by_path(Path::new("dir/sub/a.o")),
            "* stays in one component"
        );
        assert!(e.by_path(Path::new("a/b/core")) && e.by_path(Path::new("core")));
        assert!(e.by_path(Path::new("tmp12")) && !e.by_path(Path::new("tmp12x")));
        assert!(!e.by_path(Path::new("a/tmp12")));
    }
}
