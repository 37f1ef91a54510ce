//! `sqfuse pack SOURCE IMAGE`: create a SquashFS 4.0 image.
//!
//! Stages: scan the tree (serial), write file data through the parallel,
//! sequence-ordered pipeline ([`data`]), then the metadata tables
//! (`tables`) and the superblock. Output is byte-identical for any thread
//! count. The image is written to a temporary file beside IMAGE and renamed
//! into place only after everything succeeded and was synced.

pub mod append;
pub(crate) mod compression;
pub mod data;
mod error;
pub mod exclude;
pub mod mode;
pub mod oci;
pub mod order;
mod output;
mod prefetch;
pub mod pseudo;
pub mod scan;
pub(crate) mod tables;
pub(crate) mod tarsrc;
pub(crate) mod tarstream;
pub mod upper_layer;
pub mod verity;
pub mod xattr_filter;

pub use append::Append;
pub use error::PackError;

use crate::format::block::valid_block_size;
use crate::format::compressor::{CompressSettings, Compressor, Engine};
use crate::format::metadata::encode_block;
use crate::format::superblock::{self, flags, Superblock};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// How to pack. `PackOptions::default()` is zstd at level 3, 128 KiB blocks, every core, fragments
/// and deduplication on.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// The compressor.
    pub compressor: Compressor,
    /// Its level (`None`: the compressor's default).
    pub level: Option<u32>,
    /// xz only: BCJ filters to try per block (bit flags; the smallest result is kept).
    pub xz_filters: u32,
    /// Data block size: a power of two from 4 KiB to 1 MiB.
    pub block_size: u32,
    /// Threads compressing (the output is the same for any count).
    pub threads: usize,
    /// Store every file tail as a block of its own.
    pub no_fragments: bool,
    /// Put the tails of files larger than a block in fragments too.
    pub always_fragments: bool,
    /// Store duplicate files as often as they occur.
    pub no_dedup: bool,
    /// Leave xattrs out.
    pub no_xattrs: bool,
    /// Write no export table (no NFS export).
    pub no_exports: bool,
    /// Store zero blocks as data, not as holes.
    pub no_sparse: bool,
    /// Every entry owned by root.
    pub all_root: bool,
    /// Every entry owned by this uid.
    pub force_uid: Option<u32>,
    /// Every entry in this group.
    pub force_gid: Option<u32>,
    /// The image's creation time (default: the newest mtime in the source).
    pub mkfs_time: Option<u32>,
    /// Every entry's mtime.
    pub all_time: Option<u32>,
    /// `SOURCE_DATE_EPOCH`: the creation time when `mkfs_time` is not given.
    pub source_date_epoch: Option<u32>,
    /// What to leave out.
    pub excludes: Vec<exclude::Rule>,
    /// Write the image this many bytes into IMAGE, keeping what an existing
    /// IMAGE holds before it (a runtime prepended to an AppImage, say).
    pub offset: u64,
    /// Do not descend into other filesystems (their mountpoints stay, empty).
    pub one_file_system: bool,
    /// Replace an existing IMAGE.
    pub force: bool,
    /// Leave out, with a warning, what cannot be read instead of failing.
    pub skip_unreadable: bool,
    /// SOURCE is a tar archive (`-`: standard input), not a directory.
    pub tar: bool,
    /// The mtime of a root made to hold several sources (or a tar's, see
    /// below); default: the image's time. mksquashfs gives it the clock's.
    pub root_time: Option<u32>,
    /// Append a dm-verity hash tree with this salt (see [`verity`]).
    pub verity_salt: Option<Vec<u8>>,
    /// With `tar`: what to do with whiteouts in the archive.
    pub whiteouts: crate::whiteout::Convention,
    /// With `tar`: the archive's `./` entry gives the root its attributes.
    /// Off (mksquashfs -tar), the root is made: mode 0777, owned by the
    /// caller, the image's time.
    pub tar_root_from_archive: bool,
    /// Where file data goes: files of higher priority first (a start-up
    /// profile's files, a mksquashfs sort file); empty: tree order.
    pub order: order::FileOrder,
    /// Parts stored uncompressed.
    pub uncompressed: Uncompressed,
    /// The compressor's settings beyond its level.
    pub tuning: CompressTuning,
    /// Pad the image file to a multiple of 4 KiB, as loop devices read it.
    pub pad: bool,
    /// How the sources become the image's root.
    pub layout: Layout,
    /// Directories the packer makes (the root holding several sources):
    /// their permissions and owner (None: the caller's).
    pub made_dir: MadeDir,
    /// The root's own attributes, whatever made it: each given one
    /// replaces what the source or [`PackOptions::made_dir`] says.
    pub root: RootAttrs,
    /// A file with several names is stored once per name (its data still
    /// shared when duplicates are looked for), not hard-linked.
    pub no_hardlinks: bool,
    /// Permissions of every non-directory become these.
    pub file_mode: Option<mode::ModeChange>,
    /// Permissions of every directory become these.
    pub dir_mode: Option<mode::ModeChange>,
    /// Added to every uid and gid of the source.
    pub id_offset: u32,
    /// Append to the image at IMAGE (mksquashfs's default): its tree is
    /// kept and the sources join it; its compressor settings are kept.
    pub append: Option<append::Append>,
    /// Xattrs filtered by name and added (mksquashfs's `-xattrs-*`).
    pub xattr_filter: xattr_filter::XattrFilter,
    /// Pseudo definitions grafted onto the source (with a source of `-`,
    /// they are the whole tree).
    pub pseudo: pseudo::PseudoDefs,
}

