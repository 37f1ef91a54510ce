//! OCI images built from the layer stack (see [`super::stack`]) with umoci,
//! the reference for `sqfuse pack oci:`: layer tarballs with OCI whiteouts,
//! a layout made by `umoci raw add-layer`, and `umoci unpack`'s rootfs.

use super::stack::{stack, write_layer, Form};
use super::{have, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The stack's layers as tarballs in OCI form, top first, with xattrs and
/// numeric owners (as image builders write them).
pub fn layer_tars(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (k, ops) in stack().iter().enumerate() {
        let dir = root.join(format!("layer{k}"));
        let _ = std::fs::remove_dir_all(&dir);
        write_layer(&dir, ops, Form::Oci, 1_600_000_000 + k as i64);
        let tar = root.join(format!("layer{k}.tar"));
        run(Command::new("tar")
            .args([
                "--xattrs",
                "--xattrs-include=*",
                "--numeric-owner",
                "--sort=name",
            ])
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("."));
        out.push(tar);
    }
    out
}

/// Whether umoci is here (the CI installs it); callers skip loudly if not.
pub fn have_umoci() -> bool {
    have("umoci")
}

/// An OCI layout at `root/layout` holding `tars` (top first) as image `:t`,
/// made by umoci (gzip layers).
pub fn umoci_layout(root: &Path, tars: &[PathBuf]) -> PathBuf {
    let layout = root.join("layout");
    let _ = std::fs::remove_dir_all(&layout);
    run(Command::new("umoci")
        .arg("init")
        .arg("--layout")
        .arg(&layout));
    let image = format!("{}:t", layout.display());
    run(Command::new("umoci").args(["new", "--image", &image]));
    for tar in tars.iter().rev() {
        run(Command::new("umoci")
            .args(["raw", "add-layer", "--image", &image])
            .arg(tar));
    }
    layout
}

/// `umoci unpack`'s rootfs of `layout:t` (as root: owners and xattrs kept).
pub fn umoci_rootfs(root: &Path, layout: &Path) -> PathBuf {
    let bundle = root.join("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle));
    bundle.join("rootfs")
}
