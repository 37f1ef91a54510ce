//! The lines build systems run (read from their sources, see
//! ../shared/docs/build-systems.md), each through squashfs-tools 4.7.5 and
//! through sqfuse under the tool's name: the images compared by listing,
//! superblock, extraction and (as root) the kernel's mount, entry by entry.

use crate::personality::{both, both_tool, both_with_input, superblock};
use crate::{fixture, have, personality, run, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

fn need_tools() -> bool {
    if !have("mksquashfs") || !have("unsquashfs") {
        crate::skipped("build-system lines: squashfs-tools missing", false);
        return false;
    }
    true
}

/// NixOS and Charliecloud leave the time of pseudo entries to the clock;
/// SOURCE_DATE_EPOCH (as their builds set it) makes both runs agree.
const SDE: &[(&str, &str)] = &[("SOURCE_DATE_EPOCH", "1700000000")];

/// Where sqfuse claims squashfs-tools' bytes (README), it gives them.
fn same_bytes(name: &str, real: &Path, ours: &Path) {
    let (a, b) = (std::fs::read(real).unwrap(), std::fs::read(ours).unwrap());
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "{name}: not the same bytes as mksquashfs ({} vs {} bytes, first difference at {first:?})",
        a.len(),
        b.len()
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn openwrt_pseudo_devices_nopad_root_owned() {
    if !need_tools() {
        return;
    }
    // OpenWrt's rules.mk exports SOURCE_DATE_EPOCH to every build step:
    // the pseudo directory's time is that, not the clock (with the clock,
    // two runs a second apart made other bytes).
    let (real, ours) = both_with_input(
        "openwrt",
        &[
            "{SRC}",
            "{IMG}",
            "-nopad",
            "-noappend",
            "-root-owned",
            "-comp",
            "xz",
            "-Xbcj",
            "arm",
            "-b",
            "256k",
            "-p",
            "/dev d 755 0 0",
            "-p",
            "/dev/console c 600 0 0 5 1",
            "-no-xattrs",
            "-block-readers",
            "2",
            "-small-readers",
            "2",
        ],
        &[fixture()],
        None,
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    same_bytes("openwrt", &real, &ours);
}

#[test]
fn nixos_many_sources_keep_as_directory_pseudo_links() {
    if !need_tools() {
        return;
    }
    let f = fixture();
    let a = f.join("data");
    let b = f.join("sizes");
    let c = f.join("links");
    let (real, ours) = both_with_input(
        "nixos",
        &[
            "{SRC}",
            "{IMG}",
            "-p",
            "/nix d 0755 0 0",
            "-p",
            "/nix/store d 0755 0 0",
            "-p",
            "/bin s 0777 0 0 /nix/store/x/bin",
            "-no-hardlinks",
            "-keep-as-directory",
            "-all-root",
            "-b",
            "1048576",
            "-comp",
            "xz",
            "-Xdict-size",
            "100%",
            "-Xbcj",
            "x86",
            "-processors",
            "2",
            "-root-mode",
            "0755",
        ],
        &[&a, &b, &c],
        None,
        SDE,
    );
    same_bytes("nixos", &real, &ours);
    both(
        "nixos-no-strip",
        &[
            "{SRC}",
            "{IMG}",
            "-no-strip",
            "-keep-as-directory",
            "-all-root",
            "-comp",
            "xz",
            "-root-mode",
            "0755",
            "-mkfs-time",
            "1",
        ],
        &[&a],
    );
}

#[test]
fn charliecloud_pseudo_file_of_directories_and_files() {
    if !need_tools() {
        return;
    }
    let dir = scratch("build-lines").join("charliecloud");
    let list = write(
        &dir,
        "list",
        "ch d 755 root root\nch/environment f 644 root root true\ndev d 755 root root\n\
         mnt/0 d 755 root root\n",
    );
    let (real, ours) = both_with_input(
        "charliecloud",
        &[
            "{SRC}",
            "{IMG}",
            "-xattrs",
            "-b",
            "65536",
            "-noappend",
            "-all-root",
            "-pf",
            &list,
            "-pd",
            "d 755 0 0",
        ],
        &[fixture()],
        None,
        SDE,
    );
    same_bytes("charliecloud", &real, &ours);
}

#[test]
fn enroot_lzo_uncompressed_data_to_a_new_file() {
    if !need_tools() {
        return;
    }
    // Never -noappend: the output does not exist, and is simply created.
    both(
        "enroot",
        &[
            "{SRC}",
            "{IMG}",
            "-mkfs-time",
            "5",
            "-all-time",
            "5",
            "-all-root",
            "-no-progress",
            "-processors",
            "2",
            "-comp",
            "lzo",
            "-noD",
            "-exit-on-error",
        ],
        &[fixture()],
    );
}

#[test]
fn apptainer_percentage_and_encrypted_layout() {
    if !need_tools() {
        return;
    }
    both(
        "apptainer-encrypted",
        &[
            "{SRC}",
            "{IMG}",
            "-noappend",
            "-noD",
            "-noF",
            "-comp",
            "gzip",
            "-quiet",
            "-mkfs-time",
            "0",
        ],
        &[&fixture().join("data"), &fixture().join("sizes")],
    );
    // -percentage: numbers, one a line, rising to 100.
    let img = scratch("build-lines").join("percentage.sqfs");
    let out = run(Command::new(personality("mksquashfs"))
        .arg(fixture())
        .arg(&img)
        .args(["-noappend", "-percentage"]));
    let nums: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim()
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {l:?}"))
        })
        .collect();
    assert_eq!(nums.last(), Some(&100), "{nums:?}");
    assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    // -version's first line: "mksquashfs version X.Y.Z", X.Y.Z >= 4.6.0.
    let out = run(Command::new(personality("mksquashfs")).arg("-version"));
    let text = String::from_utf8_lossy(&out.stdout);
    let w: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(&w[..2], ["mksquashfs", "version"]);
    let v: Vec<u32> = w[2].split('.').map(|n| n.parse().unwrap()).collect();
    assert!(v >= vec![4, 6, 0], "{v:?}");
}

#[test]
fn live_build_and_buildroot_x_options_before_comp() {
    if !need_tools() {
        return;
    }
    both(
        "live-build-zstd",
        &[
            "{SRC}",
            "{IMG}",
            "-Xcompression-level",
            "19",
            "-comp",
            "zstd",
            "-mkfs-time",
            "0",
        ],
        &[fixture()],
    );
    for (name, x) in [
        (
            "buildroot-gzip",
            &["-Xcompression-level", "9", "-comp", "gzip"][..],
        ),
        ("buildroot-lz4", &["-Xhc", "-comp", "lz4"]),
        ("buildroot-xz", &["-Xbcj", "arm,armthumb", "-comp", "xz"]),
        (
            "gzip-window",
            &[
                "-comp",
                "gzip",
                "-Xwindow-size",
                "10",
                "-Xstrategy",
                "default,filtered",
            ],
        ),
    ] {
        let mut line = vec![
            "{SRC}",
            "{IMG}",
            "-noappend",
            "-processors",
            "2",
            "-b",
            "128K",
            "-mkfs-time",
            "0",
        ];
        line.extend_from_slice(x);
        let (real, ours) = both(name, &line, &[fixture()]);
        same_bytes(name, &real, &ours);
    }
}

#[test]
fn guix_appends_root_becomes_and_pseudo_passes() {
    if !need_tools() {
        return;
    }
    let dir = scratch("build-lines").join("guix");
    let empty = dir.join(".empty");
    std::fs::create_dir_all(&empty).unwrap();
    let common = [
        "-no-recovery",
        "-no-xattrs",
        "-all-time",
        "1",
        "-mkfs-time",
        "1",
        "-force-uid",
        "0",
        "-force-gid",
        "0",
    ];
    let mut images = Vec::new();
    for (who, bin) in [
        ("real", PathBuf::from("mksquashfs")),
        ("ours", personality("mksquashfs")),
    ] {
        let img = dir.join(format!("{who}.sqfs"));
        let _ = std::fs::remove_file(&img);
        let passes: Vec<Vec<String>> = vec![
            vec![
                fixture().join("data").display().to_string(),
                fixture().join("sizes").display().to_string(),
                "-no-duplicates".into(),
                "-comp".into(),
                "gzip".into(),
            ],
            vec![
                empty.display().to_string(),
                "-root-becomes".into(),
                "store".into(),
            ],
            vec![
                empty.display().to_string(),
                "-root-becomes".into(),
                "gnu".into(),
            ],
            vec![
                empty.display().to_string(),
                "-p".into(),
                "/bin s 777 0 0 gnu/store/bin".into(),
                "-p".into(),
                "/proc d 555 0 0".into(),
            ],
        ];
        for p in passes {
            let (srcs, opts): (Vec<String>, Vec<String>) = {
                let k = p.iter().position(|a| a.starts_with('-')).unwrap_or(p.len());
                (p[..k].to_vec(), p[k..].to_vec())
            };
            run(Command::new(&bin)
                .args(&srcs)
                .arg(&img)
                .args(&opts)
                .args(common));
        }
        images.push(img);
    }
    let (real, ours) = (&images[0], &images[1]);
    let l = |i: &Path| {
        String::from_utf8_lossy(
            &run(Command::new("unsquashfs")
                .args(["-lln", "-UTC", "-d", "r"])
                .arg(i))
            .stdout,
        )
        .into_owned()
    };
    assert_eq!(l(real), l(ours), "guix: the appended images list the same");
    assert_eq!(superblock(real, true), superblock(ours, true));
    // Appending lays the image out anew (mksquashfs keeps the old data
    // in place): the same tree, not the same bytes.
}

#[test]
fn snapd_delta_rebuild_from_unsquashfs_pseudo_file() {
    if !need_tools() {
        return;
    }
    let dir = scratch("build-lines").join("snapd");
    std::fs::create_dir_all(&dir).unwrap();
    let snap = dir.join("orig.snap");
    run(Command::new("mksquashfs")
        .arg(fixture().join("data"))
        .arg(&snap)
        .args([
            "-noappend",
            "-comp",
            "xz",
            "-no-fragments",
            "-all-root",
            "-no-xattrs",
            "-mkfs-time",
            "7",
            "-quiet",
        ]));
    let pf = dir.join("snap.pf");
    run(Command::new("unsquashfs").arg("-pf").arg(&pf).arg(&snap));
    let pf = pf.display().to_string();
    let (_, ours) = both_with_input(
        "snapd-delta",
        &[
            "-",
            "{IMG}",
            "-pf",
            &pf,
            "-noappend",
            "-quiet",
            "-comp",
            "xz",
            "-no-fragments",
            "-no-xattrs",
            "-mkfs-time",
            "7",
        ],
        &[],
        None,
        &[],
    );
    // What snapd needs: the original snap back, byte for byte.
    same_bytes("snapd-delta", &snap, &ours);
    // The same pseudo file on standard input.
    let (_, ours) = both_with_input(
        "snapd-delta-stdin",
        &[
            "-",
            "{IMG}",
            "-pf",
            "-",
            "-noappend",
            "-quiet",
            "-comp",
            "xz",
            "-no-fragments",
            "-no-xattrs",
            "-mkfs-time",
            "7",
        ],
        &[],
        Some(Path::new(&pf)),
        &[],
    );
    same_bytes("snapd-delta-stdin", &snap, &ours);
}

#[test]
fn pseudo_definition_errors_name_the_place_and_change_nothing() {
    let dir = scratch("build-lines").join("pseudo-errors");
    let pf = write(&dir, "bad.pf", "a d 755 0 0\nb c 600 0 0 5\n");
    let img = dir.join("out.sqfs");
    std::fs::write(&img, b"keep").unwrap();
    for (args, says) in [
        (
            vec!["-pf".to_string(), pf.clone()],
            format!("{pf}:2: minor is missing"),
        ),
        (
            vec!["-p".into(), "x/y f 644 0 0 true".into()],
            "/x does not exist".into(),
        ),
        (
            vec!["-p".into(), "x f 644 0 0 exit 3".into()],
            "exit status: 3".into(),
        ),
        (vec!["-p".into(), "x q".into()], "type \"q\"".into()),
        (
            vec!["-p".into(), "x/../../etc d 755 0 0".into()],
            "cannot be a name".into(),
        ),
        (
            vec!["-p".into(), format!("{} d 755 0 0", "d/".repeat(3000))],
            "deeper than".into(),
        ),
    ] {
        let out = Command::new(personality("mksquashfs"))
            .arg(fixture())
            .arg(&img)
            .arg("-noappend")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&says), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&img).unwrap(),
            b"keep",
            "{args:?}: the old file is left"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn append_refuses_what_it_cannot_read_or_recompress() {
    let dir = scratch("build-lines").join("append-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("not-an-image");
    std::fs::write(&img, b"this is not squashfs").unwrap();
    let out = Command::new(personality("mksquashfs"))
        .arg(fixture())
        .arg(&img)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("cannot append") && err.contains("-noappend"),
        "{err}"
    );
    assert_eq!(std::fs::read(&img).unwrap(), b"this is not squashfs");
    let gz = dir.join("gzip.sqfs");
    run(Command::new(personality("mksquashfs"))
        .arg(fixture().join("data"))
        .arg(&gz)
        .args(["-noappend", "-quiet"]));
    let before = std::fs::read(&gz).unwrap();
    let out = Command::new(personality("mksquashfs"))
        .arg(fixture().join("sizes"))
        .arg(&gz)
        .args(["-comp", "xz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compressed with gzip"));
    assert_eq!(
        std::fs::read(&gz).unwrap(),
        before,
        "the image is untouched"
    );
}

/// An OCI-style layer: whiteout devices, an opaque directory (its
/// `SCHILY.xattr.trusted.overlay.opaque` record), a member whose parent
/// is not in the archive.
fn layer_tar(dir: &Path) -> PathBuf {
    let src = dir.join("layer");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::create_dir_all(src.join("opq")).unwrap();
    std::fs::create_dir_all(src.join("deep/er")).unwrap();
    std::fs::write(src.join("etc/a"), "a\n").unwrap();
    std::fs::write(src.join("deep/er/f.c"), "int x;\n").unwrap();
    std::fs::write(src.join("deep/er/g"), "g\n").unwrap();
    run(Command::new("mknod")
        .arg(src.join("etc/gone"))
        .args(["c", "0", "0"]));
    run(Command::new("setfattr")
        .args(["-n", "trusted.overlay.opaque", "-v", "y"])
        .arg(src.join("opq")));
    let tar = dir.join("layer.tar");
    // ./deep is left out: deep/er comes without its parent.
    run(Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--format=pax",
            "--no-recursion",
            "-C",
        ])
        .arg(&src)
        .arg("-cf")
        .arg(&tar)
        .args([
            ".",
            "etc",
            "etc/a",
            "etc/gone",
            "opq",
            "deep/er",
            "deep/er/f.c",
            "deep/er/g",
        ]));
    tar
}

