//! Which source entries a pack leaves out: sqfuse's own globs, and the
//! three kinds mksquashfs takes (plain paths, `-wildcards`, `-regex`).

use super::PackError;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

#[derive(Debug, Clone)]
pub enum Rule {
    /// `sqfuse pack -e GLOB`: `**` crosses directories; a leading '/'
    /// anchors at SOURCE, otherwise the glob matches at any depth.
    Glob(String),
    /// mksquashfs's plain `-e PATH`: the file PATH names (by device and
    /// inode, as mksquashfs compares them), wherever it is met.
    Inode { dev: u64, ino: u64 },
    /// mksquashfs's `-wildcards` / `-regex` patterns: '/'-separated parts,
    /// each matched against one path component (shell glob, or a POSIX-style
    /// regular expression searched in it), anchored at SOURCE unless written
    /// "... PATTERN", which matches at any depth.
    Components { pattern: String, regex: bool },
}

/// How the parts of a [`PathPattern`] match a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    Literal,
    /// Shell glob (`*`, `?`, `[...]`), within one component.
    Glob,
    /// A regular expression searched in the component.
    Regex,
}

enum Part {
    Literal(Vec<u8>),
    Glob(globset::GlobMatcher),
    Regex(regex::bytes::Regex),
}

impl Part {
    fn matches(&self, component: &[u8]) -> bool {
        match self {
            Part::Literal(l) => l == component,
            Part::Glob(g) => g.is_match(Path::new(OsStr::from_bytes(component))),
            Part::Regex(r) => r.is_match(component),
        }
    }
}

/// A '/'-separated pattern matched one path component per part, as
/// mksquashfs's excludes and unsquashfs's extract names are; written
/// "... PATTERN" it matches at any depth.
pub struct PathPattern {
    anywhere: bool,
    parts: Vec<Part>,
}

impl PathPattern {
    pub fn compile(pattern: &str, kind: PatternKind) -> Result<Self, String> {
        // mksquashfs's "sticky" form: "... PATTERN" matches at any depth.
        let (anywhere, rest) = match pattern.strip_prefix("... ") {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let parts: Vec<&str> = rest
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.is_empty() {
            return Err(format!("pattern {pattern:?} matches nothing"));
        }
        let parts = parts
            .into_iter()
            .map(|p| match kind {
                PatternKind::Literal => Ok(Part::Literal(p.as_bytes().to_vec())),
                PatternKind::Regex => regex::bytes::Regex::new(p)
                    .map(Part::Regex)
                    .map_err(|e| format!("bad regular expression {pattern:?}: {e}")),
                PatternKind::Glob => globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map(|g| Part::Glob(g.compile_matcher()))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}")),
            })
            .collect::<Result<_, _>>()?;
        Ok(PathPattern { anywhere, parts })
    }

    /// The pattern matches the path `comps` exactly (ending at its last
    /// component).
    pub fn matches(&self, comps: &[&[u8]]) -> bool {
        let n = self.parts.len();
        let ends_here = |start: usize| {
            comps.len() - start == n
                && self
                    .parts
                    .iter()
                    .zip(&comps[start..])
                    .all(|(p, c)| p.matches(c))
        };
        if comps.len() < n {
            return false;
        }
        if self.anywhere {
            (0..=comps.len() - n).any(ends_here)
        } else {
            ends_here(0)
        }
    }

    /// `comps` could lead to a match: it matches the pattern's first parts
    /// (always, for a pattern that matches at any depth).
    pub fn leads_to(&self, comps: &[&[u8]]) -> bool {
        self.anywhere
            || (comps.len() < self.parts.len()
                && self.parts.iter().zip(comps).all(|(p, c)| p.matches(c)))
    }
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
    pub fn build(rules: &[Rule]) -> Result<Self, PackError> {
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
