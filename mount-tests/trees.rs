use crate::tree::{assert_same, snapshot};
use crate::{
    corpora, fixture_image, image_files, need_fuse, run, scratch, sqfuse, KernelMount, Mounted,
};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// stat fields the kernel shows, per path: (ino, nlink, size, blocks, mode, uid, gid, mtime, rdev).
type Stat = (u64, u64, u64, u64, u32, u32, u32, i64, u64);

fn stats(root: &Path) -> BTreeMap<PathBuf, Stat> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            let s = (
                m.ino(),
                m.nlink(),
                m.size(),
                m.blocks(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.rdev(),
            );
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), s);
        }
    }
    out
}

fn statfs(p: &Path) -> (u64, u64, u64, u64) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    (s.f_bsize, s.f_blocks, s.f_files, s.f_namemax)
}

/// Our mount against the kernel's: every stat field, statfs, and readdir order.
fn compare_with_kernel(name: &str, image: &Path, ours: &Path) {
    let Some(k) = KernelMount::new(image, name) else {
        return;
    };
    let (want, got) = (stats(&k.dir), stats(ours));
    assert_eq!(want.len(), got.len(), "{name}: entry counts");
    let root_ino = std::fs::metadata(&k.dir).unwrap().ino();
    for (p, w) in &want {
        let g = got
            .get(p)
            .unwrap_or_else(|| panic!("{name}: {} missing", p.display()));
        // Node 1 is the root in FUSE: the root and image inode 1 trade numbers.
        let ino_ok = w.0 == g.0 || w.0 == 1 || w.0 == root_ino;
        let rest = |s: &Stat| (s.1, s.2, s.3, s.4, s.5, s.6, s.7, s.8);
        assert!(
            ino_ok && rest(w) == rest(g),
            "{name}: {} kernel {w:?} sqfuse {g:?}",
            p.display()
        );
    }
    assert_eq!(statfs(&k.dir), statfs(ours), "{name}: statfs");
    let order = |d: &Path| -> Vec<_> {
        std::fs::read_dir(d.join("big-dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    if k.dir.join("big-dir").exists() {
        assert_eq!(order(&k.dir), order(ours), "{name}: readdir order");
    }
    // Device numbers and xattrs of special files come through too.
    assert_same(
        &format!("{name}: kernel vs sqfuse"),
        &snapshot(&k.dir),
        &snapshot(ours),
    );
}

fn mounted_equals_source(name: &str, opts: &[&str]) {
    need_fuse!();
    let Some(img) = fixture_image(name, opts) else {
        return;
    };
    let m = Mounted::new(&img, name, &[]);
    let want = crate::expected_fixture(opts);
    assert_same(
        &format!("{name}: sqfuse mount vs source"),
        &want,
        &snapshot(&m.dir),
    );
    compare_with_kernel(name, &img, &m.dir);
}

crate::layout_tests!(mounted_equals_source);

/// Every corpus image mounts and shows what `sqfuse extract` (checked
/// against unsquashfs elsewhere) produces.
#[test]
fn every_corpus_image_mounts() {
    need_fuse!();
    let dir = corpora().join("images");
    let images: Vec<_> = image_files(&dir)
        .into_iter()
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("sqfs" | "sqs" | "img" | "bin" | "squashfs")
            )
        })
        .collect();
    assert!(images.len() >= 40);
    for (n, img) in images.iter().enumerate() {
        let dest = scratch("corpus-extract").join(format!("{n}"));
        run(sqfuse().arg("extract").arg(img).arg(&dest));
        let m = Mounted::new(img, &format!("corpus{n}"), &[]);
        assert_same(
            &format!("{}: mount vs extract", img.display()),
            &snapshot(&dest),
            &snapshot(&m.dir),
        );
        if img.to_string_lossy().contains("lzma") {
            continue; // the kernel cannot read legacy lzma; we can
        }
        if let Some(k) = KernelMount::new(img, &format!("corpus{n}")) {
            assert_same(
                &format!("{}: kernel vs sqfuse", img.display()),
                &snapshot(&k.dir),
                &snapshot(&m.dir),
            );
        }
    }
}