#[test]
fn singularity_oci_layers_through_sqfstar_and_tar2sqfs() {
    if !need_tools() {
        return;
    }
    if !crate::is_root() || !have("setfattr") || !have("tar2sqfs") {
        crate::skipped(
            "sqfstar/tar2sqfs layers: need root (whiteout devices, trusted xattrs), setfattr and squashfs-tools-ng",
            !crate::is_root(),
        );
        return;
    }
    let dir = scratch("build-lines").join("oci-layers");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = layer_tar(&dir);
    let (real, ours) = both_tool(
        "sqfstar",
        "sqfstar-layer",
        &[
            "-mkfs-time",
            "0",
            "-root-time",
            "0",
            "-root-uid",
            "0",
            "-root-gid",
            "0",
            "-root-mode",
            "0755",
            "{IMG}",
        ],
        &[],
        Some(&tar),
    );
    let _ = (real, ours);
    both_tool(
        "sqfstar",
        "sqfstar-excludes",
        &["-mkfs-time", "0", "{IMG}", "... *.c"],
        &[],
        Some(&tar),
    );
    both_tool(
        "tar2sqfs",
        "tar2sqfs-layer",
        &["--compressor", "gzip", "{IMG}"],
        &[],
        Some(&tar),
    );
    both_tool(
        "tar2sqfs",
        "tar2sqfs-defaults",
        &["-q", "-d", "uid=7,mode=0700,mtime=5", "-c", "xz", "{IMG}"],
        &[],
        Some(&tar),
    );
}

