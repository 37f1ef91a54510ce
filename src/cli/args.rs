//! The `sqfuse` command line, as clap definitions: the binary parses with
//! them, and completions and man pages are generated from them.

use crate::format::compressor::Compressor;
use crate::reader::Offset;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

/// Every mount option, for `-o`'s help and the man page.
pub const MOUNT_OPTIONS_HELP: &str = "\
Mount options (-o OPT[,OPT...]; squashfuse_ll's names):
  offset=N|auto       the superblock is N bytes into IMAGE; auto finds it (AppImage, SIF)
  image_offset=N|auto the same, spelled so that mount(8) does not make a loop device of it
  subdir=PATH         mount that directory of the image instead of its root
  uid=N, gid=N        show every entry as owned by N
  timeout=N           unmount after N idle seconds with nothing open
  notify_pipe=PATH    write 's' to the FIFO once mounted, 'f' if the mount failed
  cache_mb=N          memory for the decompressed-block caches (default 32, or 128
                      blocks of one image with larger blocks)
  threads=N           request-serving threads (max_threads=N: the same)
  prefetch=N          blocks decoded ahead of a sequential reader (default 4; 0: off)
  fill_ahead_kb=N     KiB of the files listed after a file read pushed into the page
                      cache before they are read (default 2048; 0: off)
  no_page_fill        do not push whole decompressed blocks into the page cache
  suid, dev           honour setuid bits and device nodes in the image (default:
                      nosuid,nodev, as libfuse mounts; the image is anyone's)
  allow_suid, allow_dev
                      the same, spelled for fstab (where mount.fuse3 adds suid,dev
                      to every line, so those words are ignored there)
  allow_other, allow_root, auto_unmount, noexec
                      as for any FUSE filesystem
  nonempty            mount over a directory that has entries (hiding them)
  log=FILE|syslog     where messages go (damage found in the image, warnings);
                      default: stderr in the foreground, syslog in the background
  insecure, creds=FILE, require_verity
                      a docker:// or oras:// image: plain HTTP; USER:PASSWORD
                      from FILE; refuse layers without a recorded root hash
  fsname=NAME, subtype=NAME
                      what /proc/mounts shows (default: the image path, fuse.sqfuse)
  debug               log every request to stderr (as -d)
  verity=ROOTHASH     verify every block against the image's dm-verity tree (hex root)
  verity_roothash_file=FILE  the same, the root hash read from FILE
  verity_hash=FILE    the tree is in FILE (veritysetup format DATA HASH), not appended
  record=FILE         write a start-up profile of what the mount served (at unmount)
  preload=FILE|none   replay a start-up profile once mounted (default: IMAGE.profile
                      beside a local image, if there is one; none: no profile)
  ro, rw, defaults, noatime, user, noauto, _netdev, nofail, x-*, clone_fd,
  max_idle_threads=N, ...
                      what mount(8), fstab and libfuse pass: accepted (rw mounts
                      read-only anyway, with a note)";

const ABOUT: &str = "Mount, inspect and create SquashFS 4.0 images";

const LONG_ABOUT: &str = "\
Mount, inspect and create SquashFS 4.0 images.

`sqfuse IMAGE MOUNTPOINT` mounts IMAGE (a file, a block device, an image
inside an AppImage or SIF file with -o offset=auto, an http(s) or s3 URL, or
a docker://HOST/REPO:TAG image of SquashFS layers or an oras:// SIF artifact)
read-only through FUSE, without root (through fusermount3), and returns once
the mount is ready.
Unmount with `fusermount3 -u MOUNTPOINT`; SIGINT, SIGTERM and SIGHUP unmount
too. A MOUNTPOINT of the form /dev/fd/N serves a /dev/fuse descriptor the
caller has mounted already.

Called as squashfuse_ll, squashfuse, mksquashfs or unsquashfs (a symlink to
the binary), sqfuse takes those tools' command lines instead.";

#[derive(Parser)]
#[command(
    name = "sqfuse",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = "sqfuse IMAGE MOUNTPOINT [-f] [-s] [-d] [-o OPT[,OPT...]]\n       sqfuse <COMMAND> [ARGS]",
    after_long_help = MOUNT_OPTIONS_HELP,
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Args)]
pub struct ImageArgs {
    /// The image: a file or block device (or a file holding one at
    /// --offset), or a URL: http://, https://, s3://BUCKET/KEY; for ls, cat
    /// and info also a registry image, docker://HOST/REPO[:TAG|@DIGEST]
    /// (its layers merged) or oras://HOST/REPO[:TAG|@DIGEST] (a SIF).
    pub image: PathBuf,
    /// Registry images: plain HTTP (a local registry).
    #[arg(long)]
    pub insecure: bool,
    /// Registry images: log in with the first line of FILE, USER:PASSWORD
    /// (default: the login podman, skopeo or docker stored, else anonymous).
    #[arg(long, value_name = "FILE")]
    pub creds_file: Option<PathBuf>,
    /// URL images: log each request (HEAD and byte ranges) on stderr.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// URL images: the chunk cache directory ("none": no disk cache;
    /// default $XDG_CACHE_HOME/sqfuse, or $SQFUSE_CACHE_DIR).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<String>,
    /// URL images: extra PEM certificates to trust (or $SQFUSE_CA_FILE).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
    /// Where the superblock is inside IMAGE: a byte count, or "auto" to find
    /// it (AppImage, SIF).
    #[arg(long, default_value = "0", value_name = "N|auto")]
    pub offset: Offset,
    #[command(flatten)]
    pub verity: VerityArgs,
}

