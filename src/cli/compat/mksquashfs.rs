//! `mksquashfs SOURCE... FILESYSTEM [OPTIONS] [-e LIST...]`: the options
//! build scripts use (Apptainer, appimagetool, distro image builders),
//! mapped onto `sqfuse pack`. Defaults are mksquashfs's: gzip, 128K blocks,
//! the build time as the image time (SOURCE_DATE_EPOCH honoured).

use super::{gid_of, text, uid_of, value, value_str};
use crate::cli::args::parse_xz_filter;
use crate::error::io_words;
use crate::format::block::valid_block_size;
use crate::format::compressor::{CompressSettings, Compressor};
use crate::pack::exclude::Rule;
use crate::pack::PackOptions;
use crate::size::parse_size;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The squashfs-tools release whose options this follows.
pub const COMPATIBLE: &str = "4.7";

#[derive(Debug)]
pub struct Job {
    pub sources: Vec<PathBuf>,
    pub image: PathBuf,
    pub opts: PackOptions,
    /// -quiet: no summary.
    pub quiet: bool,
}

#[derive(Debug)]
pub enum Action {
    Help,
    Version,
    Pack(Box<Job>),
}

/// How an exclude list is read: mksquashfs's plain paths, or patterns.
#[derive(Clone, Copy, PartialEq)]
enum ExcludeKind {
    Paths,
    Wildcards,
    Regex,
}

/// A time as mksquashfs takes it: seconds, or any string `date -d` reads.
fn time_of(opt: &str, s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let out = std::process::Command::new("date")
        .args(["-d", s, "+%s"])
        .output()
        .map_err(|e| format!("{opt} {s}: cannot run date: {}", io_words(&e)))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("{opt}: {s:?} is not a time"))
}

/// Options that take a value, accepted so that they are skipped correctly
/// while looking for the first option (sources end there).
fn unsupported(opt: &str) -> String {
    format!("option {opt} is not supported by sqfuse's mksquashfs (see the README's table)")
}