/// Buildroot and Yocto pack inside an LD_PRELOAD fakeroot, as an
/// unprivileged user: owners and device nodes exist only in fakeroot's
/// database. Both tools run in one fakeroot session and must record them
/// (and, gzip being the same bytes, make the same image).
#[test]
fn buildroot_under_fakeroot_records_fake_owners_and_devices() {
    if !need_tools() {
        return;
    }
    if !have("fakeroot") {
        crate::skipped("fakeroot test: fakeroot missing", false);
        return;
    }
    let dir = scratch("build-lines").join("fakeroot");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "set -e; cd '{d}'; rm -rf src; mkdir -p src/dev src/usr; echo hi > src/usr/f; \
         chown 1234:5678 src/usr/f; chmod 4755 src/usr/f; mknod src/dev/console c 5 1; \
         mknod src/dev/sda b 8 0; chown 0:6 src/dev/sda; \
         mksquashfs src real.sqfs -noappend -processors 1 -b 128K -comp gzip -mkfs-time 0 -quiet -no-progress; \
         '{ours}' src ours.sqfs -noappend -processors 1 -b 128K -comp gzip -mkfs-time 0 -quiet",
        d = dir.display(),
        ours = personality("mksquashfs").display()
    );
    let mut cmd = Command::new("fakeroot");
    cmd.args(["sh", "-c", &script]);
    if crate::is_root() {
        // As Buildroot runs it: an ordinary user, not root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut wrapped = Command::new("setpriv");
        wrapped
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "fakeroot",
                "sh",
                "-c",
            ])
            .arg(&script);
        cmd = wrapped;
    }
    run(&mut cmd);
    let l = |i: &str| {
        String::from_utf8_lossy(
            &run(Command::new("unsquashfs")
                .args(["-lln", "-UTC", "-d", "r"])
                .arg(dir.join(i)))
            .stdout,
        )
        .into_owned()
    };
    let (real, ours) = (l("real.sqfs"), l("ours.sqfs"));
    assert_eq!(real, ours, "under fakeroot: the listings differ");
    for want in ["-rwsr-xr-x 1234/5678", "crw-r--r-- 0/0", "brw-r--r-- 0/6"] {
        assert!(ours.contains(want), "fakeroot's {want:?} missing:\n{ours}");
    }
    same_bytes("fakeroot", &dir.join("real.sqfs"), &dir.join("ours.sqfs"));
}