/// Reading through a dm-verity tree.
#[derive(Args, Clone, Default)]
pub struct VerityArgs {
    /// Verify every block read against the image's dm-verity tree and this
    /// root hash (hex); a block that does not match is an error.
    #[arg(long = "verity", value_name = "ROOTHASH")]
    pub root: Option<String>,
    /// The root hash, read from FILE (as --verity-roothash writes it).
    #[arg(
        long = "verity-roothash-file",
        value_name = "FILE",
        conflicts_with = "root"
    )]
    pub root_file: Option<PathBuf>,
    /// A detached tree (veritysetup format DATA HASH) instead of one appended
    /// to the image.
    #[arg(long = "verity-hash", value_name = "FILE")]
    pub hash_file: Option<PathBuf>,
}

impl VerityArgs {
    /// The verification asked for, if any.
    pub fn options(&self) -> crate::Result<Option<crate::reader::verity::VerityOptions>> {
        use crate::reader::verity::VerityOptions;
        let tree = self.hash_file.clone();
        match (&self.root, &self.root_file) {
            (Some(hex), _) => VerityOptions::from_hex(hex, tree).map(Some),
            (None, Some(f)) => VerityOptions::from_root_hash_file(f, tree).map(Some),
            (None, None) if tree.is_some() => Err(crate::Error::invalid(
                "--verity-hash needs the root hash (--verity or --verity-roothash-file)",
            )),
            (None, None) => Ok(None),
        }
    }
}

/// A verity salt given in hex.
#[derive(Debug, Clone)]
pub struct Salt(pub Vec<u8>);

fn parse_salt(s: &str) -> Result<Salt, String> {
    let salt = hex::decode(s).map_err(|e| format!("salt {s:?} is not hex: {e}"))?;
    if salt.len() > crate::format::verity::MAX_SALT {
        return Err(format!("a salt of {} bytes (at most 256)", salt.len()));
    }
    Ok(Salt(salt))
}

pub use crate::size::parse_size;

fn parse_block_size(s: &str) -> Result<u32, String> {
    parse_size(s).and_then(|n| u32::try_from(n).map_err(|_| format!("{s} is too large")))
}

pub fn parse_compressor(s: &str) -> Result<Compressor, String> {
    Ok(match s {
        "gzip" => Compressor::Gzip,
        "xz" => Compressor::Xz,
        "lz4" => Compressor::Lz4,
        "zstd" => Compressor::Zstd,
        "lzo" => Compressor::Lzo,
        _ => {
            return Err(format!(
                "unknown compressor {s:?} (gzip, xz, lz4, zstd, lzo)"
            ))
        }
    })
}

/// The xz branch filters by name, as the options record numbers them.
pub fn parse_xz_filter(s: &str) -> Result<u32, String> {
    Ok(match s {
        "x86" => 1,
        "powerpc" => 2,
        "ia64" => 4,
        "arm" => 8,
        "armthumb" => 16,
        "sparc" => 32,
        _ => {
            return Err(format!(
                "unknown xz filter {s:?} (x86, arm, armthumb, powerpc, ia64, sparc)"
            ))
        }
    })
}

