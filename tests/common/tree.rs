//! Snapshots of a directory tree, entry by entry, for comparing a source
//! tree with what was extracted or mounted from an image.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: char,
    /// Permission bits; none for symlinks (always 0777).
    pub perm: Option<u32>,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Regular files and symlinks only (directory sizes are filesystem-specific).
    pub size: Option<u64>,
    pub rdev: Option<(u32, u32)>,
    pub target: Option<Vec<u8>>,
    pub content: Option<u64>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// For non-directories with several names: the first name (sorted) of the group.
    pub link_group: Option<PathBuf>,
}

fn digest(p: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    fs::read(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .hash(&mut h);
    h.finish()
}

pub fn xattrs(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 65536];
    // SAFETY: buffers are valid for the lengths passed.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return out;
    }
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cn = CString::new(name).unwrap();
        let mut val = vec![0u8; 65536];
        let m =
            unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        assert!(m >= 0, "lgetxattr {} {:?}", p.display(), cn);
        val.truncate(m as usize);
        out.insert(name.to_vec(), val);
    }
    out
}

/// Every entry below `root` (not `root` itself), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut by_ino: HashMap<(u64, u64), Vec<PathBuf>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let kind = if ft.is_dir() {
                'd'
            } else if ft.is_file() {
                '-'
            } else if ft.is_symlink() {
                'l'
            } else if ft.is_block_device() {
                'b'
            } else if ft.is_char_device() {
                'c'
            } else if ft.is_fifo() {
                'p'
            } else {
                's'
            };
            let e = Entry {
                kind,
                perm: (kind != 'l').then_some(m.mode() & 0o7777),
                uid: m.uid(),
                gid: m.gid(),
                mtime: m.mtime(),
                size: matches!(kind, '-' | 'l').then_some(m.size()),
                rdev: matches!(kind, 'b' | 'c')
                    .then(|| (libc::major(m.rdev()), libc::minor(m.rdev()))),
                target: (kind == 'l')
                    .then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
                content: (kind == '-').then(|| digest(&p)),
                xattrs: xattrs(&p),
                link_group: None,
            };
            if kind != 'd' && m.nlink() > 1 {
                by_ino
                    .entry((m.dev(), m.ino()))
                    .or_default()
                    .push(rel.clone());
            }
            if kind == 'd' {
                stack.push(p.clone());
            }
            out.insert(rel, e);
        }
    }
    for mut group in by_ino.into_values() {
        group.sort();
        if group.len() > 1 {
            for p in &group {
                out.get_mut(p).unwrap().link_group = Some(group[0].clone());
            }
        }
    }
    out
}

/// Differences between two snapshots, one line each (empty: equal).
pub fn diff(want: &BTreeMap<PathBuf, Entry>, got: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            None => out.push(format!("missing: {}", p.display())),
            Some(g) if g != w => out.push(format!(
                "differs: {}\n  want {w:?}\n  got  {g:?}",
                p.display()
            )),
            _ => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("unexpected: {}", p.display()));
    }
    out
}

pub fn assert_same(what: &str, want: &BTreeMap<PathBuf, Entry>, got: &BTreeMap<PathBuf, Entry>) {
    let d = diff(want, got);
    assert!(
        d.is_empty(),
        "{what}: {} differences:\n{}",
        d.len(),
        d.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}
