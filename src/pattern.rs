//! Path patterns as squashfs-tools write them: '/'-separated parts, each
//! matched against one path component (literally, as a shell glob, or as a
//! regular expression searched in it). mksquashfs's excludes and
//! unsquashfs's extract names are both written this way.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How the parts of a [`PathPattern`] match a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// The part is the component.
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
    /// `pattern` with each '/'-separated part read as `kind` says; the
    /// error names the pattern and what is wrong with it.
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
