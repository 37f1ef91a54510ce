//! mksquashfs's `-xattrs-exclude`, `-xattrs-include` and `-xattrs-add`:
//! the xattrs of every entry filtered by name, and xattrs added to all
//! (`user.` ones only to files and directories, as Linux allows them).

use super::scan::{Kind, TreeNode};
use crate::format::xattr::Xattr;

/// The filter and the additions.
#[derive(Debug, Clone, Default)]
pub struct XattrFilter {
    /// Names matching this are dropped.
    pub exclude: Option<regex::bytes::Regex>,
    /// Only names matching this are kept.
    pub include: Option<regex::bytes::Regex>,
    /// Added to every entry (replacing one of the same name).
    pub add: Vec<Xattr>,
}

impl XattrFilter {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.exclude.is_none() && self.include.is_none() && self.add.is_empty()
    }

    /// Applies the filter to every entry below (and at) `root`.
    pub(crate) fn apply(&self, root: &mut TreeNode) {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            n.xattrs.retain(|x| {
                !self.exclude.as_ref().is_some_and(|r| r.is_match(&x.name))
                    && self.include.as_ref().is_none_or(|r| r.is_match(&x.name))
            });
            let file_or_dir = matches!(n.kind, Kind::File { .. } | Kind::Dir(_));
            // After the entry's own, the last given first (as mksquashfs
            // lists them).
            for a in self.add.iter().rev() {
                if a.name.starts_with(b"user.") && !file_or_dir {
                    continue;
                }
                n.xattrs.retain(|x| x.name != a.name);
                n.xattrs.push(a.clone());
            }
            if let Kind::Dir(c) = &mut n.kind {
                stack.extend(c.iter_mut());
            }
        }
    }
}
