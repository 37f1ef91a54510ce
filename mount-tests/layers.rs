use crate::stack::{build_images, needs_root, Form};
use crate::tree::{assert_same, snapshot, Entry};
use crate::{have, is_root, need_fuse, run, scratch, skip, sqfuse, unmount, Mounted};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel's overlayfs over loop mounts of `images` (top first), or
/// None (with a SKIPPED line) where it cannot be mounted.
pub(crate) struct KernelOverlay {
    lowers: Vec<PathBuf>,
    pub(crate) dir: PathBuf,
}

impl KernelOverlay {
    pub(crate) fn new(images: &[PathBuf], name: &str, extra: &str) -> Option<KernelOverlay> {
        if !is_root() {
            crate::skipped("kernel overlayfs comparison: needs root", false);
            return None;
        }
        let base = scratch("kovl").join(name);
        let mut lowers = Vec::new();
        for (k, img) in images.iter().enumerate() {
            let d = base.join(format!("lower{k}"));
            std::fs::create_dir_all(&d).unwrap();
            let st = Command::new("mount")
                .args(["-t", "squashfs", "-o", "loop,ro"])
                .arg(img)
                .arg(&d)
                .output()
                .unwrap();
            if !st.status.success() {
                crate::skipped(
                    &format!(
                        "kernel overlayfs comparison: loop mount failed: {}",
                        String::from_utf8_lossy(&st.stderr).trim()
                    ),
                    true,
                );
                lowers.iter().for_each(|l: &PathBuf| unmount(l));
                return None;
            }
            lowers.push(d);
        }
        let dir = base.join("merged");
        std::fs::create_dir_all(&dir).unwrap();
        let lowerdir = lowers
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("lowerdir={lowerdir}{extra}"))
            .arg(&dir)
            .output()
            .unwrap();
        let o = KernelOverlay { lowers, dir };
        if !st.status.success() {
            crate::skipped(
                &format!(
                    "kernel overlayfs comparison: mount -t overlay failed: {}",
                    String::from_utf8_lossy(&st.stderr).trim()
                ),
                true,
            );
            return None;
        }
        Some(o)
    }
}

impl Drop for KernelOverlay {
    fn drop(&mut self) {
        unmount(&self.dir);
        for l in &self.lowers {
            unmount(l);
        }
    }
}

/// The merged tree every form must show, written out by hand: what
/// overlayfs semantics make of `stack::stack()`.
fn expected_paths() -> Vec<&'static str> {
    let mut v = vec![
        "a",
        "d",
        "d/m",
        "d/x",
        "d/z",
        "d2f",
        "deep",
        "deep/a",
        "deep/a/b",
        "deep/a/b/c",
        "deep/a/b/c/d",
        "deep/a/b/c/d/e",
        "deep/a/b/c/d/e/file",
        "deep/a/b/mid",
        "deep/a/b/other",
        "e",
        "e/g",
        "f2d",
        "f2d/inside",
        "fdf",
        "h1",
        "h2",
        "hl1",
        "hl3",
        "keep",
        "keep/k",
        "link",
        "op",
        "op/new",
        "t",
    ];
    v.sort_unstable();
    v
}

fn paths(s: &BTreeMap<PathBuf, Entry>) -> Vec<String> {
    s.keys().map(|p| p.display().to_string()).collect()
}

/// Checks what overlayfs semantics promise beyond the kernel's view: the
/// exact names, contents from the right layer, and inode numbers unique
/// across layers but shared by hard links.
pub(crate) fn check_semantics(dir: &Path, s: &BTreeMap<PathBuf, Entry>) {
    assert_eq!(paths(s), expected_paths(), "merged names");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    assert_eq!(read("a"), "mid\n");
    assert_eq!(read("fdf"), "a file again\n");
    assert_eq!(read("d2f"), "was a directory below\n");
    assert_eq!(read("hl3"), "base link\n");
    assert_eq!(
        std::fs::read_link(dir.join("link")).unwrap(),
        Path::new("a")
    );
    let mut by_ino: HashMap<u64, Vec<PathBuf>> = HashMap::new();
    for p in s.keys() {
        let m = std::fs::symlink_metadata(dir.join(p)).unwrap();
        by_ino.entry(m.ino()).or_default().push(p.clone());
    }
    for (ino, mut names) in by_ino {
        names.sort();
        let ok = names.len() == 1
            || names == [PathBuf::from("h1"), PathBuf::from("h2")]
            || names == [PathBuf::from("hl1"), PathBuf::from("hl3")];
        assert!(ok, "inode {ino} shared by {names:?}");
    }
    // A merged directory has one link, as overlayfs says; one that merges
    // nothing (opaque) keeps its own.
    let nlink = |p: &str| std::fs::symlink_metadata(dir.join(p)).unwrap().nlink();
    assert_eq!(nlink("d"), 1);
    assert_eq!(nlink("e"), 2);
}