/// The clock, in SquashFS's seconds.
pub(crate) fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32)
}

/// How the sources become the root (mksquashfs's default, its
/// `-keep-as-directory` and `-no-strip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// One directory's contents are the root; several sources (or a file)
    /// are entries of a root made for them, named by their last component.
    #[default]
    Contents,
    /// One directory is an entry of a made root too.
    KeepAsDirectory,
    /// Each source keeps its path, as tar does: its leading directories
    /// are in the image with their attributes, and the root is `/`'s (an
    /// absolute path) or the working directory's.
    FullPaths,
}

/// What a directory the packer makes is like: the root holding several
/// sources, and a tar's directories that only its members' paths name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MadeDir {
    /// Its permissions (None: 0777 for the root of several sources and
    /// 0755 for a tar's, as mksquashfs).
    pub perm: Option<u16>,
    /// Its owner (None: the caller).
    pub uid: Option<u32>,
    /// Its group (None: the caller's).
    pub gid: Option<u32>,
    /// Its time (None: the clock's, as mksquashfs; sqfuse's own packs give
    /// a tar's made directories their first member's).
    pub mtime: Option<u32>,
}

/// The root directory's attributes, where given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RootAttrs {
    /// Its permissions (applied to what it had).
    pub mode: Option<mode::ModeChange>,
    /// Its owner.
    pub uid: Option<u32>,
    /// Its group.
    pub gid: Option<u32>,
    /// Its mtime.
    pub mtime: Option<u32>,
    /// Its mtime is the newest inode's (mksquashfs's `-root-time inode`).
    pub newest_mtime: bool,
}

/// Parts of the image stored uncompressed (mksquashfs's `-noI`, `-noId`,
/// `-noD`, `-noF`, `-noX`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uncompressed {
    /// The inode, directory and export tables (and the id table).
    pub inodes: bool,
    /// The id table alone.
    pub ids: bool,
    /// Data blocks.
    pub data: bool,
    /// Fragment blocks and the fragment table.
    pub fragments: bool,
    /// The xattr tables.
    pub xattrs: bool,
}

impl Uncompressed {
    /// Nothing compressed (mksquashfs's `-no-compression`).
    pub const ALL: Uncompressed = Uncompressed {
        inodes: true,
        ids: false,
        data: true,
        fragments: true,
        xattrs: true,
    };
}

/// A compressor's settings beyond its name and level (mksquashfs's `-X`
/// options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressTuning {
    /// xz's dictionary for data blocks (default: the block size): 8 KiB to
    /// the block size, `2^n` or `2^n + 2^(n-1)`.
    pub xz_dict_size: Option<u32>,
    /// gzip's window, 8 to 15 bits.
    pub gzip_window: u16,
    /// gzip strategies to try, bits as in
    /// [`GZIP_STRATEGIES`](crate::format::compressor::GZIP_STRATEGIES) (0:
    /// the default alone).
    pub gzip_strategies: u16,
    /// lz4's acceleration (fast mode; 1 is liblz4's default).
    pub lz4_acceleration: u32,
    /// Which libraries compress.
    pub engine: Engine,
}