/// Parses the arguments after argv[0]. `source_date_epoch` is the
/// environment's, if set.
pub fn parse(args: &[OsString], source_date_epoch: Option<u32>) -> Result<Action, String> {
    let first_opt = args
        .iter()
        .position(|a| text(a).is_some_and(|t| t.starts_with('-') && t != "-"))
        .unwrap_or(args.len());
    for a in &args[first_opt..] {
        match text(a) {
            Some("-version") => return Ok(Action::Version),
            Some("-help" | "-h" | "-help-all" | "-ha") => return Ok(Action::Help),
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
    let mut level: Option<u32> = None;
    let (mut noappend, mut quiet, mut tar, mut hc) = (false, false, false, false);
    let mut mkfs_time: Option<Option<u32>> = None; // Some(None): "inode"
    let mut inode_time: Option<u32> = None;
    let mut exclude_kind = ExcludeKind::Paths;
    let mut exclude_args: Vec<String> = Vec::new();
    let mut exclude_files: Vec<PathBuf> = Vec::new();
    let mut sort_files: Vec<PathBuf> = Vec::new();
    let mut it = options.iter();
    while let Some(a) = it.next() {
        let o = text(a).ok_or("an option is not UTF-8")?;
        match o {
            "-noappend" => noappend = true,
            "-comp" => {
                opts.compressor = match value_str(o, &mut it)? {
                    "gzip" => Compressor::Gzip,
                    "xz" => Compressor::Xz,
                    "lz4" => Compressor::Lz4,
                    "zstd" => Compressor::Zstd,
                    "lzo" => Compressor::Lzo,
                    "lzma" => {
                        return Err(
                            "-comp lzma: legacy lzma images can be read, not written; use xz"
                                .into(),
                        )
                    }
                    c => return Err(format!("-comp {c}: unknown compressor")),
                }
            }
            "-b" => {
                let v = value_str(o, &mut it)?;
                let bs = parse_size(v)
                    .ok()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| valid_block_size(n))
                    .ok_or_else(|| format!("-b {v}: not a power of two from 4K to 1M"))?;
                opts.block_size = bs;
            }
            "-Xcompression-level" => {
                let v = value_str(o, &mut it)?;
                level = Some(v.parse().map_err(|_| format!("{o} {v}: not a number"))?);
            }
            "-Xbcj" => {
                // mksquashfs tries each filter listed and keeps the smallest
                // result; sqfuse uses the first (the output is reproducible).
                let v = value_str(o, &mut it)?;
                for f in v.split(',') {
                    opts.xz_filters |= parse_xz_filter(f)?;
                }
            }
            "-Xhc" => hc = true,
            "-processors" => {
                let v = value_str(o, &mut it)?;
                opts.threads = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{o} {v}: not a positive number"))?;
            }
            "-mem" => {
                // Memory here stays flat whatever the tree: nothing to size.
                let v = value_str(o, &mut it)?;
                parse_size(v).map_err(|e| format!("{o}: {e}"))?;
            }
            "-all-root" | "-root-owned" => opts.all_root = true,
            "-force-uid" => opts.force_uid = Some(uid_of(value_str(o, &mut it)?)?),
            "-force-gid" => opts.force_gid = Some(gid_of(value_str(o, &mut it)?)?),
            "-no-xattrs" => opts.no_xattrs = true,
            "-xattrs" => opts.no_xattrs = false,
            "-no-fragments" => opts.no_fragments = true,
            "-always-use-fragments" => opts.always_fragments = true,
            "-no-duplicates" => opts.no_dedup = true,
            "-no-exports" => opts.no_exports = true,
            "-exports" => opts.no_exports = false,
            "-no-sparse" => opts.no_sparse = true,
            "-one-file-system" => opts.one_file_system = true,
            "-wildcards" => exclude_kind = ExcludeKind::Wildcards,
            "-regex" => exclude_kind = ExcludeKind::Regex,
            "-ef" => exclude_files.push(PathBuf::from(value(o, &mut it)?)),
            "-sort" => sort_files.push(PathBuf::from(value(o, &mut it)?)),
            "-e" => {
                exclude_args = it
                    .by_ref()
                    .map(|a| text(a).map(str::to_string).ok_or("an exclude is not UTF-8"))
                    .collect::<Result<_, _>>()?;
                if exclude_args.is_empty() {
                    return Err("-e needs a list of exclude dirs/files".into());
                }
            }
            "-mkfs-time" | "-fstime" => {
                let v = value_str(o, &mut it)?;
                mkfs_time = Some(if v == "inode" {
                    None
                } else {
                    Some(time_of(o, v)?)
                });
            }
            "-all-time" | "-inode-time" => inode_time = Some(time_of(o, value_str(o, &mut it)?)?),
            "-repro" => mkfs_time = Some(None),
            "-repro-time" => {
                let t = time_of(o, value_str(o, &mut it)?)?;
                mkfs_time = Some(Some(t));
                inode_time = Some(t);
            }
            "-quiet" => quiet = true,
            "-no-progress" | "-progress" | "-info" => {}
            "-tar" => tar = true,
            "-offset" | "-o" => {
                let v = value_str(o, &mut it)?;
                opts.offset = parse_size(v).map_err(|e| format!("{o}: {e}"))?;
            }
            "-root-becomes" => {
                // Only appending uses it (the old root moves under NAME);
                // mksquashfs ignores it with -noappend, and so does sqfuse.
                value(o, &mut it)?;
            }
            _ => return Err(unsupported(o)),
        }
    }
    let image = PathBuf::from(image);
    if !noappend && image.exists() {
        // mksquashfs would append to it; sqfuse writes new images only.
        return Err(format!(
            "{} exists: appending is not supported, -noappend writes a new image",
            image.display()
        ));
    }
    opts.force = true; // -noappend, or a new file
    if hc && opts.compressor != Compressor::Lz4 {
        return Err("-Xhc needs -comp lz4".into());
    }
    if opts.xz_filters != 0 && opts.compressor != Compressor::Xz {
        return Err("-Xbcj needs -comp xz".into());
    }
    // mksquashfs's own defaults per compressor.
    opts.level = Some(match opts.compressor {
        Compressor::Lz4 => level.unwrap_or(if hc { 12 } else { 0 }),
        Compressor::Zstd => level.unwrap_or(15),
        c => level.unwrap_or(CompressSettings::default_level(c)),
    });
    if source_date_epoch.is_some() && (mkfs_time.is_some() || inode_time.is_some()) {
        return Err(
            "SOURCE_DATE_EPOCH and -mkfs-time/-all-time cannot be used at the same time".into(),
        );
    }
    opts.source_date_epoch = source_date_epoch;
    opts.all_time = inode_time;
    opts.mkfs_time = match (mkfs_time, source_date_epoch) {
        (Some(t), _) => t, // None: the newest inode's time
        (None, Some(_)) => None,
        (None, None) => Some(now()),
    };
    opts.tar = tar;
    opts.tar_root_from_archive = false; // mksquashfs -tar makes its own root
                                        // A root mksquashfs makes (several sources, -tar) gets the clock's time,
                                        // whatever -mkfs-time says; SOURCE_DATE_EPOCH clamps it.
    opts.root_time = Some(source_date_epoch.map_or(now(), |t| t.min(now())));
    let mut sources: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
    if tar {
        if !(sources.is_empty() || sources == [PathBuf::from("-")]) {
            return Err("-tar reads standard input: give - (or nothing) as the source".into());
        }
        sources = vec![PathBuf::from("-")];
    } else if sources.is_empty() {
        return Err("give SOURCE... FILESYSTEM (see -help)".into());
    }
    for f in &exclude_files {
        exclude_args.extend(read_exclude_file(f)?);
    }
    opts.excludes = exclude_rules(&exclude_args, exclude_kind, &sources)?;
    for f in &sort_files {
        let file = std::fs::File::open(f)
            .map_err(|e| format!("sort file {}: {}", f.display(), io_words(&e)))?;
        opts.order
            .add_sort_file(std::io::BufReader::new(file), f, &sources)
            .map_err(|e| e.to_string())?;
    }
    Ok(Action::Pack(Box::new(Job {
        sources,
        image,
        opts,
        quiet,
    })))
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32)
}