fn stack_test(form: Form, name: &str, kernel_extra: &str) {
    need_fuse!();
    if needs_root(form) && !is_root() {
        skip!("writing {form:?} whiteouts needs root (devices, trusted xattrs)");
    }
    if !have("mksquashfs") {
        skip!("mksquashfs missing (apt-get install squashfs-tools)");
    }
    let root = scratch("layers").join(name);
    let images = build_images(&root, form);
    let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let m = Mounted::layers(&refs, name, &[]);
    let ours = snapshot(&m.dir);
    check_semantics(&m.dir, &ours);
    if form == Form::Oci {
        return; // the kernel does not read OCI whiteouts; see oci_equals_overlay
    }
    if let Some(k) = KernelOverlay::new(&images, name, kernel_extra) {
        assert_same(
            &format!("{name}: kernel overlayfs vs sqfuse"),
            &snapshot(&k.dir),
            &ours,
        );
    }
}

#[test]
fn device_whiteouts_match_kernel_overlayfs() {
    stack_test(Form::OverlayDevices, "devices", "");
}

#[test]
fn xattr_whiteouts_match_kernel_overlayfs() {
    stack_test(Form::OverlayXattrs, "xattrs", "");
}

#[test]
fn user_xattr_whiteouts_match_kernel_overlayfs_userxattr() {
    stack_test(Form::OverlayUser, "userxattr", ",userxattr");
}

#[test]
fn oci_whiteouts_give_the_merged_tree() {
    stack_test(Form::Oci, "oci", "");
}

/// The OCI form of the stack shows exactly what the overlay form shows.
#[test]
fn oci_equals_overlay() {
    need_fuse!();
    if !is_root() || !have("mksquashfs") {
        skip!("needs root (device whiteouts) and mksquashfs");
    }
    let root = scratch("layers").join("oci-vs-overlay");
    let oci = build_images(&root.join("oci"), Form::Oci);
    let ovl = build_images(&root.join("ovl"), Form::OverlayDevices);
    let a = Mounted::layers(
        &oci.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        "oci-vs-overlay-a",
        &[],
    );
    let b = Mounted::layers(
        &ovl.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        "oci-vs-overlay-b",
        &[],
    );
    assert_same(
        "OCI form vs overlay form",
        &snapshot(&b.dir),
        &snapshot(&a.dir),
    );
}