impl Default for CompressTuning {
    fn default() -> Self {
        CompressTuning {
            xz_dict_size: None,
            gzip_window: 15,
            gzip_strategies: 0,
            lz4_acceleration: 1,
            engine: Engine::Fast,
        }
    }
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            compressor: Compressor::Zstd,
            level: None,
            xz_filters: 0,
            block_size: 128 * 1024,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            no_fragments: false,
            always_fragments: false,
            no_dedup: false,
            no_xattrs: false,
            no_exports: false,
            no_sparse: false,
            all_root: false,
            force_uid: None,
            force_gid: None,
            mkfs_time: None,
            all_time: None,
            source_date_epoch: None,
            excludes: Vec::new(),
            offset: 0,
            one_file_system: false,
            force: false,
            skip_unreadable: false,
            tar: false,
            root_time: None,
            verity_salt: None,
            whiteouts: crate::whiteout::Convention::Keep,
            tar_root_from_archive: true,
            order: Default::default(),
            uncompressed: Uncompressed::default(),
            tuning: CompressTuning::default(),
            pad: true,
            layout: Layout::Contents,
            made_dir: MadeDir::default(),
            root: RootAttrs::default(),
            no_hardlinks: false,
            file_mode: None,
            dir_mode: None,
            id_offset: 0,
            pseudo: Default::default(),
            append: None,
            xattr_filter: Default::default(),
        }
    }
}

/// What a pack made.
#[derive(Debug, Default)]
pub struct PackReport {
    /// Regular files in the image.
    pub files: u64,
    /// Inodes in the image.
    pub inodes: u32,
    /// Bytes of file data read (a duplicate's not).
    pub bytes_in: u64,
    /// Bytes of file data in the tree, duplicates counted.
    pub data_bytes: u64,
    /// Bytes of the image (padded to 4 KiB, verity tree included).
    pub image_size: u64,
    /// Files stored as another file's data.
    pub duplicates: u64,
    /// What was skipped or changed, one line each.
    pub warnings: Vec<String>,
    /// The hash tree appended, with `verity_salt`.
    pub verity: Option<verity::Appended>,
}

/// Deletes the temporary image unless disarmed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs one level of a recursive tree walk with room on the stack: below
/// 128 KiB left, `f` runs on a fresh 4 MiB heap segment. Trees are at most
/// [`MAX_DEPTH`](crate::format::dir::MAX_DEPTH) deep, so the walks are
/// bounded; this keeps them safe on any caller's thread.
pub(crate) fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 << 10, 4 << 20, f)
}

fn output_error(image: &Path, source: std::io::Error) -> PackError {
    PackError::Output {
        path: image.to_path_buf(),
        source,
    }
}

fn level_range(c: Compressor) -> std::ops::RangeInclusive<u32> {
    match c {
        Compressor::Gzip => 1..=9,
        Compressor::Zstd => 1..=22,
        Compressor::Xz | Compressor::Lzma => 0..=9,
        Compressor::Lzo => 1..=9,
        // 0: fast; 1..=12: high compression (mksquashfs -Xhc is 12).
        Compressor::Lz4 => 0..=12,
    }
}