#[derive(Args)]
pub struct PackArgs {
    /// SOURCE... IMAGE: the directories or files to pack, then the image to
    /// create. One directory's contents become the image's root; several
    /// sources become entries of the root. With --tar: one tar archive (- for
    /// standard input). An OCI image: oci:DIR[:TAG] (a layout, as skopeo
    /// and umoci write it) or docker://HOST[:PORT]/REPO[:TAG|@DIGEST].
    #[arg(required = true, num_args = 1.., value_name = "SOURCE... IMAGE")]
    pub paths: Vec<PathBuf>,
    /// Compressor: gzip, xz, lz4, zstd or lzo.
    #[arg(short, long, default_value = "zstd", value_parser = parse_compressor)]
    pub compressor: Compressor,
    /// Compression level in the compressor's own range (defaults: zstd 3,
    /// gzip 9, xz 6, lzo 8; lz4 has none).
    #[arg(short, long)]
    pub level: Option<u32>,
    /// xz branch filter for executables: x86, arm, armthumb, powerpc, ia64, sparc.
    #[arg(long, value_parser = parse_xz_filter, value_name = "FILTER")]
    pub xz_filter: Option<u32>,
    /// Block size, 4K to 1M (suffixes K and M).
    #[arg(short, long, default_value = "128K", value_parser = parse_block_size)]
    pub block_size: u32,
    /// Compression threads (default: all cores). The image is the same for any value.
    #[arg(short = 'j', long)]
    pub threads: Option<usize>,
    /// Store file tails as partial blocks, not in fragments.
    #[arg(long)]
    pub no_fragments: bool,
    /// Put the tails of files larger than a block in fragments too.
    #[arg(long)]
    pub always_fragments: bool,
    /// Do not share the data of identical files or tails.
    #[arg(long)]
    pub no_dedup: bool,
    /// Leave out extended attributes.
    #[arg(long)]
    pub no_xattrs: bool,
    /// Leave out the export table (NFS export support).
    #[arg(long)]
    pub no_exports: bool,
    /// Store all-zero blocks as data instead of holes.
    #[arg(long)]
    pub no_sparse: bool,
    /// Make every entry owned by root.
    #[arg(long)]
    pub all_root: bool,
    /// Make every entry owned by user N.
    #[arg(long, value_name = "N")]
    pub force_uid: Option<u32>,
    /// Make every entry owned by group N.
    #[arg(long, value_name = "N")]
    pub force_gid: Option<u32>,
    /// Image creation time (default: SOURCE_DATE_EPOCH, else the newest mtime in SOURCE).
    #[arg(long, value_name = "T")]
    pub mkfs_time: Option<u32>,
    /// Set every entry's mtime to T.
    #[arg(long, value_name = "T")]
    pub all_time: Option<u32>,
    /// Leave out paths matching GLOB (repeatable; `**` spans directories; a
    /// leading '/' anchors at SOURCE).
    #[arg(short, long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Write the image N bytes into IMAGE, keeping the bytes an existing IMAGE
    /// has before it (needs -f then).
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_size)]
    pub offset: u64,
    /// Do not descend into other filesystems (their mountpoints stay, empty).
    #[arg(long)]
    pub one_file_system: bool,
    /// Lay file data out in the order a start-up profile (-o record=) read
    /// the files, ahead of all others (repeatable: earlier profiles first).
    #[arg(long, value_name = "PROFILE")]
    pub order: Vec<PathBuf>,
    /// Overwrite IMAGE if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Skip (with a warning) source entries that cannot be read.
    #[arg(long)]
    pub skip_unreadable: bool,
    /// SOURCE is a tar archive (ustar, gnu or pax; plain, gzip, zstd, xz or
    /// bzip2, told by its first bytes; `-` reads standard input).
    #[arg(long)]
    pub tar: bool,
    /// With --tar: store the archive's whiteouts as overlayfs reads them
    /// (devices 0/0, trusted.overlay.opaque), as OCI writes them (.wh.NAME,
    /// .wh..wh..opq), or as the archive has them.
    #[arg(long, value_name = "oci|overlay|keep", default_value = "keep")]
    pub whiteouts: crate::whiteout::Convention,
    /// SOURCE is a writable mount's upper directory (-o upper=DIR): pack
    /// its changes as a layer with OCI whiteouts, to stack over the images
    /// it was mounted on. Refused while the upper is mounted.
    #[arg(long)]
    pub layer: bool,
    /// With an OCI SOURCE (oci:DIR[:TAG] or docker://HOST/REPO[:TAG]) and no
    /// IMAGE: one image per layer in OUTDIR, named by the layer's digest,
    /// whiteouts in overlayfs form; layers.txt lists them top first.
    #[arg(long, value_name = "OUTDIR")]
    pub layers: Option<PathBuf>,
    /// docker://: talk plain HTTP to the registry (a local one).
    #[arg(long)]
    pub insecure: bool,
    /// docker://: log in as USER:PASSWORD (default: the login podman,
    /// skopeo or docker stored for the registry, else anonymous, with the
    /// registry's anonymous token if it hands one out).
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// No progress bar, no summary line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Append a dm-verity hash tree (sha256, 4K blocks, format 1) and print
    /// its root hash: mount with -o verity=ROOTHASH.
    #[arg(long)]
    pub verity: bool,
    /// The tree's salt, in hex (default: 32 random bytes); the same salt
    /// gives the same bytes, for reproducible builds.
    #[arg(long, value_name = "HEX", value_parser = parse_salt, requires = "verity")]
    pub verity_salt: Option<Salt>,
    /// Also write the root hash to FILE.
    #[arg(long, value_name = "FILE", requires = "verity")]
    pub verity_roothash: Option<PathBuf>,
}

