//! mksquashfs 4.7's command line, turned into a pack request. Every
//! option of `mksquashfs -help-all` is either taken (with its meaning),
//! accepted as having nothing to change here (tuning of mksquashfs's own
//! readers and queues), or refused with an error naming it.

use super::exclude::{exclude_rules, read_exclude_file, ExcludeKind};
use super::{Action, Job, Progress};
use crate::cli::compat::{gid_of, text, uid_of, value, value_str};
use crate::format::compressor::{Compressor, Engine, GZIP_STRATEGIES, XZ_FILTERS};
use crate::pack::mode::ModeChange;
use crate::pack::pseudo::parse_time;
use crate::pack::{Layout, PackOptions, Uncompressed};
use crate::size::parse_size;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Options that only tune mksquashfs's own machinery (its reader threads,
/// queues, memory, pager, output columns): sqfuse's packer sizes itself,
/// so they are taken and change nothing. The number says how many values
/// follow.
const TUNING: &[(&str, usize)] = &[
    ("-single-reader", 0),
    ("-small-readers", 1),
    ("-block-readers", 1),
    ("-mem", 1),
    ("-mem-percent", 1),
    ("-mem-default", 0),
    ("-overcommit", 1),
    ("-throttle", 1),
    ("-limit", 1),
    ("-no-pager", 0),
    ("-cols", 1),
    ("-no-recovery", 0),
    ("-recovery-path", 1),
    ("-exit-on-error", 0),
    ("-no-progress", 0),
    ("-progress", 0),
    ("-ignore-zeros", 0),
    ("-numeric-owner", 0),
];

/// Options mksquashfs has that sqfuse does not do, with why.
const REFUSED: &[(&str, &str)] = &[
    ("-zip", "zip archives are not read"),
    ("-cpiostyle", "pathnames from standard input are not read"),
    ("-cpiostyle0", "pathnames from standard input are not read"),
    ("-dereference", "symbolic links are stored as links"),
    ("-deref", "symbolic links are stored as links"),
    ("-deref-path", "symbolic links are stored as links"),
    ("-action", "actions are not evaluated"),
    ("-log-action", "actions are not evaluated"),
    ("-true-action", "actions are not evaluated"),
    ("-false-action", "actions are not evaluated"),
    ("-action-file", "actions are not evaluated"),
    ("-log-action-file", "actions are not evaluated"),
    ("-true-action-file", "actions are not evaluated"),
    ("-false-action-file", "actions are not evaluated"),
    ("-stream", "the image is written to a file"),
    ("-fix", "images are not repaired"),
    ("-max-depth", "the whole tree is packed"),
    ("-one-file-system-x", "use -one-file-system"),
    ("-info-file", "-info lists nothing"),
    (
        "-recover",
        "sqfuse writes through a temporary file, so no recovery file exists",
    ),
];

/// A time option's value: a time, or `inode` (the newest inode's time).
fn time_or_inode(opt: &str, v: &str) -> Result<Option<u32>, String> {
    if v == "inode" {
        return Ok(None);
    }
    parse_time(v).map(Some).map_err(|e| format!("{opt}: {e}"))
}

fn mode(opt: &str, v: &str) -> Result<ModeChange, String> {
    v.parse().map_err(|e| format!("{opt}: {e}"))
}

fn count(opt: &str, v: &str) -> Result<u32, String> {
    v.parse()
        .map_err(|_| format!("{opt} {v}: not a non-negative number"))
}

/// A compressor option (`-X...`), kept until the compressor is known:
/// mksquashfs takes them before `-comp` too.
struct XOption {
    name: String,
    value: Option<String>,
}

/// Which `-X` options take a value.
pub(crate) const X_WITH_VALUE: &[&str] = &[
    "-Xcompression-level",
    "-Xwindow-size",
    "-Xstrategy",
    "-Xalgorithm",
    "-Xacceleration",
    "-Xbcj",
    "-Xdict-size",
];