/// archiso: a single sparse image file as the only source, with
/// SOURCE_DATE_EPOCH set: the same bytes as mksquashfs (holes kept).
#[test]
fn archiso_single_sparse_image_file() {
    if !need_tools() {
        return;
    }
    let dir = scratch("build-lines").join("archiso");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("airootfs.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&img).unwrap();
        f.set_len(64 << 20).unwrap();
        for (at, byte) in [
            (0u64, 1u8),
            (5 << 20, 2),
            (33 << 20, 3),
            ((64 << 20) - 4096, 4),
        ] {
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&vec![byte; 70_000]).unwrap();
        }
    }
    let (real, ours) = both_with_input(
        "archiso",
        &[
            "{SRC}",
            "{IMG}",
            "-noappend",
            "-comp",
            "xz",
            "-Xbcj",
            "x86",
            "-b",
            "1M",
            "-Xdict-size",
            "1M",
            "-no-progress",
            "-quiet",
        ],
        &[&img],
        None,
        SDE,
    );
    same_bytes("archiso", &real, &ours);
}

/// Gentoo catalyst's `gensquashfs -D DIR -q OUT`, and a pack file with
/// every kind of entry gensquashfs's help shows.
#[test]
fn catalyst_gensquashfs_directory_and_pack_file() {
    if !need_tools() {
        return;
    }
    if !have("gensquashfs") {
        crate::skipped("gensquashfs lines: squashfs-tools-ng missing", false);
        return;
    }
    both_tool(
        "gensquashfs",
        "gensquashfs-dir",
        &["-D", "{SRC}", "-q", "{IMG}"],
        &[&fixture().join("data")],
        None,
    );
    let dir = scratch("build-lines").join("packfile");
    std::fs::create_dir_all(dir.join("init/sbin")).unwrap();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join("init/sbin/init"), "init\n").unwrap();
    std::fs::write(dir.join("bin/bash"), "bash\n").unwrap();
    let list = write(
        &dir,
        "list",
        "# A simple squashfs image\ndir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n\
         dir /root 0700 0 0\nslink /lib 0777 0 0 /usr/lib\nfile /sbin/init 0755 0 0 init/sbin/init\n\
         link /init 0777 0 0 /sbin/init\nfile /bin/bash 0755 0 0\npipe /p 0644 1 2\n\
         file \"/opt/my app/data\" 0600 0 0 bin/bash\n",
    );
    both_tool(
        "gensquashfs",
        "gensquashfs-packfile",
        &["-q", "-F", &list, "-c", "gzip", "{IMG}"],
        &[],
        None,
    );
}