/// An -ef file: one exclude per line; blank lines and `#` comments
/// skipped, leading white space dropped, a leading `\` escaped.
fn read_exclude_file(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("-ef {}: {}", path.display(), io_words(&e)))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix('\\').unwrap_or(l).to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// mksquashfs's excludes: plain paths name files (relative to each
/// source, or absolute, ./ or ../ relative to here), compared by device
/// and inode; with -wildcards or -regex they are patterns.
fn exclude_rules(
    args: &[String],
    kind: ExcludeKind,
    sources: &[PathBuf],
) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for a in args {
        match kind {
            ExcludeKind::Wildcards | ExcludeKind::Regex => {
                if a.starts_with('/') || a.starts_with("./") || a.starts_with("../") {
                    return Err(format!(
                        "exclude {a:?}: /, ./ and ../ prefixed excludes are not supported with -wildcards or -regex"
                    ));
                }
                rules.push(Rule::Components {
                    pattern: a.clone(),
                    regex: kind == ExcludeKind::Regex,
                })
            }
            ExcludeKind::Paths => {
                let here = a.starts_with('/') || a.starts_with("./") || a.starts_with("../");
                let candidates: Vec<PathBuf> = if here {
                    vec![PathBuf::from(a)]
                } else {
                    sources.iter().map(|s| s.join(a)).collect()
                };
                // A path that does not exist excludes nothing (mksquashfs
                // says nothing either, unless stat fails otherwise).
                for c in candidates {
                    if let Ok(m) = std::fs::symlink_metadata(&c) {
                        rules.push(Rule::Inode {
                            dev: m.dev(),
                            ino: m.ino(),
                        });
                    }
                }
            }
        }
    }
    Ok(rules)
}