impl PackArgs {
    /// The sources and the image: the last path given is the image.
    pub fn split_paths(&self) -> Option<(&[PathBuf], &PathBuf)> {
        let (image, sources) = self.paths.split_last()?;
        (!sources.is_empty()).then_some((sources, image))
    }
}

#[derive(Args)]
pub struct MountArgs {
    /// The image (a file or block device, see -o offset=), or several:
    /// their union, the first on top, as overlayfs's lowerdir=top:...:bottom.
    #[arg(required = true, num_args = 1.., value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// An empty directory to mount on (-o nonempty: any directory), or
    /// /dev/fd/N for a /dev/fuse descriptor the caller has mounted.
    #[arg(required = true)]
    pub mountpoint: PathBuf,
    /// Stay in the foreground.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Serve requests with one thread.
    #[arg(short = 's')]
    pub single_thread: bool,
    /// Log every request to stderr (implies -f).
    #[arg(short = 'd')]
    pub debug: bool,
    /// Mount options, comma-separated (repeatable): offset=N|auto,
    /// image_offset=N|auto, subdir=PATH, uid=N, gid=N, timeout=SECS,
    /// notify_pipe=PATH, cache_mb=N, threads=N, prefetch=N, fill_ahead_kb=N,
    /// no_page_fill,
    /// suid, dev (default nosuid,nodev), allow_other, allow_root,
    /// auto_unmount, noexec, nonempty, log=FILE|syslog, insecure,
    /// creds=FILE, require_verity,
    /// fsname=NAME, subtype=NAME, debug, verity=ROOTHASH,
    /// verity_roothash_file=FILE, verity_hash=FILE, record=FILE,
    /// preload=FILE|none, and what mount(8), fstab and libfuse
    /// pass (ro, rw, defaults, noatime, user, noauto, _netdev, x-*, clone_fd,
    /// max_threads=N...). See `sqfuse --help`.
    #[arg(short = 'o', action = clap::ArgAction::Append, value_name = "OPT[,OPT...]")]
    pub options: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create an image from directories, files or a tar archive (parallel,
    /// byte-identical for any -j): sqfuse pack SOURCE... IMAGE
    #[command(
        override_usage = "sqfuse pack [OPTIONS] SOURCE... IMAGE\n       sqfuse pack [OPTIONS] --layers OUTDIR OCI-SOURCE"
    )]
    Pack(PackArgs),
    /// Mount IMAGE read-only on MOUNTPOINT (also: `sqfuse IMAGE MOUNTPOINT`);
    /// several images: their merged layers, the first on top.
    #[command(
        after_long_help = MOUNT_OPTIONS_HELP,
        override_usage = "sqfuse mount [OPTIONS] IMAGE... MOUNTPOINT"
    )]
    Mount(MountArgs),
    /// Unmount MOUNTPOINT (also `unmount`): through fusermount3 for your
    /// own mounts, directly as root; a busy mountpoint is refused, naming
    /// what holds it.
    #[command(visible_alias = "unmount")]
    Umount {
        /// The directory an image is mounted on.
        mountpoint: PathBuf,
        /// Detach it now, though in use; it is unmounted once the last
        /// file in it is closed.
        #[arg(short = 'l', long)]
        lazy: bool,
    },
    /// Show the superblock, compressor and table layout.
    Info {
        #[command(flatten)]
        img: ImageArgs,
        /// Print one JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List a directory (or one file) in the image.
    Ls {
        #[command(flatten)]
        img: ImageArgs,
        /// Path inside the image (default: the root).
        #[arg(default_value = "/")]
        path: String,
        /// Long listing: mode, owner, size, mtime, link target.
        #[arg(short = 'l')]
        long: bool,
        /// Recurse: print every path below PATH.
        #[arg(short = 'R')]
        recursive: bool,
        /// Print a JSON array of entries (every field of -l), for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Write files' contents to standard output.
    Cat {
        #[command(flatten)]
        img: ImageArgs,
        /// Paths of regular files inside the image.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Recreate the tree, or PATH in it, under DEST.
    Extract {
        #[command(flatten)]
        img: ImageArgs,
        /// Directory to extract into (created if missing).
        dest: PathBuf,
        /// Path inside the image: extracted as DEST/NAME, NAME being its last
        /// component (default: the whole image, its contents into DEST).
        #[arg(default_value = "/")]
        path: String,
        /// Overwrite entries that already exist in DEST.
        #[arg(short, long)]
        force: bool,
        /// Do not restore extended attributes.
        #[arg(long)]
        no_xattrs: bool,
        /// Report skipped entries and warnings.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Read and verify everything; exit 0 only for a sound image.
    Check {
        #[command(flatten)]
        img: ImageArgs,
    },
    /// Append a dm-verity hash tree to an image (in place, safely: a new file
    /// renamed over it) and print its root hash.
    Verity {
        /// The image (mksquashfs's too; a SIF or AppImage with --offset).
        image: PathBuf,
        /// Where the superblock is inside IMAGE: a byte count, or "auto".
        #[arg(long, default_value = "0", value_name = "N|auto")]
        offset: Offset,
        /// The salt, in hex (default: 32 random bytes).
        #[arg(long, value_name = "HEX", value_parser = parse_salt)]
        salt: Option<Salt>,
        /// Also write the root hash to FILE.
        #[arg(long, value_name = "FILE")]
        roothash: Option<PathBuf>,
        /// Replace a tree the image already has.
        #[arg(short, long)]
        force: bool,
    },
    /// Record a start-up profile: mount IMAGE on a temporary directory with
    /// -o record=PROFILE, run COMMAND there ({} in it is the mountpoint;
    /// SQFUSE_MOUNT is set), unmount. Use it with -o preload=, IMAGE.profile
    /// or pack --order.
    #[command(override_usage = "sqfuse profile [OPTIONS] IMAGE... PROFILE -- COMMAND [ARG]...")]
    Profile {
        /// The image (or layers, top first), then the profile to write.
        #[arg(required = true, num_args = 2.., value_name = "IMAGE... PROFILE")]
        paths: Vec<PathBuf>,
        /// The command to run in the mount, after --.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
        /// More mount options (as for mount).
        #[arg(short = 'o', action = clap::ArgAction::Append, value_name = "OPT[,OPT...]")]
        options: Vec<String>,
        /// Overwrite PROFILE if it exists.
        #[arg(short, long)]
        force: bool,
    },
    /// Publish SquashFS images to a registry as one OCI image whose layers
    /// are the images (the first on top, as a layered mount takes them);
    /// blobs the registry has are not sent again.
    #[command(override_usage = "sqfuse push [OPTIONS] IMAGE... docker://HOST[:PORT]/REPO:TAG")]
    Push {
        /// The images (top layer first), then where to publish them.
        #[arg(required = true, num_args = 2.., value_name = "IMAGE... REFERENCE")]
        paths: Vec<PathBuf>,
        /// Write each layer's dm-verity root hash as an annotation (every
        /// image must carry an appended tree: pack --verity, sqfuse verity).
        #[arg(long)]
        verity: bool,
        /// Talk plain HTTP to the registry (a local one).
        #[arg(long)]
        insecure: bool,
        /// Log in as USER:PASSWORD (default: the login podman, skopeo or
        /// docker stored for the registry, else anonymous).
        #[arg(long, value_name = "USER:PASSWORD")]
        creds: Option<String>,
    },
    /// Print a shell completion script (bash, zsh or fish) to standard output.
    Completions {
        /// The shell to complete for.
        shell: Shell,
    },
    /// Write the man pages (sqfuse.1 and one per command) into DIR.
    #[command(hide = true)]
    Man {
        /// Directory for the pages.
        dir: PathBuf,
    },
}

/// Command names, for recognising `sqfuse IMAGE MOUNTPOINT`.
pub const COMMANDS: &[&str] = &[
    "pack",
    "mount",
    "umount",
    "unmount",
    "info",
    "ls",
    "cat",
    "extract",
    "check",
    "verity",
    "profile",
    "push",
    "completions",
    "man",
    "help",
];

/// `sqfuse [-f -s -d -o OPTS] IMAGE MOUNTPOINT ...` (the squashfuse and
/// mount.fuse3 form) means `sqfuse mount ...`: the first positional
/// argument (skipping flags and -o's value) is not a command name. A word
/// that names no file but is close to a command name is a mistyped
/// command, reported as such.
pub fn with_implicit_mount(
    mut args: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>, String> {
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a {
            "-o" => i += 2,
            "-h" | "--help" | "-V" | "--version" => return Ok(args),
            _ if a.starts_with('-') => i += 1,
            _ => {
                if !COMMANDS.contains(&a) {
                    if !std::path::Path::new(a).exists() {
                        if let Some(cmd) = COMMANDS
                            .iter()
                            .find(|c| strsim::damerau_levenshtein(a, c) <= 2 && a.len() > 1)
                        {
                            return Err(format!(
                                "unknown command {a:?}: did you mean {cmd:?}? (or, to mount, the image {a:?} does not exist)"
                            ));
                        }
                    }
                    args.insert(1, "mount".into());
                }
                return Ok(args);
            }
        }
    }
    Ok(args)
}

/// The clap command, for completions and man pages.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Writes `sqfuse.1` and `sqfuse-COMMAND.1` for every visible command.
pub fn write_man_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    std::fs::write(dir.join("sqfuse.1"), page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sqfuse-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

/// Writes the completion script for `shell`.
pub fn write_completions(shell: Shell, out: &mut dyn std::io::Write) {
    let mut cmd = command();
    let g = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(g, &mut cmd, "sqfuse", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command missing from COMMANDS was taken for an IMAGE (`sqfuse push
    /// --insecure ...` failed so).
    #[test]
    fn commands_list_every_subcommand() {
        let mut known: Vec<String> = command()
            .get_subcommands()
            .flat_map(|c| {
                let names: Vec<String> = std::iter::once(c.get_name())
                    .chain(c.get_all_aliases())
                    .map(str::to_string)
                    .collect();
                names
            })
            .chain(["help".to_string()])
            .collect();
        known.sort();
        let mut listed: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
        listed.sort();
        assert_eq!(listed, known);
    }

    fn words(v: &[&str]) -> Result<Vec<String>, String> {
        with_implicit_mount(v.iter().map(|s| s.into()).collect())
            .map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    #[test]
    fn mount_form_is_recognised_with_flags_anywhere() {
        assert_eq!(
            words(&["sqfuse", "img", "mnt"]).unwrap(),
            ["sqfuse", "mount", "img", "mnt"]
        );
        assert_eq!(
            words(&["sqfuse", "-d", "img", "mnt"]).unwrap(),
            ["sqfuse", "mount", "-d", "img", "mnt"]
        );
        assert_eq!(
            words(&["sqfuse", "-o", "ro", "img", "mnt"]).unwrap(),
            ["sqfuse", "mount", "-o", "ro", "img", "mnt"]
        );
        assert_eq!(
            words(&["sqfuse", "ls", "img"]).unwrap(),
            ["sqfuse", "ls", "img"]
        );
        assert_eq!(words(&["sqfuse", "--help"]).unwrap(), ["sqfuse", "--help"]);
        assert_eq!(words(&["sqfuse"]).unwrap(), ["sqfuse"]);
    }

    #[test]
    fn mistyped_commands_get_a_suggestion() {
        let e = words(&["sqfuse", "chek", "img"]).unwrap_err();
        assert!(e.contains("\"check\""), "{e}");
        assert!(words(&["sqfuse", "extarct", "img", "d"])
            .unwrap_err()
            .contains("extract"));
    }

    #[test]
    fn the_definitions_are_consistent() {
        command().debug_assert();
    }
}