/// sqfs2tar's archive of an image lists as squashfs-tools-ng's does
/// (`tar -tv`: types, modes, owners, sizes, times, link targets, hard
/// links), whole, compressed, and for one subdirectory.
#[test]
fn sqfs2tar_archives_list_the_same() {
    if !have("sqfs2tar") || !have("mksquashfs") {
        crate::skipped(
            "sqfs2tar: squashfs-tools-ng or squashfs-tools missing",
            false,
        );
        return;
    }
    let dir = scratch("build-lines").join("sqfs2tar");
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("img.sqfs");
    run(Command::new("mksquashfs").arg(fixture()).arg(&img).args([
        "-noappend",
        "-quiet",
        "-no-progress",
    ]));
    for (k, args) in [
        &[][..],
        &["-c", "gzip"],
        &["-k", "-d", "/data", "--no-xattr"],
        &["-d", "/links", "-L", "-k"],
        &["-r", "top"],
    ]
    .iter()
    .enumerate()
    {
        let list = |bin: PathBuf| {
            let tar = dir.join(format!("{k}.tar"));
            let out = run(Command::new(bin).args(*args).arg(&img));
            std::fs::write(&tar, &out.stdout).unwrap();
            String::from_utf8_lossy(&run(Command::new("tar").arg("-tvf").arg(&tar)).stdout)
                .into_owned()
        };
        let (real, ours) = (
            list(PathBuf::from("sqfs2tar")),
            list(personality("sqfs2tar")),
        );
        assert!(real.lines().count() > 5, "{args:?}: {real}");
        assert_eq!(real, ours, "sqfs2tar {args:?}: tar -tv differs");
    }
}

/// mksquashfs's xattr options: filtered by name, added to every entry
/// (`user.` ones to files and directories only): the same bytes.
#[test]
fn xattr_filters_and_additions_as_mksquashfs() {
    if !need_tools() {
        return;
    }
    for (k, opts) in [
        &[
            "-xattrs-exclude",
            "^trusted\\.",
            "-xattrs-add",
            "user.added=0x4142",
            "-xattrs-add",
            "security.s=v",
        ][..],
        &["-xattrs-include", "^user\\."],
        &["-xattrs-add", "user.t=0thi\\001"],
    ]
    .iter()
    .enumerate()
    {
        let mut line = vec!["{SRC}", "{IMG}", "-noappend", "-mkfs-time", "0"];
        line.extend_from_slice(opts);
        let name = format!("xattr-options-{k}");
        let (real, ours) = both(&name, &line, &[fixture()]);
        same_bytes(&name, &real, &ours);
    }
}
