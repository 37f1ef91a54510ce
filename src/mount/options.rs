//! `-o` mount options: squashfuse_ll's names, plus the generic options that
//! mount(8) and /etc/fstab pass through mount.fuse3.

use crate::reader::remote::RemoteSetting;
pub use crate::reader::Offset;
use std::path::PathBuf;

/// The cache budget when `cache_mb=` is not given.
pub const DEFAULT_CACHE_MB: u64 = 32;
/// ...unless an image's blocks are so large that this many of them need
/// more: a cold launch from a 1 MiB-block image decompressed each fragment
/// block several times with 16 of them cached.
pub const DEFAULT_CACHE_BLOCKS: u64 = 128;
/// `fill_ahead_kb=` when not given.
pub const DEFAULT_FILL_AHEAD_KB: u64 = 2048;

/// The writable layer of a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpperChoice {
    /// This directory (kept after unmount).
    Dir(PathBuf),
    /// A private directory made for the mount and removed at unmount.
    Temporary,
}

/// Every `-o` option, parsed and checked; [`MountOpts::apply`] reads an option list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    /// Where the superblock is in IMAGE (`offset=`).
    pub offset: Offset,
    /// Mount this directory of the image instead of its root.
    pub subdir: Option<String>,
    /// Show every entry as owned by this uid.
    pub uid: Option<u32>,
    /// Show every entry as in this group.
    pub gid: Option<u32>,
    /// Unmount after this many idle seconds with nothing open.
    pub idle_timeout: Option<u64>,
    /// A FIFO to write `s` to once mounted, `f` on failure.
    pub notify_pipe: Option<PathBuf>,
    /// Let other users in (`allow_other`).
    pub allow_other: bool,
    /// Let root in (`allow_root`).
    pub allow_root: bool,
    /// Have fusermount3 unmount when the server is gone.
    pub auto_unmount: bool,
    /// Mount over a directory that has entries (hiding them).
    pub nonempty: bool,
    /// A registry image: talk plain HTTP to the registry.
    pub insecure: bool,
    /// A registry image: a file whose first line is `USER:PASSWORD`.
    pub creds: Option<PathBuf>,
    /// A registry image: refuse it unless every layer records a dm-verity
    /// root hash.
    pub require_verity: bool,
    /// Where messages go (`log=`); unset: stderr in the foreground, syslog
    /// in the background.
    pub log: Option<super::log::LogSink>,
    /// Setuid/setgid bits and device nodes in the image carry no power
    /// unless `suid` / `dev` ask for it (libfuse's defaults): an image is
    /// anyone's, and a root mount with allow_other serves every user.
    pub nosuid: bool,
    /// Device nodes in the image open nothing unless `dev` asks.
    pub nodev: bool,
    /// `allow_suid` / `allow_dev`: the same as `suid` / `dev`, but words
    /// mount(8) never states for itself (see [`MountOpts::as_mount_helper`]).
    pub allow_suid: bool,
    /// Honour device nodes (the fstab spelling of `dev`).
    pub allow_dev: bool,
    /// Nothing in the image may be executed.
    pub noexec: bool,
    /// Memory for all decompressed-block caches (metadata, data,
    /// fragments), MiB (`None`: [`DEFAULT_CACHE_MB`], or
    /// [`DEFAULT_CACHE_BLOCKS`] blocks of a single image's size if more).
    pub cache_mb: Option<u64>,
    /// Worker threads serving requests (0: one per core).
    pub threads: usize,
    /// Push whole decompressed blocks into the kernel's page cache.
    pub page_fill: bool,
    /// Blocks decoded ahead of a sequential reader (0: none).
    pub prefetch: usize,
    /// KiB of the files listed after a file read pushed into the page
    /// cache ahead of the reader (0: none).
    pub fill_ahead_kb: u64,
    /// What /proc/mounts shows as the source and as `fuse.SUBTYPE`.
    pub fsname: Option<String>,
    /// The filesystem type shown is `fuse.SUBTYPE`.
    pub subtype: Option<String>,
    /// `rw` was asked for (fstab's `defaults` passes it): mounted read-only
    /// anyway, with a note.
    pub rw: bool,
    /// `upper=DIR` (or `upper=tmp`): a writable mount with this upper
    /// directory on top of the layers.
    pub upper: Option<UpperChoice>,
    /// `work=DIR`: where copy-ups are prepared (same filesystem as the upper).
    pub work: Option<PathBuf>,
    /// `-o debug`: log every request, stay in the foreground.
    pub debug: bool,
    /// dm-verity: the root hash (hex) or a file holding it, and a detached tree.
    pub verity_root: Option<String>,
    /// A file holding the root hash in hex.
    pub verity_root_file: Option<PathBuf>,
    /// A detached hash tree (`veritysetup format DATA HASH`).
    pub verity_hash: Option<PathBuf>,
    /// URL images: cache_dir=, cache_size=, ca_file=, retry_timeout=, as
    /// given (applied over the `SQFUSE_*` environment when opening).
    pub remote: Vec<RemoteSetting>,
    /// `record=FILE`: write a start-up profile of this mount's use.
    pub record: Option<PathBuf>,
    /// `preload=FILE`: replay a start-up profile at mount; `preload=none`
    /// turns off the image's own (`IMAGE.profile`).
    pub preload: Option<PathBuf>,
    /// `preload=none`: no profile, not even `IMAGE.profile`.
    pub preload_off: bool,
}