/// The settings data blocks are compressed with, checked.
fn compress_settings(opts: &PackOptions, level: u32) -> Result<CompressSettings, PackError> {
    let bs = opts.block_size;
    let t = &opts.tuning;
    let dict_size = match t.xz_dict_size {
        None => bs,
        Some(d) => {
            let n = d.trailing_zeros();
            let storable = d == 1 << n || d.checked_sub(1 << n) == Some(1 << (n + 1));
            if !(8192..=bs).contains(&d) || !storable {
                return Err(PackError::Usage(format!(
                    "xz dictionary size {d} is not 8K to the block size ({bs}) and 2^n or 2^n+2^(n+1) bytes (such as 75%, 50%, 32K)"
                )));
            }
            d
        }
    };
    if !(8..=15).contains(&t.gzip_window) {
        return Err(PackError::Usage(format!(
            "gzip window size {} is not 8 to 15",
            t.gzip_window
        )));
    }
    if !(1..=65537).contains(&t.lz4_acceleration) {
        return Err(PackError::Usage(format!(
            "lz4 acceleration {} is not 1 to 65537",
            t.lz4_acceleration
        )));
    }
    Ok(CompressSettings {
        xz_filters: opts.xz_filters,
        dict_size,
        gzip_window: t.gzip_window,
        gzip_strategies: t.gzip_strategies,
        lz4_acceleration: t.lz4_acceleration,
        engine: t.engine,
        ..CompressSettings::new(opts.compressor, level, bs)
    })
}

/// Temporary files beside IMAGE: named after it and this process, so their
/// origin is plain and [`remove_stale_temporaries`] can tell a dead pack's.
pub(crate) fn temp_name(dir: &Path, image_name: &str, what: &str) -> PathBuf {
    dir.join(format!(
        ".{image_name}.sqfuse-{what}-{}.tmp",
        std::process::id()
    ))
}

