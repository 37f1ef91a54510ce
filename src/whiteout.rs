//! How a container layer says "this name is deleted" or "nothing below
//! this directory shows through", in the two conventions layers use:
//!
//! - overlayfs: a character device 0/0, or a zero-size regular file with
//!   the `overlay.whiteout` xattr, stands where the name was deleted; a
//!   directory whose `overlay.opaque` xattr is `y` hides everything below
//!   it (`x` only marks a directory holding xattr whiteouts). The xattrs
//!   live in `trusted.` (root's overlayfs) or `user.` (`userxattr`).
//! - OCI/AUFS: a file named `.wh.NAME` deletes NAME from the layers below;
//!   `.wh..wh..opq` makes its directory opaque; other `.wh..wh.` names are
//!   AUFS bookkeeping, never shown.
//!
//! No I/O here: the view and the packer ask these questions of what they
//! read.

use crate::format::inode::{FileType, Inode, InodeData};
use crate::format::xattr::Xattr;

/// Prefix of an OCI whiteout's name.
pub const OCI_PREFIX: &[u8] = b".wh.";
/// Prefix of AUFS's own names (the opaque marker among them).
pub const AUFS_META_PREFIX: &[u8] = b".wh..wh.";
/// The OCI opaque-directory marker.
pub const OCI_OPAQUE: &[u8] = b".wh..wh..opq";

/// The two namespaces overlayfs keeps its private xattrs in.
pub const OVERLAY_XATTR_PREFIXES: [&[u8]; 2] = [b"trusted.overlay.", b"user.overlay."];

/// Which convention a layer's whiteouts are written in, or kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Convention {
    /// OCI: an empty file `.wh.NAME` hides NAME; `.wh..wh..opq` makes its directory opaque.
    Oci,
    /// overlayfs: a 0/0 character device hides its name; `trusted.overlay.opaque=y` makes a
    /// directory opaque.
    Overlay,
    /// As they are: no conversion, no whiteout applied.
    Keep,
}

impl std::str::FromStr for Convention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" => Ok(Self::Oci),
            "overlay" => Ok(Self::Overlay),
            "keep" => Ok(Self::Keep),
            _ => Err(format!("whiteouts must be oci, overlay or keep, not {s:?}")),
        }
    }
}

/// The name an OCI whiteout deletes (`.wh.NAME` -> NAME); `None` for other
/// names, the opaque marker and AUFS's own names.
pub fn oci_target(name: &[u8]) -> Option<&[u8]> {
    if name.starts_with(AUFS_META_PREFIX) {
        return None;
    }
    name.strip_prefix(OCI_PREFIX).filter(|t| !t.is_empty())
}

/// Whether a name belongs to the OCI convention (a whiteout, the opaque
/// marker or AUFS bookkeeping) and is never shown in a merged view.
pub fn is_oci_name(name: &[u8]) -> bool {
    name.starts_with(OCI_PREFIX)
}

/// The OCI whiteout's name for `name`.
pub fn oci_whiteout_name(name: &[u8]) -> Vec<u8> {
    [OCI_PREFIX, name].concat()
}

/// Whether an xattr is overlayfs's private business (hidden in a merged
/// view, as overlayfs hides them).
pub fn is_overlay_private(xattr_name: &[u8]) -> bool {
    OVERLAY_XATTR_PREFIXES
        .iter()
        .any(|p| xattr_name.starts_with(p))
}

/// The value of overlayfs attribute `key` (`whiteout`, `opaque`) in either
/// namespace.
fn overlay_attr<'a>(xattrs: &'a [Xattr], key: &[u8]) -> Option<&'a [u8]> {
    xattrs.iter().find_map(|x| {
        OVERLAY_XATTR_PREFIXES
            .iter()
            .any(|p| x.name.strip_prefix(*p) == Some(key))
            .then_some(x.value.as_slice())
    })
}

/// Whether an inode could be an overlayfs whiteout: a character device 0/0
/// (a whiteout whatever its xattrs), or a zero-size file whose xattrs
/// decide (see [`is_xattr_whiteout`]).
pub fn is_device_whiteout(i: &Inode) -> bool {
    matches!(i.data, InodeData::CharDev(0))
}

/// Whether the inode might be an xattr whiteout, so its xattrs are worth
/// reading.
pub fn may_be_xattr_whiteout(i: &Inode) -> bool {
    i.xattr.is_some() && matches!(&i.data, InodeData::File(f) if f.size == 0)
}

/// Whether a zero-size file's xattrs make it a whiteout.
pub fn is_xattr_whiteout(xattrs: &[Xattr]) -> bool {
    overlay_attr(xattrs, b"whiteout").is_some()
}

/// Whether a directory's xattrs make it opaque.
pub fn is_opaque(xattrs: &[Xattr]) -> bool {
    overlay_attr(xattrs, b"opaque") == Some(b"y")
}

/// Whether a directory entry's type alone says it could be a whiteout
/// (the inode decides); other types never are.
pub fn entry_may_be_whiteout(t: FileType) -> bool {
    matches!(t, FileType::CharDev | FileType::File)
}

/// The overlayfs opaque xattr, in the namespace root's overlayfs reads.
pub fn overlay_opaque_xattr() -> Xattr {
    Xattr {
        name: b"trusted.overlay.opaque".to_vec(),
        value: b"y".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(name: &str, value: &str) -> Xattr {
        Xattr {
            name: name.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn oci_names() {
        assert_eq!(oci_target(b".wh.foo"), Some(&b"foo"[..]));
        assert_eq!(oci_target(b".wh..wh..opq"), None);
        assert_eq!(oci_target(b".wh..wh.plnk"), None);
        assert_eq!(oci_target(b".wh."), None);
        assert_eq!(oci_target(b"foo"), None);
        assert!(is_oci_name(b".wh..wh..opq"));
        assert!(!is_oci_name(b"wh.foo"));
        assert_eq!(oci_whiteout_name(b"a"), b".wh.a");
    }

    #[test]
    fn overlay_xattrs() {
        assert!(is_opaque(&[x("trusted.overlay.opaque", "y")]));
        assert!(is_opaque(&[x("user.overlay.opaque", "y")]));
        assert!(!is_opaque(&[x("user.overlay.opaque", "x")]));
        assert!(!is_opaque(&[x("security.overlay.opaque", "y")]));
        assert!(is_xattr_whiteout(&[x("user.overlay.whiteout", "")]));
        assert!(!is_xattr_whiteout(&[x("user.whiteout", "y")]));
        assert!(is_overlay_private(b"trusted.overlay.origin"));
        assert!(!is_overlay_private(b"user.overlayfoo"));
    }
}
