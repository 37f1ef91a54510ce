//! mksquashfs's excludes: `-e` lists, `-ef` files, plain paths or (with
//! `-wildcards`, `-regex`) patterns.

use crate::error::io_words;
use crate::pack::exclude::Rule;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How an exclude list is read: mksquashfs's plain paths, or patterns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExcludeKind {
    Paths,
    Wildcards,
    Regex,
}

/// An -ef file: one exclude per line; blank lines and `#` comments
/// skipped, leading white space dropped, a leading `\` escaped.
pub fn read_exclude_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("-ef {}: {}", path.display(), io_words(&e)))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix('\\').unwrap_or(l).to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// mksquashfs's excludes: plain paths name files (relative to each
/// source, or absolute, ./ or ../ relative to here), compared by device
/// and inode; with -wildcards or -regex they are patterns.
pub fn exclude_rules(
    args: &[String],
    kind: ExcludeKind,
    sources: &[PathBuf],
) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for a in args {
        match kind {
            ExcludeKind::Wildcards | ExcludeKind::Regex => {
                if a.starts_with('/') || a.starts_with("./") || a.starts_with("../") {
                    return Err(format!(
                        "exclude {a:?}: /, ./ and ../ prefixed excludes are not supported with -wildcards or -regex"
                    ));
                }
                rules.push(Rule::Components {
                    pattern: a.clone(),
                    regex: kind == ExcludeKind::Regex,
                })
            }
            ExcludeKind::Paths => {
                let here = a.starts_with('/') || a.starts_with("./") || a.starts_with("../");
                let candidates: Vec<PathBuf> = if here {
                    vec![PathBuf::from(a)]
                } else {
                    sources.iter().map(|s| s.join(a)).collect()
                };
                // A path that does not exist excludes nothing (mksquashfs
                // says nothing either, unless stat fails otherwise).
                for c in candidates {
                    if let Ok(m) = std::fs::symlink_metadata(&c) {
                        rules.push(Rule::Inode {
                            dev: m.dev(),
                            ino: m.ino(),
                        });
                    }
                }
            }
        }
    }
    Ok(rules)
}
