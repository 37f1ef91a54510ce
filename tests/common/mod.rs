//! Helpers shared by the integration and mount test harnesses.
#![allow(dead_code)]

pub mod http;
pub mod oci;
pub mod registry;
pub mod stack;
pub mod tarw;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Skips the rest of the current test, saying why (see [`skipped`]).
/// `skip!(machine: ...)` for what this machine's kernel cannot do (no
/// device-mapper, no user namespaces, no loop devices): allowed even where
/// every test must run; anything else (a tool not installed, not root) is
/// a failure there.
#[macro_export]
macro_rules! skip {
    (machine: $($arg:tt)*) => {{
        $crate::skipped(&format!($($arg)*), true);
        return;
    }};
    ($($arg:tt)*) => {{
        $crate::skipped(&format!($($arg)*), false);
        return;
    }};
}

/// Skips: the harness lists them all, with their reasons, when it exits.
static SKIPS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Records that (part of) the current test did not run, and why: a
/// `SKIPPED` line now, and a summary of every skip when the harness exits
/// (printed after cargo's captured output, so it is seen). Where
/// `SQFUSE_NO_SKIPS` is set (`.ci/run` sets it) a skip that is not a
/// `machine_limit` fails the test instead: that machine is meant to run it.
pub fn skipped(reason: &str, machine_limit: bool) {
    static SUMMARY: std::sync::Once = std::sync::Once::new();
    extern "C" fn summary() {
        let skips = SKIPS.lock().map(|s| s.clone()).unwrap_or_default();
        if !skips.is_empty() {
            let mut text = format!("\n{} skipped (their reasons):\n", skips.len());
            for s in skips {
                text.push_str(&format!("  SKIPPED {s}\n"));
            }
            eprint!("{text}");
        }
    }
    SUMMARY.call_once(|| unsafe {
        // SAFETY: registering a plain function to run at exit.
        libc::atexit(summary);
    });
    let test = std::thread::current()
        .name()
        .unwrap_or("(a test)")
        .to_string();
    let reason = reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let kind = if machine_limit { " [machine]" } else { "" };
    eprintln!("SKIPPED {test}: {reason}{kind}");
    let line = format!("{test}: {reason}{kind}");
    // tools/test gathers every harness's skips for its final summary.
    if let Some(log) = std::env::var_os("SQFUSE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
    }
    if let Ok(mut s) = SKIPS.lock() {
        s.push(line);
    }
    if !machine_limit && std::env::var_os("SQFUSE_NO_SKIPS").is_some() {
        panic!("{test} would be skipped ({reason}), but this machine is meant to run it (SQFUSE_NO_SKIPS is set)");
    }
}

/// Other tools' images and archives (tests/corpora, see PROVENANCE.md
/// there), or the copy `SQFUSE_CORPORA` names.
pub fn corpora() -> PathBuf {
    let dir = std::env::var_os("SQFUSE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpora"));
    assert!(
        dir.join("PROVENANCE.md").is_file(),
        "no corpora at {}: tests/corpora is part of the repository (SQFUSE_CORPORA names another copy)",
        dir.display()
    );
    dir
}

/// The binary under test. It reads no registry logins of the user running
/// the tests: the auth files it would read are named, and absent.
pub fn sqfuse() -> Command {
    let none = scratch("no-logins");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqfuse"));
    cmd.env("REGISTRY_AUTH_FILE", none.join("auth.json"))
        .env("DOCKER_CONFIG", &none);
    cmd
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// A scratch directory for this test process (/tmp/sqfuse-test-*),
/// removed when the harness exits, whether tests passed or failed, with
/// whatever is still mounted below it unmounted first. Kept for a look
/// with `SQFUSE_KEEP_TEST_FILES=1`.
pub fn scratch(name: &str) -> PathBuf {
    let base = SCRATCH.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("sqfuse-test-")
            .tempdir()
            .unwrap()
            .keep();
        // SAFETY: registering a plain function to run at exit.
        unsafe { libc::atexit(remove_scratch) };
        dir
    });
    let p = base.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Every mount point /proc/self/mounts lists.
fn mount_points() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        // /proc/mounts escapes spaces and the like as \ooo.
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .collect()
}

/// Mount points at or below `dir`, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

extern "C" fn remove_scratch() {
    let Some(base) = SCRATCH.get() else { return };
    if std::env::var_os("SQFUSE_KEEP_TEST_FILES").is_some() {
        eprintln!("test files kept in {}", base.display());
        return;
    }
    for m in mounts_below(base) {
        detach(&m); // what stays mounted is reported below
    }
    let left = mounts_below(base);
    if !left.is_empty() {
        eprintln!(
            "test files kept in {}: still mounted there: {left:?}",
            base.display()
        );
        return;
    }
    // rm walks any depth and never crosses into another filesystem.
    let _ = Command::new("rm")
        .args(["-rf", "--one-file-system"])
        .arg(base)
        .status();
}