/// Removes the temporary files of earlier packs to IMAGE whose process is
/// gone (killed with SIGKILL, or the machine went down mid-pack).
fn remove_stale_temporaries(dir: &Path, image_name: &str) {
    let prefix = format!(".{image_name}.sqfuse-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .strip_suffix(".tmp")
            .and_then(|r| r.rsplit('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
            .filter(|&p| p > 0)
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let dead = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if dead {
            // A pull's layout is a directory; the rest are files.
            let _ = std::fs::remove_file(e.path()).or_else(|_| std::fs::remove_dir_all(e.path()));
        }
    }
}

/// Copies what IMAGE holds before `offset` into the new file (zeros, as a
/// hole, where it holds less or does not exist yet).
fn keep_prefix(out: &mut File, image: &Path, offset: u64) -> std::io::Result<()> {
    if let Ok(old) = File::open(image) {
        std::io::copy(&mut std::io::Read::take(old, offset), out)?;
    }
    out.set_len(offset)?;
    out.seek(SeekFrom::Start(offset))?;
    Ok(())
}

/// Where a pack's tree comes from.
pub enum Source<'a> {
    /// Directories and files, or (with [`PackOptions::tar`]) one archive.
    Paths(&'a [PathBuf]),
    /// An OCI image's layers flattened, whiteouts applied (the tree `umoci
    /// unpack` makes); its config is written beside IMAGE as
    /// `IMAGE.config.json` ([`oci::config_path`]).
    OciFlattened(&'a oci::OciImage),
    /// One layer of an OCI image, its whiteouts in overlayfs form (so the
    /// layer images stack under a layered mount or overlayfs).
    OciLayer(&'a oci::OciImage, &'a oci::Descriptor),
    /// A tree built by the caller (an OCI image's layers), given the path
    /// of a spool file it may create for file data.
    Tree(BuildTree<'a>),
}

/// Builds a tree, given the spool file path it may write file data to.
pub type BuildTree<'a> = Box<dyn FnOnce(&Path) -> Result<scan::Tree, PackError> + 'a>;

/// Packs `sources` into `image`: one directory's contents, several sources
/// under a root of their own (as mksquashfs does), or with
/// [`PackOptions::tar`] the tar archive `sources[0]` (`-`: standard input).
/// The image is written to a temporary file and renamed into place;
/// [`pack_source`] also takes a stop flag and progress counters.
///
/// ```no_run
/// use sqfuse::pack::{pack, PackOptions};
/// let report = pack(&["site".into()], "site.sqfs".as_ref(), &PackOptions::default())?;
/// println!("{} files, {} bytes", report.files, report.image_size);
/// # Ok::<(), sqfuse::pack::PackError>(())
/// ```
pub fn pack(
    sources: &[PathBuf],
    image: &Path,
    opts: &PackOptions,
) -> Result<PackReport, PackError> {
    let never = AtomicBool::new(false);
    let progress = Arc::new(data::Progress::default());
    pack_source(Source::Paths(sources), image, opts, &never, progress)
}

/// Packs `source` into `image` (written to a temporary file, renamed into
/// place once complete).
pub fn pack_source(
    source: Source<'_>,
    image: &Path,
    opts: &PackOptions,
    stop: &AtomicBool,
    progress: Arc<data::Progress>,
) -> Result<PackReport, PackError> {
    // Appending: the image is read (and refused if it cannot be) before
    // anything is written; its compressor settings replace the options'.
    let appending = match &opts.append {
        Some(_) if std::fs::metadata(image).is_ok_and(|m| m.len() > 0) => {
            Some(append::open(image, opts)?)
        }
        _ => None,
    };
    let inherited;
    let opts = match &appending {
        Some(img) => {
            inherited = append::inherit(img, opts);
            &inherited
        }
        None => opts,
    };
    let bs = opts.block_size;
    if !valid_block_size(bs) {
        return Err(PackError::Usage(format!(
            "block size {bs} is not a power of two from 4K to 1M"
        )));
    }
    if opts.compressor == Compressor::Lzma {
        return Err(PackError::Usage(
            "lzma (legacy) images can be read but not written; use xz".into(),
        ));
    }
    let level = opts
        .level
        .unwrap_or(CompressSettings::default_level(opts.compressor));
    if !level_range(opts.compressor).contains(&level) {
        return Err(PackError::Usage(format!(
            "level {level} is outside {}'s range {:?}",
            opts.compressor.name(),
            level_range(opts.compressor)
        )));
    }
    if opts.xz_filters != 0 && opts.compressor != Compressor::Xz {
        return Err(PackError::Usage(
            "xz filters are for the xz compressor only".into(),
        ));
    }
    if opts.no_fragments && opts.always_fragments {
        return Err(PackError::Usage(
            "no_fragments and always_fragments contradict each other".into(),
        ));
    }
    if image.is_dir() {
        // Not even -f replaces a directory with an image.
        return Err(PackError::Usage(format!(
            "{} is a directory: name the image file to write (such as {})",
            image.display(),
            image.join("image.sqfs").display()
        )));
    }
    if image.exists() && !opts.force && appending.is_none() {
        return Err(PackError::Exists(image.to_path_buf()));
    }
    let config = match &source {
        Source::OciFlattened(img) => {
            let path = oci::config_path(image);
            oci::refuse_existing(&path, opts.force)?;
            Some((path, img.config.clone()))
        }
        _ => None,
    };
    let image_abs = std::path::absolute(image).map_err(|e| PackError::io(image, "resolve", e))?;
    let settings = compress_settings(opts, level)?;
    let dir = image_abs.parent().unwrap_or(Path::new("."));
    let name = image_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temporaries(dir, &name);
    one_heap(true);
    let mut spool_guard = TempGuard(None);
    // Where a source that is not a directory tree keeps file data until it
    // is packed; removed by the guard whatever happens.
    let mut new_spool = || {
        let spool = temp_name(dir, &name, "spool");
        spool_guard.0 = Some(spool.clone());
        spool
    };
    let mut tree = match source {
        Source::Tree(build) => build(&new_spool())?,
        Source::OciFlattened(img) => img.flatten(&new_spool(), image, opts)?,
        Source::OciLayer(img, layer) => img.layer_tree(layer, &new_spool(), image, opts)?,
        Source::Paths(sources) if opts.tar => {
            let [source] = sources else {
                return Err(PackError::Usage("--tar takes one archive".into()));
            };
            let spool = new_spool();
            let mode = opts.whiteouts.into();
            if source == Path::new("-") {
                let name = Path::new("standard input");
                let input = std::io::stdin().lock();
                tarsrc::read_tar(input, name, &spool, image, opts, mode, &progress.entries)?
            } else {
                let f = File::open(source).map_err(|e| PackError::io(source, "open", e))?;
                let r = std::io::BufReader::with_capacity(1 << 20, f);
                tarsrc::read_tar(r, source, &spool, image, opts, mode, &progress.entries)?
            }
        }
        Source::Paths(sources) if sources == [PathBuf::from("-")] => {
            pseudo::root_only(&opts.pseudo, opts)?
        }
        Source::Paths(sources) => {
            for source in sources {
                let source_abs =
                    std::fs::canonicalize(source).map_err(|e| PackError::io(source, "read", e))?;
                if image_abs.starts_with(&source_abs) {
                    return Err(PackError::Usage(format!(
                        "{} is inside the source {}",
                        image.display(),
                        source.display()
                    )));
                }
            }
            scan::scan(sources, opts, &progress.entries)?
        }
    };
    let mut append_guard = TempGuard(None);
    if let (Some(img), Some(a)) = (&appending, &opts.append) {
        let spool = temp_name(dir, &name, "append");
        append_guard.0 = Some(spool.clone());
        let old = append::read_tree(img, image, &spool)?;
        tree = append::merge(old, tree, a.root_becomes.as_deref())?;
    }
    if !opts.xattr_filter.is_empty() && !opts.no_xattrs {
        opts.xattr_filter.apply(&mut tree.root);
    }
    let mut pseudo_guard = TempGuard(None);
    if !opts.pseudo.is_empty() {
        let spool = temp_name(dir, &name, "pseudo");
        pseudo_guard.0 = Some(spool.clone());
        pseudo::apply(&mut tree, &opts.pseudo, opts, &spool)?;
    }
    one_heap(false);
    release_freed_memory();
    memory_checkpoint("scan");
    if !opts.order.is_empty() {
        let matched = opts.order.apply(&mut tree);
        if matched < opts.order.len() {
            tree.warnings.push(format!(
                "{} of the {} paths given to order the data are not in the tree",
                opts.order.len() - matched,
                opts.order.len()
            ));
        }
    }
    let mkfs_time = opts
        .mkfs_time
        .or(opts.source_date_epoch)
        .unwrap_or(tree.newest_mtime);
    if tree.synthetic_root {
        tree.root.mtime = opts.all_time.or(opts.root_time).unwrap_or(mkfs_time);
    }
    let r = &opts.root;
    if let Some(m) = &r.mode {
        tree.root.perm = m.apply(tree.root.perm, true);
    }
    tree.root.uid = r.uid.unwrap_or(tree.root.uid);
    tree.root.gid = r.gid.unwrap_or(tree.root.gid);
    tree.root.mtime = r.mtime.unwrap_or(tree.root.mtime);
    if r.newest_mtime {
        tree.root.mtime = tree.newest_mtime;
    }
    let tmp = temp_name(dir, &name, "pack");
    let (mut out, mut temp_out) =
        output::TempOutput::create(dir, tmp).map_err(|e| output_error(image, e))?;
    let werr = |e: std::io::Error| output_error(image, e);
    let base = opts.offset;
    if base > 0 {
        keep_prefix(&mut out, &image_abs, base).map_err(werr)?;
    }

    // Superblock placeholder, then compressor options (a stored metadata block).
    out.write_all(&[0u8; superblock::SIZE]).map_err(werr)?;
    let mut at = superblock::SIZE as u64;
    let options = settings.options().map(|o| o.encode());
    if let Some(o) = &options {
        // Always stored uncompressed: the reader needs it to decompress.
        let block = encode_block(o, None);
        out.write_all(&block).map_err(werr)?;
        at += block.len() as u64;
    }
    let target = data::Output {
        file: out,
        image,
        data_start: at,
    };
    let data = data::write_data(&tree.files, target, opts, settings, stop, progress)?;
    memory_checkpoint("data");
    let tables = tables::build(&tree, &data, settings, opts, data.end)?;
    memory_checkpoint("tables");
    let mut out: &File = &data.out;
    out.seek(SeekFrom::Start(base + data.end)).map_err(werr)?;
    out.write_all(&tables.bytes).map_err(werr)?;
    let bytes_used = data.end + tables.bytes.len() as u64;
    // The kernel reads in 4 KiB units: pad the file (not bytes_used).
    let padded = if opts.pad {
        bytes_used.next_multiple_of(4096)
    } else {
        bytes_used
    };
    out.write_all(&vec![0u8; (padded - bytes_used) as usize])
        .map_err(werr)?;

    let u = opts.uncompressed;
    let mut fl = 0;
    for (set, bit) in [
        (u.inodes, flags::UNCOMPRESSED_INODES),
        (u.data, flags::UNCOMPRESSED_DATA),
        (u.fragments, flags::UNCOMPRESSED_FRAGMENTS),
        (u.xattrs, flags::UNCOMPRESSED_XATTRS),
        // -noI implies it, and then the flag is not set (as mksquashfs).
        (u.ids && !u.inodes, flags::UNCOMPRESSED_IDS),
    ] {
        if set {
            fl |= bit;
        }
    }
    if opts.no_fragments {
        fl |= flags::NO_FRAGMENTS;
    }
    if opts.always_fragments {
        fl |= flags::ALWAYS_FRAGMENTS;
    }
    if !opts.no_dedup {
        fl |= flags::DUPLICATES;
    }
    if tables.export_table_start.is_some() {
        fl |= flags::EXPORTABLE;
    }
    if opts.no_xattrs {
        fl |= flags::NO_XATTRS;
    }
    if options.is_some() {
        fl |= flags::COMPRESSOR_OPTIONS;
    }
    let sb = Superblock {
        inode_count: tables.inode_count,
        mkfs_time,
        block_size: bs,
        fragment_entry_count: data.fragments.len() as u32,
        compression_id: opts.compressor as u16,
        block_log: bs.trailing_zeros() as u16,
        flags: fl,
        id_count: tables.id_count,
        version_major: 4,
        version_minor: 0,
        root_inode_ref: tables.root_ref.0,
        bytes_used,
        id_table_start: tables.id_table_start,
        xattr_id_table_start: tables.xattr_id_table_start,
        inode_table_start: tables.inode_table_start,
        directory_table_start: tables.directory_table_start,
        fragment_table_start: tables.fragment_table_start,
        export_table_start: tables.export_table_start,
    };
    out.seek(SeekFrom::Start(base)).map_err(werr)?;
    out.write_all(&sb.to_bytes()).map_err(werr)?;
    let appended = match &opts.verity_salt {
        Some(salt) => Some(verity::append_tree(out, image, salt.clone())?),
        None => None,
    };
    out.sync_all().map_err(werr)?;
    let (bytes_in, duplicates) = (data.bytes_in, data.duplicates);
    temp_out.persist(&data.out, &image_abs).map_err(werr)?;
    drop(data);
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    if let Some((path, bytes)) = config {
        oci::write_atomically(&path, &bytes)?;
    }
    Ok(PackReport {
        files: tree.files.len() as u64,
        inodes: tables.inode_count,
        bytes_in,
        data_bytes: tree.files.iter().map(|f| f.size).sum(),
        image_size: padded,
        duplicates,
        warnings: tree.warnings,
        verity: appended,
    })
}

/// One heap for every thread while the tree is gathered (`true`), then
/// glibc's default of a heap per thread again (`false`). The scan's threads
/// allocate the per-entry records and the numbering thread the tree that
/// replaces them: with a heap per thread the records' freed memory cannot
/// be reused for the tree, and the peak holds both. The data stage's
/// threads, started later, get heaps of their own: sharing one slowed them
/// down (docs/benchmarks.md has the pack's time and memory).
fn one_heap(on: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's default limit: 8 heaps per core.
        let limit = if on {
            1
        } else {
            std::thread::available_parallelism().map_or(8, |n| 8 * n.get() as i32)
        };
        // SAFETY: mallopt only changes the allocator's tuning.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, limit);
        }
    }
}

/// Hands the pages of freed heap back to the system. The scan's
/// per-entry records are freed as the tree is numbered, but the allocator
/// keeps their pages (the heap's top is still in use) and the pack's peak
/// would count them again on top of the data stage's memory.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// With `SQFUSE_PACK_MEMORY` set: the resident and peak memory after a
/// stage, on standard error (how the README's memory figures were taken).
pub(crate) fn memory_checkpoint(stage: &str) {
    if std::env::var_os("SQFUSE_PACK_MEMORY").is_none() {
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map_or("?", |v| v.trim())
            .to_string()
    };
    eprintln!(
        "sqfuse pack: after {stage}: resident {}, peak {}",
        field("VmRSS:"),
        field("VmHWM:")
    );
}