/// Parses the arguments after argv[0]. `source_date_epoch` is the
/// environment's, if set.
pub fn parse(args: &[OsString], source_date_epoch: Option<u32>) -> Result<Action, String> {
    let first_opt = args
        .iter()
        .position(|a| a.as_bytes().first() == Some(&b'-') && a.as_bytes() != b"-")
        .unwrap_or(args.len());
    for a in &args[first_opt..] {
        match text(a) {
            Some("-version") => return Ok(Action::Version),
            Some(
                "-help" | "-h" | "-help-all" | "-ha" | "-help-option" | "-ho" | "-help-section"
                | "-hs" | "-help-comp" | "-Xhelp",
            ) => return Ok(Action::Help),
            _ => {}
        }
    }
    let (paths, options) = args.split_at(first_opt);
    let Some((image, sources)) = paths.split_last() else {
        return Err("give SOURCE... FILESYSTEM (see -help)".into());
    };
    let mut opts = PackOptions {
        compressor: Compressor::Gzip,
        ..Default::default()
    };
    opts.tuning.engine = Engine::SquashfsTools;
    let mut x_opts: Vec<XOption> = Vec::new();
    let (mut noappend, mut tar, mut comp_given) = (false, false, false);
    let mut progress = Progress::Bar;
    let mut quiet = false;
    let mut mkfs_time: Option<Option<u32>> = None; // Some(None): "inode"
    let mut inode_time: Option<u32> = None;
    let mut root_time: Option<Option<u32>> = None;
    let mut root_becomes: Option<String> = None;
    let mut exclude_kind = ExcludeKind::Paths;
    let mut exclude_args: Vec<String> = Vec::new();
    let mut exclude_files: Vec<PathBuf> = Vec::new();
    let mut sort_files: Vec<PathBuf> = Vec::new();
    let mut pseudo_files: Vec<PathBuf> = Vec::new();
    let mut it = options.iter();
    while let Some(a) = it.next() {
        let o = text(a).ok_or_else(|| {
            format!(
                "option {:?} is not UTF-8",
                String::from_utf8_lossy(a.as_bytes())
            )
        })?;
        if let Some(&(_, n)) = TUNING.iter().find(|(t, _)| *t == o) {
            for _ in 0..n {
                value_str(o, &mut it)?;
            }
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == o) {
            return Err(format!(
                "option {o} is not supported by sqfuse's mksquashfs: {why}"
            ));
        }
        if o.starts_with("-X") {
            let v = if X_WITH_VALUE.contains(&o) {
                Some(value_str(o, &mut it)?.to_string())
            } else {
                None
            };
            x_opts.push(XOption {
                name: o.to_string(),
                value: v,
            });
            continue;
        }
        match o {
            "-noappend" => noappend = true,
            "-comp" => {
                comp_given = true;
                opts.compressor = crate::cli::compat::compressor_named(o, value_str(o, &mut it)?)?;
            }
            "-b" => opts.block_size = crate::cli::compat::block_size(o, value_str(o, &mut it)?)?,
            "-noI" | "-noInodeCompression" => opts.uncompressed.inodes = true,
            "-noId" | "-noIdTableCompression" => opts.uncompressed.ids = true,
            "-noD" | "-noDataCompression" => opts.uncompressed.data = true,
            "-noF" | "-noFragmentCompression" => opts.uncompressed.fragments = true,
            "-noX" | "-noXattrCompression" => opts.uncompressed.xattrs = true,
            "-no-compression" => opts.uncompressed = Uncompressed::ALL,
            "-tar" => tar = true,
            // -no-strip wins over -keep-as-directory, in any order.
            "-no-strip" | "-tarstyle" => opts.layout = Layout::FullPaths,
            "-keep-as-directory" if opts.layout != Layout::FullPaths => {
                opts.layout = Layout::KeepAsDirectory
            }
            "-keep-as-directory" => {}
            "-no-exports" => opts.no_exports = true,
            "-exports" => opts.no_exports = false,
            "-no-sparse" => opts.no_sparse = true,
            "-tailends" | "-always-use-fragments" => opts.always_fragments = true,
            "-no-tailends" => opts.always_fragments = false,
            "-no-fragments" => opts.no_fragments = true,
            "-no-duplicates" => opts.no_dedup = true,
            "-no-hardlinks" => opts.no_hardlinks = true,
            "-mkfs-time" | "-fstime" => mkfs_time = Some(time_or_inode(o, value_str(o, &mut it)?)?),
            "-inode-time" | "-all-time" => {
                let v = value_str(o, &mut it)?;
                inode_time = Some(time_or_inode(o, v)?.ok_or_else(|| {
                    format!("{o} inode: not supported by sqfuse's mksquashfs; give a time")
                })?);
            }
            "-root-time" => root_time = Some(time_or_inode(o, value_str(o, &mut it)?)?),
            "-repro" => mkfs_time = Some(None),
            "-repro-time" => {
                let t = time_or_inode(o, value_str(o, &mut it)?)?
                    .ok_or_else(|| format!("{o} takes a time"))?;
                mkfs_time = Some(Some(t));
                inode_time = Some(t);
            }
            "-all-root" | "-root-owned" => opts.all_root = true,
            "-root-mode" => opts.root.mode = Some(mode(o, value_str(o, &mut it)?)?),
            "-root-uid" => opts.root.uid = Some(uid_of(value_str(o, &mut it)?)?),
            "-root-gid" => opts.root.gid = Some(gid_of(value_str(o, &mut it)?)?),
            "-force-file-mode" => opts.file_mode = Some(mode(o, value_str(o, &mut it)?)?),
            "-force-dir-mode" => opts.dir_mode = Some(mode(o, value_str(o, &mut it)?)?),
            "-force-uid" => opts.force_uid = Some(uid_of(value_str(o, &mut it)?)?),
            "-force-gid" => opts.force_gid = Some(gid_of(value_str(o, &mut it)?)?),
            "-uid-gid-offset" => opts.id_offset = count(o, value_str(o, &mut it)?)?,
            "-default-mode" => {
                let m = mode(o, value_str(o, &mut it)?)?;
                opts.made_dir.perm = Some(m.apply(opts.made_dir.perm.unwrap_or(0o777), true));
            }
            "-default-uid" => opts.made_dir.uid = Some(uid_of(value_str(o, &mut it)?)?),
            "-default-gid" => opts.made_dir.gid = Some(gid_of(value_str(o, &mut it)?)?),
            "-p" => {
                let v = value(o, &mut it)?;
                opts.pseudo.add_definition(v.as_bytes())?;
            }
            "-pd" | "-pseudo-dir" => {
                let v = value(o, &mut it)?;
                opts.pseudo.set_default_dir(v.as_bytes())?;
            }
            "-pf" => pseudo_files.push(PathBuf::from(value(o, &mut it)?)),
            "-pseudo-override" => opts.pseudo.override_globals = true,
            "-ef" => exclude_files.push(PathBuf::from(value(o, &mut it)?)),
            "-wildcards" => exclude_kind = ExcludeKind::Wildcards,
            "-regex" => exclude_kind = ExcludeKind::Regex,
            "-one-file-system" => opts.one_file_system = true,
            "-sort" => sort_files.push(PathBuf::from(value(o, &mut it)?)),
            "-xattrs-exclude" | "-xattrs-include" => {
                let v = value_str(o, &mut it)?;
                let r = regex::bytes::Regex::new(v).map_err(|e| {
                    let text = e.to_string();
                    // regex's message is a drawing over several lines: its last says what.
                    let why = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    format!("{o} {v:?}: not a regular expression ({})", why.trim())
                })?;
                if o == "-xattrs-exclude" {
                    opts.xattr_filter.exclude = Some(r);
                } else {
                    opts.xattr_filter.include = Some(r);
                }
            }
            "-xattrs-add" => {
                let v = value(o, &mut it)?;
                let x = crate::pack::pseudo::parse_xattr(o, v.as_bytes())?;
                opts.xattr_filter.add.push(x);
            }
            "-no-xattrs" => opts.no_xattrs = true,
            "-xattrs" => opts.no_xattrs = false,
            "-quiet" => quiet = true,
            "-info" => {}
            "-percentage" => progress = Progress::Percentage,
            "-processors" => {
                let v = value_str(o, &mut it)?;
                opts.threads = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{o} {v}: not a positive number"))?;
            }
            "-root-becomes" => root_becomes = Some(value_str(o, &mut it)?.to_string()),
            "-nopad" => opts.pad = false,
            "-offset" | "-o" => {
                let v = value_str(o, &mut it)?;
                opts.offset = parse_size(v).map_err(|e| format!("{o}: {e}"))?;
            }
            "-e" => {
                exclude_args = it
                    .by_ref()
                    .map(|a| text(a).map(str::to_string).ok_or("an exclude is not UTF-8"))
                    .collect::<Result<_, _>>()?;
                if exclude_args.is_empty() {
                    return Err("-e needs a list of exclude dirs/files".into());
                }
            }
            _ => {
                return Err(format!(
                    "option {o} is not a mksquashfs option (see -help-all)"
                ))
            }
        }
    }
    compressor_options(&mut opts, &x_opts)?;
    if source_date_epoch.is_some() && (mkfs_time.is_some() || inode_time.is_some()) {
        return Err(
            "SOURCE_DATE_EPOCH and -mkfs-time/-inode-time/-repro-time cannot be used at the same time"
                .into(),
        );
    }
    opts.source_date_epoch = source_date_epoch;
    opts.all_time = inode_time;
    opts.mkfs_time = match (mkfs_time, source_date_epoch) {
        (Some(t), _) => t, // None: the newest inode's time
        (None, Some(sde)) => Some(sde),
        (None, None) => Some(crate::pack::now()),
    };
    // A root mksquashfs makes (several sources, -tar) gets the clock's time
    // unless told otherwise; SOURCE_DATE_EPOCH clamps it.
    let now = crate::pack::now();
    opts.root_time = Some(source_date_epoch.map_or(now, |t| t.min(now)));
    match root_time {
        Some(Some(t)) => opts.root.mtime = Some(t),
        Some(None) => opts.root.newest_mtime = true,
        None => {}
    }
    let image = PathBuf::from(image);
    let spool_dir = image
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    for f in &pseudo_files {
        opts.pseudo.add_file(f, &spool_dir)?;
    }
    opts.tar = tar;
    opts.tar_root_from_archive = false; // mksquashfs -tar makes its own root
    let mut sources: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
    if tar {
        if !(sources.is_empty() || sources == [PathBuf::from("-")]) {
            return Err("-tar reads standard input: give - (or nothing) as the source".into());
        }
        sources = vec![PathBuf::from("-")];
    } else if sources.is_empty() {
        return Err("give SOURCE... FILESYSTEM (see -help)".into());
    } else if sources.len() > 1 && sources.iter().any(|s| s == Path::new("-")) {
        return Err("the source - (none: pseudo definitions only) stands alone".into());
    }
    for f in &exclude_files {
        exclude_args.extend(read_exclude_file(f)?);
    }
    opts.excludes = exclude_rules(&exclude_args, exclude_kind, &sources)?;
    for f in &sort_files {
        let file = std::fs::File::open(f)
            .map_err(|e| format!("sort file {}: {}", f.display(), crate::error::io_words(&e)))?;
        opts.order
            .add_sort_file(std::io::BufReader::new(file), f, &sources)
            .map_err(|e| e.to_string())?;
    }
    Ok(Action::Pack(Box::new(Job {
        sources,
        image,
        opts,
        progress: if quiet { Progress::Quiet } else { progress },
        append: !noappend,
        root_becomes,
        comp_given,
    })))
}