/// The fixture tree from tools/mkfixture.py, built once per test process.
pub fn fixture() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = scratch("fixture").join("tree");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/mkfixture.py");
        let st = Command::new("python3")
            .arg(script)
            .arg(&dir)
            .status()
            .expect("python3 runs");
        assert!(st.success(), "mkfixture.py failed");
        dir
    })
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn image_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The mksquashfs layouts every image-reading test covers: each compressor
/// (xz with a BCJ filter), the smallest and largest block sizes, and each
/// layout option. `layout_tests!(f)` makes one `#[test]` per layout calling
/// `f(name, &mksquashfs_options)`.
#[macro_export]
macro_rules! layout_tests {
    ($f:ident) => {
        $crate::layout_tests!(@each $f;
            gzip: ["-comp", "gzip"];
            lzo: ["-comp", "lzo"];
            lz4: ["-comp", "lz4"];
            xz_bcj: ["-comp", "xz", "-Xbcj", "x86"];
            zstd: ["-comp", "zstd"];
            block_4k: ["-comp", "gzip", "-b", "4096"];
            block_1m: ["-comp", "zstd", "-b", "1048576"];
            uncompressed: ["-noI", "-noD", "-noF", "-noX"];
            no_fragments: ["-no-fragments"];
            always_fragments: ["-always-use-fragments"];
            no_xattrs: ["-no-xattrs"];
            no_exports: ["-no-exports"];
        );
    };
    (@each $f:ident; $($name:ident: $opts:expr;)*) => {$(
        #[test]
        fn $name() {
            $f(stringify!($name), &$opts);
        }
    )*};
}

/// What an image of the fixture made with these mksquashfs options should
/// hold: the fixture itself, without xattrs under `-no-xattrs`.
pub fn expected_fixture(
    mksquashfs_opts: &[&str],
) -> std::collections::BTreeMap<PathBuf, tree::Entry> {
    let mut want = tree::snapshot(fixture());
    if mksquashfs_opts.contains(&"-no-xattrs") {
        for e in want.values_mut() {
            e.xattrs.clear();
        }
    }
    want
}

pub fn is_mounted(p: &Path) -> bool {
    let want = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    mount_points().contains(&want)
}

/// Unmounts `p` lazily; whether that worked.
fn detach(p: &Path) -> bool {
    let st = if is_root() {
        Command::new("umount").arg("-l").arg(p).status()
    } else {
        Command::new("fusermount3").arg("-uz").arg(p).status()
    };
    st.is_ok_and(|s| s.success())
}

pub fn unmount(p: &Path) {
    if is_mounted(p) {
        assert!(detach(p), "unmount {}", p.display());
    }
}

/// A kernel loop mount of `image`, if this machine allows one.
pub struct KernelMount {
    pub dir: PathBuf,
}

impl KernelMount {
    /// None (the skip recorded) where it cannot be made.
    pub fn new(image: &Path, name: &str) -> Option<KernelMount> {
        if !is_root() {
            skipped("kernel comparison: loop mounts need root", false);
            return None;
        }
        let dir = scratch("kmnt").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "squashfs", "-o", "loop,ro"])
            .arg(image)
            .arg(&dir)
            .output()
            .ok()?;
        if !st.status.success() {
            skipped(
                &format!(
                    "kernel comparison: mount -o loop failed: {}",
                    String::from_utf8_lossy(&st.stderr).trim()
                ),
                true,
            );
            return None;
        }
        Some(KernelMount { dir })
    }
}

impl Drop for KernelMount {
    fn drop(&mut self) {
        unmount(&self.dir);
    }
}

/// Why another user cannot mount through fusermount3 here, if they
/// cannot: /dev/fuse not open to them (containers often make it 0600;
/// distributions ship 0666). A fact of the machine, not of the test.
pub fn fuse_closed_to_others() -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/dev/fuse").ok()?.permissions().mode() & 0o777;
    (mode & 0o006 != 0o006).then(|| {
        format!(
            "/dev/fuse is {mode:04o} here: other users cannot open it (distributions ship 0666)"
        )
    })
}

/// Lets the `nobody` user reach everything below `dir` and run the test
/// binary: o+x on every ancestor (scratch directories live under /tmp).
pub fn reachable_by_nobody(dir: &Path) {
    let mut p = dir.to_path_buf();
    while p.parent().is_some() {
        let _ = Command::new("chmod").arg("o+x").arg(&p).status();
        p.pop();
    }
}

/// A command run as `nobody` (uid and gid 65534, no groups) via setpriv.
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(program);
    c
}

/// `img` reads back as `want` through our reader (check passes, extract
/// equals `want`) and through unsquashfs (its extraction equals `want`).
pub fn assert_reads_back(
    name: &str,
    img: &Path,
    want: &std::collections::BTreeMap<PathBuf, tree::Entry>,
) {
    let out = sqfuse().arg("check").arg(img).output().unwrap();
    assert!(
        out.status.success(),
        "{name}: check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ours = scratch("reads-back").join(format!("{name}-sqfuse"));
    run(sqfuse().arg("extract").arg(img).arg(&ours));
    tree::assert_same(
        &format!("{name}: sqfuse extract vs expected"),
        want,
        &tree::snapshot(&ours),
    );
    if have("unsquashfs") {
        let theirs = scratch("reads-back").join(format!("{name}-unsquashfs"));
        run(Command::new("unsquashfs")
            .args(["-no-progress", "-quiet", "-d"])
            .arg(&theirs)
            .arg(img));
        tree::assert_same(
            &format!("{name}: unsquashfs vs expected"),
            want,
            &tree::snapshot(&theirs),
        );
    } else {
        skipped(
            &format!("unsquashfs check for {name}: squashfs-tools missing"),
            false,
        );
    }
}

/// The sqfuse binary under another tool's name (a symlink in a directory of
/// its own, also reachable by `nobody`), so it takes that tool's command line.
pub fn personality(name: &str) -> PathBuf {
    let dir = scratch("personalities");
    let link = dir.join(name);
    if std::fs::symlink_metadata(&link).is_err() {
        let tmp = dir.join(format!("{name}.tmp-{:?}", std::thread::current().id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sqfuse"), &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    }
    link
}

/// `n` bytes of xorshift64 noise from `seed` (incompressible, repeatable).
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