pub fn help() -> String {
    format!(
        "SYNTAX: mksquashfs source1 source2 ...  FILESYSTEM [OPTIONS] [-e list of exclude dirs/files]\n\n\
         sqfuse {} as mksquashfs ({COMPATIBLE}-compatible options). Supported:\n\
         -noappend -comp gzip|xz|lz4|zstd|lzo -b SIZE -Xcompression-level N -Xbcj FILTER -Xhc\n\
         -processors N -mem SIZE -all-root -root-owned -force-uid U -force-gid G\n\
         -no-xattrs -xattrs -no-fragments -always-use-fragments -no-duplicates -no-exports\n\
         -exports -no-sparse -one-file-system -e LIST -ef FILE -wildcards -regex\n\
         -mkfs-time T -all-time T -inode-time T -repro -repro-time T -quiet -no-progress\n\
         -tar -offset N -o N -root-becomes NAME -version -help\n\
         Anything else is refused with an error naming it.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// mksquashfs's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let sde = match crate::cli::pack::source_date_epoch() {
        Ok(s) => s,
        Err(e) => return crate::cli::report::fail(prog, &*e, 1),
    };
    match parse(args, sde) {
        Ok(Action::Help) => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!(
                "mksquashfs version {COMPATIBLE} (sqfuse {}: SquashFS 4.0, six compressors)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Pack(job)) => {
            let source = crate::pack::Source::Paths(&job.sources);
            match crate::cli::progress::run_pack(source, &job.image, &job.opts, job.quiet, prog) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => crate::cli::report::fail(prog, &*e, 1),
            }
        }
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Action, String> {
        parse(&v.iter().map(OsString::from).collect::<Vec<_>>(), None)
    }

    fn job(v: &[&str]) -> Job {
        match p(v).unwrap() {
            Action::Pack(j) => *j,
            _ => panic!("not a pack"),
        }
    }

    #[test]
    fn build_script_lines() {
        let j = job(&[
            "a",
            "b",
            "/tmp/x-does-not-exist.sqfs",
            "-noappend",
            "-comp",
            "xz",
            "-b",
            "1M",
            "-Xbcj",
            "x86",
            "-processors",
            "3",
            "-mem",
            "512M",
            "-all-root",
            "-no-xattrs",
            "-quiet",
            "-mkfs-time",
            "1000",
            "-all-time",
            "2000",
        ]);
        assert_eq!(j.sources, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(j.opts.compressor, Compressor::Xz);
        assert_eq!((j.opts.block_size, j.opts.threads), (1 << 20, 3));
        assert_eq!(j.opts.xz_filters, 1);
        assert!(j.opts.all_root && j.opts.no_xattrs && j.quiet);
        assert_eq!(
            (j.opts.mkfs_time, j.opts.all_time),
            (Some(1000), Some(2000))
        );
        let j = job(&["d", "/tmp/x-does-not-exist.sqfs", "-comp", "lz4", "-Xhc"]);
        assert_eq!(j.opts.level, Some(12));
        let j = job(&["d", "/tmp/x-does-not-exist.sqfs", "-repro"]);
        assert_eq!(j.opts.mkfs_time, None, "-repro: the newest inode time");
        let j = job(&[
            "d",
            "/tmp/x-does-not-exist.sqfs",
            "-e",
            "a",
            "-wildcards",
            "b",
        ]);
        assert_eq!(
            j.opts.excludes.len(),
            0,
            "plain paths that do not exist exclude nothing"
        );
    }

    #[test]
    fn unsupported_and_bad_options_are_named() {
        let e = p(&["d", "/tmp/x-does-not-exist.sqfs", "-pf", "f"]).unwrap_err();
        assert!(e.contains("-pf"), "{e}");
        assert!(p(&["d", "/tmp/x.sqfs", "-b", "3000"])
            .unwrap_err()
            .contains("-b"));
        assert!(p(&["d", "/tmp/x.sqfs", "-comp", "lzma"]).is_err());
        assert!(
            p(&["d", "/tmp/x.sqfs", "-Xhc"]).is_err(),
            "-Xhc without lz4"
        );
        let cargo = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        assert!(p(&["d", cargo]).unwrap_err().contains("appending"));
        assert!(matches!(p(&["-version"]).unwrap(), Action::Version));
    }
}