/// Applies the `-X` options to the chosen compressor, with its defaults
/// (as mksquashfs sets them) for the rest.
fn compressor_options(opts: &mut PackOptions, x: &[XOption]) -> Result<(), String> {
    let c = opts.compressor;
    let mut level: Option<u32> = None;
    let mut hc = false;
    for XOption { name, value } in x {
        let v = value.as_deref().unwrap_or("");
        let wrong = || {
            format!(
                "{name}: not an option of {} (see -help-comp {})",
                c.name(),
                c.name()
            )
        };
        let num = |lo: u32, hi: u32| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("{name} {v}: should be {lo} .. {hi}"))
        };
        match (c, name.as_str()) {
            (Compressor::Gzip, "-Xcompression-level") => level = Some(num(1, 9)?),
            (Compressor::Gzip, "-Xwindow-size") => opts.tuning.gzip_window = num(8, 15)? as u16,
            (Compressor::Gzip, "-Xstrategy") => {
                for s in v.split(',') {
                    let i = GZIP_STRATEGIES
                        .iter()
                        .position(|g| *g == s)
                        .ok_or_else(|| {
                            format!(
                                "{name}: unknown strategy {s:?} ({})",
                                GZIP_STRATEGIES.join(", ")
                            )
                        })?;
                    opts.tuning.gzip_strategies |= 1 << i;
                }
            }
            (Compressor::Lzo, "-Xalgorithm") if v == "lzo1x_999" => {}
            (Compressor::Lzo, "-Xalgorithm") => {
                return Err(format!(
                    "{name} {v}: sqfuse writes lzo1x_999 only (the default)"
                ))
            }
            (Compressor::Lzo, "-Xcompression-level") => level = Some(num(1, 9)?),
            (Compressor::Lz4, "-Xhc") => hc = true,
            (Compressor::Lz4, "-Xacceleration") => opts.tuning.lz4_acceleration = num(1, 65537)?,
            (Compressor::Lz4, "-Xcompression-level") => level = Some(num(1, 12)?),
            (Compressor::Xz, "-Xbcj") => {
                for f in v.split(',') {
                    let i = XZ_FILTERS.iter().position(|x| *x == f).ok_or_else(|| {
                        format!("{name}: unknown filter {f:?} ({})", XZ_FILTERS.join(", "))
                    })?;
                    opts.xz_filters |= 1 << i;
                }
            }
            (Compressor::Xz, "-Xdict-size") => {
                let bs = u64::from(opts.block_size);
                let d = match v.strip_suffix('%') {
                    Some(p) => {
                        let pct: f64 = p
                            .parse()
                            .ok()
                            .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
                            .ok_or_else(|| format!("{name} {v}: not a percentage up to 100%"))?;
                        (bs as f64 * pct / 100.0) as u64
                    }
                    None => parse_size(v).map_err(|e| format!("{name}: {e}"))?,
                };
                opts.tuning.xz_dict_size =
                    Some(u32::try_from(d).map_err(|_| format!("{name} {v}: too large"))?);
            }
            (Compressor::Zstd, "-Xcompression-level") => {
                if v.starts_with('-') {
                    return Err(format!("{name} {v}: negative (fast) zstd levels are not written by sqfuse; use 1 .. 22"));
                }
                level = Some(num(1, 22)?)
            }
            _ => return Err(wrong()),
        }
    }
    // mksquashfs's own defaults per compressor.
    opts.level = Some(match c {
        Compressor::Lz4 if hc => level.unwrap_or(12),
        Compressor::Lz4 => 0,
        Compressor::Zstd => level.unwrap_or(15),
        Compressor::Gzip => level.unwrap_or(9),
        Compressor::Lzo => level.unwrap_or(8),
        _ => level.unwrap_or(6),
    });
    if c == Compressor::Lz4 && !hc && level.is_some() {
        return Err("-Xcompression-level applies to lz4 with -Xhc only".into());
    }
    Ok(())
}