/// statfs sums the layers; options apply to the merged view.
#[test]
fn statfs_sums_layers_and_options_apply() {
    need_fuse!();
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let root = scratch("layers").join("statfs");
    let images = build_images(&root, Form::Oci);
    let (mut bytes, mut inodes) = (0u64, 0u64);
    for i in &images {
        let sb = std::fs::read(i).unwrap();
        inodes += u64::from(u32::from_le_bytes(sb[4..8].try_into().unwrap()));
        bytes += u64::from_le_bytes(sb[40..48].try_into().unwrap());
    }
    let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let m = Mounted::layers(&refs, "statfs", &["uid=4242", "gid=4343"]);
    let c = std::ffi::CString::new(m.dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    assert_eq!(st.f_files, inodes);
    assert_eq!(st.f_blocks, (bytes - 1) / st.f_bsize + 1);
    let md = std::fs::metadata(m.dir.join("keep/k")).unwrap();
    assert_eq!((md.uid(), md.gid()), (4242, 4343));
    // Layered mounts show their layers in /proc/mounts' source field.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.contains(m.dir.to_str().unwrap()))
        .unwrap();
    assert!(line.contains("layer0.sqfs:"), "{line}");
}

/// A layer that cannot be opened is a one-line error naming it.
#[test]
fn missing_layer_is_a_one_line_error_naming_it() {
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let root = scratch("layers").join("missing");
    let images = build_images(&root, Form::Oci);
    let dir = scratch("mnt").join("missing-layer");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = root.join("nope.sqfs");
    let notimg = root.join("layer0"); // a directory
    for wrong in [&bad, &notimg] {
        let out = sqfuse()
            .arg(&images[0])
            .arg(wrong)
            .arg(&images[2])
            .arg(&dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(wrong.to_str().unwrap()), "{err}");
    }
}

/// Damage in one layer's data is EIO for the files that need it; the rest
/// of the merged tree reads, and the mount stays up.
#[test]
fn corrupt_layer_is_eio_for_its_files_only() {
    need_fuse!();
    if !have("mksquashfs") {
        skip!("mksquashfs missing");
    }
    let root = scratch("layers").join("corrupt");
    let dir = root.join("big");
    std::fs::create_dir_all(&dir).unwrap();
    // Text compresses, so its block is stored compressed and damage to it
    // is detected.
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("blob"), &text).unwrap();
    std::fs::write(dir.join("small"), "fine\n").unwrap();
    let bottom = root.join("bottom.sqfs");
    run(Command::new("mksquashfs").arg(&dir).arg(&bottom).args([
        "-noappend",
        "-quiet",
        "-no-progress",
        "-comp",
        "gzip",
        "-no-fragments",
    ]));
    let image = sqfuse::Image::open(&bottom, &Default::default()).unwrap();
    let (inode, _) = image.lookup_path("blob").unwrap();
    let f = image.open_file(&inode).unwrap();
    let size = f.info().blocks[0].disk_size() as usize;
    let at = f.block_offset(0).unwrap() as usize;
    drop(image);
    let mut img = std::fs::read(&bottom).unwrap();
    for b in &mut img[at + 10..at + size - 10] {
        *b ^= 0x5A;
    }
    std::fs::write(&bottom, &img).unwrap();
    let images = build_images(&root.join("stack"), Form::Oci);
    let m = Mounted::layers(
        &[images[0].as_path(), images[1].as_path(), bottom.as_path()],
        "corrupt-layer",
        &[],
    );
    let e = std::fs::read(m.dir.join("blob")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(
        std::fs::read_to_string(m.dir.join("small")).unwrap(),
        "fine\n"
    );
    assert_eq!(std::fs::read_to_string(m.dir.join("t")).unwrap(), "top\n");
}

/// `pack --layers` from an OCI image umoci made: the layer images mounted
/// by sqfuse, by the kernel's overlayfs over loop mounts, and pushed as
/// they are and mounted from a registry, all show exactly `umoci
/// unpack`'s rootfs; so does the flattened import.
#[test]
fn oci_layers_mounted_equal_umoci_unpack() {
    use crate::common::oci::{have_umoci, layer_tars, umoci_layout, umoci_rootfs};
    need_fuse!();
    if !is_root() || !have_umoci() {
        skip!("needs root and umoci (apt-get install umoci)");
    }
    let root = scratch("oci-layers");
    let tars = layer_tars(&root);
    let layout = umoci_layout(&root, &tars);
    let want = snapshot(&umoci_rootfs(&root, &layout));
    let out = root.join("layers");
    run(sqfuse()
        .args(["pack", "-q", "--layers"])
        .arg(&out)
        .arg(format!("oci:{}:t", layout.display())));
    let list = std::fs::read_to_string(out.join("layers.txt")).unwrap();
    let images: Vec<PathBuf> = list.lines().map(|l| out.join(l)).collect();
    assert_eq!(images.len(), 3, "{list}");
    // Named by the manifest's layer digests.
    for img in &images {
        let hex = img.file_stem().unwrap().to_str().unwrap();
        assert!(layout.join("blobs/sha256").join(hex).exists(), "{hex}");
    }
    let refs: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let m = Mounted::layers(&refs, "oci-layers", &[]);
    let ours = snapshot(&m.dir);
    assert_same("sqfuse over --layers vs umoci unpack", &want, &ours);
    check_semantics(&m.dir, &ours);
    if let Some(k) = KernelOverlay::new(&images, "oci-layers", "") {
        assert_same(
            "kernel overlayfs over --layers vs umoci unpack",
            &want,
            &snapshot(&k.dir),
        );
    }
    // `pack --layers` output pushes as it is, in layers.txt's order, and
    // mounts from the registry as the same tree.
    let Some(reg) = crate::common::registry::Registry::start("oci-layers", None) else {
        crate::skipped(
            "oci layers pushed to a registry: needs docker-registry and skopeo",
            false,
        );
        return;
    };
    let reference = format!("docker://127.0.0.1:{}/sq/layers:v1", reg.port);
    run(sqfuse()
        .args(["push", "--insecure"])
        .args(&images)
        .arg(&reference));
    let r = Mounted::new(
        Path::new(&reference),
        "oci-layers-registry",
        &["insecure", "cache_dir=none"],
    );
    assert_same(
        "registry mount of the pushed --layers vs umoci unpack",
        &want,
        &snapshot(&r.dir),
    );
}
