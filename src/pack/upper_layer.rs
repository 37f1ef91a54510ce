//! `pack --layer UPPER`: a writable mount's upper directory (overlayfs's
//! format, see [`crate::view::upper`]) packed as a container layer with
//! OCI whiteouts: a whiteout becomes an empty `.wh.NAME`, an opaque
//! directory gets `.wh..wh..opq`, overlayfs's private xattrs go, and an
//! owner a rootless server kept in `user.containers.override_stat` becomes
//! the entry's owner. So `sqfuse LAYER.sqfs BASE.sqfs MNT` shows what the
//! writable mount showed.

use super::scan::{Kind, SourceFile, Tree, TreeNode};
use super::PackError;
use crate::view::upper::{OverrideStat, OVERRIDE_STAT, TEMP_PREFIX};
use crate::whiteout;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How long a held lock is waited for: the unmount returns as soon as the
/// kernel lets go, and the server releases the lock only when it has
/// finished (dropped its caches, removed a `upper=tmp` directory), so
/// `fusermount3 -u MNT && sqfuse pack --layer UPPER` must not race it.
const EXITING_SERVER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses an upper a mount still writes to: a sqfuse mount (which holds
/// a lock on it) or kernel overlayfs (which names it in mountinfo).
pub fn check_not_mounted(upper: &Path) -> Result<(), PackError> {
    let dir = std::fs::File::open(upper).map_err(|e| PackError::io(upper, "open", e))?;
    let deadline = std::time::Instant::now() + EXITING_SERVER_GRACE;
    loop {
        match rustix::fs::flock(
            dir.as_fd(),
            rustix::fs::FlockOperation::NonBlockingLockShared,
        ) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(PackError::Usage(format!(
                    "{}: a sqfuse mount is writing to this upper directory: unmount it first",
                    crate::error::shown_path(upper)
                )))
            }
            Err(e) => {
                return Err(PackError::io(upper, "lock", std::io::Error::from(e)));
            }
        }
    }
    let canon = std::fs::canonicalize(upper).map_err(|e| PackError::io(upper, "read", e))?;
    let needle = format!("upperdir={}", canon.display());
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let used = info.lines().any(|l| {
            l.split([',', ' ']).any(|o| {
                o == needle
                    || o.strip_prefix("upperdir=")
                        .is_some_and(|p| Path::new(p) == canon)
            })
        });
        if used {
            return Err(PackError::Usage(format!(
                "{}: an overlayfs mount is writing to this upper directory: unmount it first",
                crate::error::shown_path(upper)
            )));
        }
    }
    Ok(())
}

/// The layer of upper directory `upper`, as a pack source: refused while
/// mounted, scanned with `opts` (counting entries in `entries`), rewritten
/// by [`to_layer`].
pub fn source<'a>(
    upper: &'a Path,
    opts: &'a super::PackOptions,
    entries: &'a std::sync::atomic::AtomicU64,
) -> super::Source<'a> {
    super::Source::Tree(Box::new(move |_spool| {
        check_not_mounted(upper)?;
        let mut t = super::scan::scan(&[upper.to_path_buf()], opts, entries)?;
        to_layer(&mut t)?;
        Ok(t)
    }))
}

/// What an upper entry stands for in a layer.
enum Seen {
    Whiteout,
    Temporary,
    Entry,
}

fn seen(n: &TreeNode) -> Seen {
    if n.name.starts_with(TEMP_PREFIX) {
        return Seen::Temporary;
    }
    match &n.kind {
        Kind::CharDev(0) => Seen::Whiteout,
        Kind::File { .. } if whiteout::is_xattr_whiteout(&n.xattrs) => Seen::Whiteout,
        _ => Seen::Entry,
    }
}

/// An empty regular file named `name`, as OCI writes whiteouts.
fn empty_file(tree_files: &mut Vec<SourceFile>, name: &[u8], mtime: u32) -> TreeNode {
    tree_files.push(SourceFile::at(Path::new("/dev/null"), 0));
    TreeNode {
        name: name.into(),
        perm: 0,
        uid: 0,
        gid: 0,
        mtime,
        xattrs: Vec::new(),
        link: None,
        kind: Kind::File {
            file: tree_files.len() - 1,
        },
    }
}

/// Rewrites a scanned upper directory as a layer (see the module's docs).
pub fn to_layer(tree: &mut Tree) -> Result<(), PackError> {
    let files = &mut tree.files;
    let links = &mut tree.links;
    // A walk with a stack: the depth comes from the directory.
    let mut stack: Vec<(&mut TreeNode, PathBuf)> = vec![(&mut tree.root, PathBuf::new())];
    while let Some((n, path)) = stack.pop() {
        let opaque = matches!(n.kind, Kind::Dir(_)) && whiteout::is_opaque(&n.xattrs);
        if let Some(o) = n
            .xattrs
            .iter()
            .find(|x| x.name == OVERRIDE_STAT.as_bytes())
            .and_then(|x| OverrideStat::parse(&x.value))
        {
            n.uid = o.uid;
            n.gid = o.gid;
            n.perm = o.mode as u16;
        }
        n.xattrs.retain(|x| {
            !whiteout::is_overlay_private(&x.name) && x.name != OVERRIDE_STAT.as_bytes()
        });
        let mtime = n.mtime;
        let Kind::Dir(children) = &mut n.kind else {
            continue;
        };
        let mut kept = Vec::with_capacity(children.len() + 1);
        for c in std::mem::take(children) {
            match seen(&c) {
                Seen::Temporary => {}
                Seen::Whiteout => {
                    if let Some(g) = c.link {
                        links[g] = links[g].saturating_sub(1);
                    }
                    let name = whiteout::oci_whiteout_name(&c.name);
                    if name.len() > crate::format::dir::MAX_NAME {
                        return Err(PackError::Entry {
                            path: path.join(std::ffi::OsStr::from_bytes(&c.name)),
                            what: "the name is too long for an OCI whiteout (.wh.NAME)".into(),
                        });
                    }
                    kept.push(empty_file(files, &name, c.mtime));
                }
                Seen::Entry => kept.push(c),
            }
        }
        if opaque {
            kept.push(empty_file(files, whiteout::OCI_OPAQUE, mtime));
        }
        kept.sort_by(|a, b| a.name.cmp(&b.name));
        *children = kept;
        for c in children.iter_mut() {
            let p = path.join(std::ffi::OsStr::from_bytes(&c.name));
            stack.push((c, p));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `umount` returns before the server has let go of the
    /// upper, and `pack --layer` straight after it refused the upper.
    #[test]
    fn pack_layer_right_after_unmount_waits_for_the_exiting_server() {
        let dir = tempfile::tempdir().unwrap();
        let held = std::fs::File::open(dir.path()).unwrap();
        rustix::fs::flock(&held, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let exiting = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        check_not_mounted(dir.path()).unwrap();
        exiting.join().unwrap();
    }
}