impl Default for MountOpts {
    fn default() -> Self {
        MountOpts {
            offset: Offset::At(0),
            subdir: None,
            uid: None,
            gid: None,
            idle_timeout: None,
            notify_pipe: None,
            allow_other: false,
            allow_root: false,
            auto_unmount: false,
            nonempty: false,
            insecure: false,
            creds: None,
            require_verity: false,
            log: None,
            nosuid: true,
            nodev: true,
            allow_suid: false,
            allow_dev: false,
            noexec: false,
            cache_mb: None,
            threads: 0,
            page_fill: true,
            prefetch: 4,
            fill_ahead_kb: DEFAULT_FILL_AHEAD_KB,
            fsname: None,
            subtype: None,
            rw: false,
            upper: None,
            work: None,
            debug: false,
            verity_root: None,
            verity_root_file: None,
            verity_hash: None,
            remote: Vec::new(),
            record: None,
            preload: None,
            preload_off: false,
        }
    }
}

/// Options mount(8) and fstab hand to every filesystem; meaningless for a
/// read-only FUSE image, so accepted and ignored.
const IGNORED: &[&str] = &[
    "ro",
    "defaults",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "lazytime",
    "exec",
    "async",
    "sync",
    "dirsync",
    "silent",
    "loud",
    "nosymfollow",
    "default_permissions",
    // libfuse's, which squashfuse_ll takes: the threads and caches here are
    // sqfuse's own (threads=, cache_mb=).
    "clone_fd",
    "kernel_cache",
    "auto_cache",
    "big_writes",
    "async_read",
];

/// libfuse options with a value that are accepted and ignored.
const IGNORED_VALUED: &[&str] = &[
    "max_idle_threads",
    "max_read",
    "max_readahead",
    "entry_timeout",
    "attr_timeout",
    "negative_timeout",
    "context",
    "fscontext",
    "defcontext",
    "rootcontext",
];

/// Splits an option list at commas, as libfuse does: `\,` is a comma
/// inside a value and `\\` a backslash.
fn split_options(list: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut().expect("never empty").extend(chars.next()),
            ',' => out.push(String::new()),
            c => out.last_mut().expect("never empty").push(c),
        }
    }
    out
}

fn absolute(key: &str, v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        return Err(format!("mount option {key}= needs a file name"));
    }
    std::path::absolute(v)
        .map_err(|e| format!("mount option {key}={v}: {}", crate::error::io_words(&e)))
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("mount option {key}={v}: not a number"))
}

impl MountOpts {
    /// Started by mount(8) (an fstab line, a systemd mount unit) through
    /// mount.fuse3: that helper adds `dev,suid` to every line that does not
    /// say `nodev`/`nosuid` (and mount(8) drops a `suid` or `dev` written in
    /// the line, being its default), so there those words are never the
    /// caller's choice. Setuid bits and devices are then honoured only for
    /// `allow_suid` / `allow_dev`, which both pass along as written.
    pub fn as_mount_helper(&mut self) {
        self.nosuid = !self.allow_suid;
        self.nodev = !self.allow_dev;
    }

