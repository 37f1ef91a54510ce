//! A container layer stack written out in each whiteout convention, for
//! comparing sqfuse's merged view (and OCI import) with the kernel's
//! overlayfs and umoci.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a layer does to the tree below it.
#[derive(Clone, Debug)]
pub enum Op {
    File(&'static str, &'static str),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    /// A second name for a file of the same layer.
    Hardlink(&'static str, &'static str),
    Xattr(&'static str, &'static str, &'static str),
    Whiteout(&'static str),
    Opaque(&'static str),
}

/// How whiteouts and opaque directories are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// Character devices 0/0 and `trusted.overlay.opaque` (needs root).
    OverlayDevices,
    /// Zero-size files with `trusted.overlay.whiteout`, parents marked `x`
    /// (needs root).
    OverlayXattrs,
    /// `user.overlay.*` xattrs (overlayfs's `userxattr`) and devices 0/0.
    OverlayUser,
    /// `.wh.NAME` and `.wh..wh..opq`.
    Oci,
}

/// The stack every layered test uses, top layer first: files replaced,
/// deleted and brought back, directories merged, opaque, deleted whole,
/// replaced by files and back; hard links, symlinks, xattrs, deep paths.
pub fn stack() -> Vec<Vec<Op>> {
    use Op::*;
    vec![
        vec![
            File("t", "top\n"),
            Xattr("t", "user.foo", "bar"),
            Whiteout("d/y"),
            Dir("f2d"),
            File("f2d/inside", "was a file below\n"),
            File("d2f", "was a directory below\n"),
            File("fdf", "a file again\n"),
            File("h1", "linked\n"),
            Hardlink("h2", "h1"),
            Whiteout("gone_dir"),
            Dir("op"),
            Opaque("op"),
            File("op/new", "only me\n"),
            File("deep/a/b/c/d/e/file", "deep\n"),
            Whiteout("hl2"),
        ],
        vec![
            File("a", "mid\n"),
            File("d/m", "mid in d\n"),
            Dir("e"),
            Opaque("e"),
            File("e/g", "new e\n"),
            Whiteout("wh1"),
            Whiteout("wh2"),
            Dir("d2f"),
            File("d2f/mid", "hidden by a file above\n"),
            File("f2d", "a file, below a directory\n"),
            Dir("fdf"),
            File("fdf/child", "in the middle\n"),
            Symlink("link", "a"),
            File("deep/a/b/mid", "mid deep\n"),
        ],
        vec![
            File("a", "base\n"),
            File("d/x", "base x\n"),
            File("d/y", "base y\n"),
            File("d/z", "base z\n"),
            Xattr("d/z", "user.kept", "yes"),
            File("e/f", "hidden by opaque e\n"),
            File("keep/k", "kept\n"),
            File("wh1", "gone\n"),
            File("wh2", "gone\n"),
            File("gone_dir/sub/file", "gone\n"),
            File("op/old1", "hidden\n"),
            File("op/old2", "hidden\n"),
            File("d2f/q", "hidden\n"),
            File("fdf", "a file at the bottom\n"),
            File("deep/a/b/other", "base deep\n"),
            File("hl1", "base link\n"),
            Hardlink("hl2", "hl1"),
            Hardlink("hl3", "hl1"),
        ],
    ]
}

fn setxattr(p: &Path, name: &str, value: &str) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {} {name}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn mknod_whiteout(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o644, 0) };
    assert_eq!(
        r,
        0,
        "mknod {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Whether `form` needs root to write (devices, trusted xattrs).
pub fn needs_root(form: Form) -> bool {
    form != Form::Oci
}

/// Writes one layer into `dir` in `form`; every entry gets mtime `mtime`.
pub fn write_layer(dir: &Path, ops: &[Op], form: Form, mtime: i64) {
    std::fs::create_dir_all(dir).unwrap();
    let ns = if form == Form::OverlayUser {
        "user"
    } else {
        "trusted"
    };
    let parent_of = |p: &Path| p.parent().unwrap().to_path_buf();
    for op in ops {
        match op {
            Op::File(p, text) => {
                let p = dir.join(p);
                std::fs::create_dir_all(parent_of(&p)).unwrap();
                std::fs::write(&p, text).unwrap();
            }
            Op::Dir(p) => std::fs::create_dir_all(dir.join(p)).unwrap(),
            Op::Symlink(p, target) => {
                let p = dir.join(p);
                std::fs::create_dir_all(parent_of(&p)).unwrap();
                std::os::unix::fs::symlink(target, p).unwrap();
            }
            Op::Hardlink(p, target) => std::fs::hard_link(dir.join(target), dir.join(p)).unwrap(),
            Op::Xattr(p, name, value) => setxattr(&dir.join(p), name, value),
            Op::Whiteout(p) => {
                let p = dir.join(p);
                let parent = parent_of(&p);
                std::fs::create_dir_all(&parent).unwrap();
                match form {
                    Form::Oci => {
                        let name = p.file_name().unwrap().to_str().unwrap();
                        std::fs::write(parent.join(format!(".wh.{name}")), "").unwrap();
                    }
                    Form::OverlayDevices | Form::OverlayUser => mknod_whiteout(&p),
                    Form::OverlayXattrs => {
                        std::fs::write(&p, "").unwrap();
                        setxattr(&p, "trusted.overlay.whiteout", "y");
                        // The kernel looks for xattr whiteouts only in
                        // directories marked so.
                        setxattr(&parent, "trusted.overlay.opaque", "x");
                    }
                }
            }
            Op::Opaque(p) => {
                let p = dir.join(p);
                std::fs::create_dir_all(&p).unwrap();
                match form {
                    Form::Oci => std::fs::write(p.join(".wh..wh..opq"), "").unwrap(),
                    _ => setxattr(&p, &format!("{ns}.overlay.opaque"), "y"),
                }
            }
        }
    }
    let st = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d"])
        .arg(format!("@{mtime}"))
        .args(["{}", "+"])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Writes the stack in `form` below `root` (layer0 top) and packs each
/// layer with mksquashfs; returns the images, top first.
pub fn build_images(root: &Path, form: Form) -> Vec<PathBuf> {
    let mut images = Vec::new();
    for (k, ops) in stack().iter().enumerate() {
        let dir = root.join(format!("layer{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        write_layer(&dir, ops, form, 1_600_000_000);
        let img = root.join(format!("layer{k}.sqfs"));
        super::run(Command::new("mksquashfs").arg(&dir).arg(&img).args([
            "-noappend",
            "-quiet",
            "-no-progress",
            "-processors",
            "1",
        ]));
        images.push(img);
    }
    images
}