    /// Applies one `-o` argument (comma-separated options).
    pub fn apply(&mut self, list: &str) -> Result<(), String> {
        for opt in split_options(list) {
            let opt = opt.trim();
            if opt.is_empty() {
                continue;
            }
            let (key, val) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            match (key, val) {
                // image_offset: the spelling mount(8) leaves alone (it turns
                // offset= into a loop device, as for any filesystem).
                ("offset" | "image_offset", Some(v)) => {
                    self.offset = v.parse().map_err(|e| format!("mount option {e}"))?
                }
                ("subdir", Some(v)) => self.subdir = Some(v.to_string()),
                ("uid", Some(v)) => self.uid = Some(number(key, v)?),
                ("gid", Some(v)) => self.gid = Some(number(key, v)?),
                ("timeout", Some(v)) => {
                    self.idle_timeout = Some(number(key, v)?).filter(|&t| t > 0)
                }
                ("notify_pipe", Some(v)) => self.notify_pipe = Some(PathBuf::from(v)),
                ("cache_mb", Some(v)) => self.cache_mb = Some(number(key, v)?),
                ("threads" | "max_threads", Some(v)) => self.threads = number(key, v)?,
                ("fsname", Some(v)) => self.fsname = Some(v.to_string()),
                ("subtype", Some(v)) => self.subtype = Some(v.to_string()),
                ("debug", None) => self.debug = true,
                ("verity", Some(v)) => self.verity_root = Some(v.to_string()),
                ("verity_roothash_file", Some(v)) => self.verity_root_file = Some(PathBuf::from(v)),
                ("verity_hash", Some(v)) => self.verity_hash = Some(PathBuf::from(v)),
                ("prefetch", Some(v)) => self.prefetch = number(key, v)?,
                ("fill_ahead_kb", Some(v)) => self.fill_ahead_kb = number(key, v)?,
                // Absolute now: a background mount leaves the caller's directory.
                ("record", Some(v)) => self.record = Some(absolute(key, v)?),
                ("preload", Some("none")) => (self.preload, self.preload_off) = (None, true),
                ("preload", Some(v)) => {
                    (self.preload, self.preload_off) = (Some(absolute(key, v)?), false)
                }
                ("cache_dir", Some(v)) => self.remote.push(RemoteSetting::cache_dir(v)),
                ("ca_file", Some(v)) => self.remote.push(RemoteSetting::CaFile(v.into())),
                ("cache_size", Some(v)) => self.remote.push(
                    RemoteSetting::cache_size(v).map_err(|e| format!("{key}={v}: {}", e.what))?,
                ),
                ("retry_timeout", Some(v)) => self.remote.push(
                    RemoteSetting::retry_timeout(v)
                        .map_err(|e| format!("{key}={v}: {}", e.what))?,
                ),
                ("page_fill", None) => self.page_fill = true,
                ("no_page_fill", None) => self.page_fill = false,
                ("allow_other", None) => self.allow_other = true,
                ("allow_root", None) => self.allow_root = true,
                ("auto_unmount", None) => self.auto_unmount = true,
                ("nonempty", None) => self.nonempty = true,
                ("insecure", None) => self.insecure = true,
                ("require_verity", None) => self.require_verity = true,
                ("creds", Some(v)) => self.creds = Some(absolute(key, v)?),
                ("log", Some(v)) => self.log = Some(super::log::parse(v)?),
                ("nosuid", None) => self.nosuid = true,
                ("nodev", None) => self.nodev = true,
                ("suid", None) => self.nosuid = false,
                ("dev", None) => self.nodev = false,
                ("allow_suid", None) => (self.allow_suid, self.nosuid) = (true, false),
                ("allow_dev", None) => (self.allow_dev, self.nodev) = (true, false),
                ("noexec", None) => self.noexec = true,
                ("rw", None) => self.rw = true,
                ("upper", Some("tmp")) => self.upper = Some(UpperChoice::Temporary),
                ("upper", Some(v)) => self.upper = Some(UpperChoice::Dir(absolute(key, v)?)),
                ("work", Some(v)) => self.work = Some(absolute(key, v)?),
                (k, None) if IGNORED.contains(&k) => {}
                (k, Some(_)) if IGNORED_VALUED.contains(&k) => {}
                // fstab/mount helpers: x-systemd.*, comment=...
                (k, _) if k.starts_with("x-") || k.starts_with("comment") => {}
                _ => return Err(format!("unknown mount option {opt}")),
            }
        }
        if self.allow_other && self.allow_root {
            return Err("allow_other and allow_root are mutually exclusive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squashfuse_names_and_fstab_generics() {
        let mut o = MountOpts::default();
        o.apply(
            "ro,allow_other,offset=36864,subdir=/a/b,uid=0,gid=1000,timeout=30,notify_pipe=/tmp/p",
        )
        .unwrap();
        o.apply("nosuid,nodev,noatime,exec,user,noauto,_netdev,x-systemd.automount,cache_mb=128")
            .unwrap();
        assert_eq!(o.offset, Offset::At(36864));
        assert_eq!(o.subdir.as_deref(), Some("/a/b"));
        assert_eq!(
            (o.uid, o.gid, o.idle_timeout),
            (Some(0), Some(1000), Some(30))
        );
        assert!(o.allow_other && o.nosuid && o.nodev);
        assert_eq!(o.cache_mb, Some(128));
        o.apply("offset=auto").unwrap();
        assert_eq!(o.offset, Offset::Auto);
        assert!(o.page_fill, "page fill is on by default");
        o.apply("no_page_fill").unwrap();
        assert!(!o.page_fill);
        assert_eq!(o.prefetch, 4, "four blocks ahead by default");
        assert_eq!(o.fill_ahead_kb, DEFAULT_FILL_AHEAD_KB);
        o.apply("fill_ahead_kb=0").unwrap();
        assert_eq!(o.fill_ahead_kb, 0);
        assert!(o.apply("fill_ahead_kb=lots").is_err());
        o.apply("prefetch=0").unwrap();
        assert_eq!(o.prefetch, 0);
    }

    #[test]
    fn squashfuse_ll_and_libfuse_options() {
        let mut o = MountOpts::default();
        o.apply("debug,clone_fd,max_threads=6,max_idle_threads=2,fsname=/a\\,b,subtype=x")
            .unwrap();
        assert!(o.debug);
        assert_eq!(o.threads, 6);
        assert_eq!(o.subtype.as_deref(), Some("x"));
        assert_eq!(o.fsname.as_deref(), Some("/a,b"), "escaped comma");
        o.apply("image_offset=auto,rw").unwrap();
        assert_eq!(o.offset, Offset::Auto);
        assert!(o.rw, "rw is noted, not refused (fstab defaults passes it)");
    }

    #[test]
    fn mounts_are_nosuid_and_nodev_unless_asked() {
        let mut o = MountOpts::default();
        o.apply("ro,allow_other,exec").unwrap();
        assert!(o.nosuid && o.nodev && !o.noexec);
        o.apply("suid").unwrap();
        assert!(!o.nosuid && o.nodev);
        o.apply("dev").unwrap();
        assert!(!o.nodev);
        o.apply("nosuid,nodev").unwrap();
        assert!(o.nosuid && o.nodev);
    }

    #[test]
    fn under_mount8_only_allow_suid_and_allow_dev_count() {
        // What mount.fuse3 hands over for `defaults,allow_other`.
        let mut o = MountOpts::default();
        o.apply("rw,allow_other,dev,suid").unwrap();
        o.as_mount_helper();
        assert!(o.nosuid && o.nodev);
        let mut o = MountOpts::default();
        o.apply("rw,allow_suid,allow_dev,dev,suid").unwrap();
        o.as_mount_helper();
        assert!(!o.nosuid && !o.nodev);
        let mut o = MountOpts::default();
        o.apply("allow_dev,suid").unwrap();
        o.as_mount_helper();
        assert!(o.nosuid && !o.nodev);
    }

    #[test]
    fn unknown_options_are_errors() {
        assert!(MountOpts::default()
            .apply("frobnicate")
            .unwrap_err()
            .contains("unknown"));
        assert!(MountOpts::default().apply("uid=abc").is_err());
        assert!(MountOpts::default().apply("prefetch=-1").is_err());
        assert!(MountOpts::default()
            .apply("allow_other,allow_root")
            .is_err());
    }
}
