//! `tar2sqfs [OPTIONS...] SQFSFILE` (squashfs-tools-ng): a tar archive on
//! standard input packed into a new image with that tool's defaults: xz,
//! 128K blocks, tail ends packed into fragments, no export table, the
//! archive's `./` entry as the root, directories only members name made
//! 0755 and owned by 0:0 with time 0 (`--defaults`), the image time 0
//! (SOURCE_DATE_EPOCH if set). Whiteouts and `SCHILY.xattr.*` records are
//! kept as the archive has them.

use super::{text, value_str};
use crate::format::block::valid_block_size;
use crate::format::compressor::{Compressor, XZ_FILTERS};
use crate::pack::{MadeDir, PackOptions};
use crate::size::parse_size;
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Job {
    pub image: PathBuf,
    pub opts: PackOptions,
    pub quiet: bool,
}

#[derive(Debug)]
pub enum Action {
    Help,
    Version,
    Pack(Box<Job>),
}

/// `--defaults uid=U,gid=G,mode=M,mtime=T`.
fn defaults(v: &str, made: &mut MadeDir) -> Result<(), String> {
    for kv in v.split(',').filter(|s| !s.is_empty()) {
        let (k, val) = kv
            .split_once('=')
            .ok_or_else(|| format!("--defaults: {kv:?} is not KEY=VALUE"))?;
        let num = |radix: u32| {
            u32::from_str_radix(val, radix)
                .map_err(|_| format!("--defaults {k}: {val:?} is not a number"))
        };
        match k {
            "uid" => made.uid = Some(num(10)?),
            "gid" => made.gid = Some(num(10)?),
            "mode" => {
                let m = num(8)?;
                if m > 0o7777 {
                    return Err(format!("--defaults mode: {val} is not a mode up to 7777"));
                }
                made.perm = Some(m as u16);
            }
            "mtime" => made.mtime = Some(num(10)?),
            _ => {
                return Err(format!(
                    "--defaults: unknown key {k:?} (uid, gid, mode, mtime)"
                ))
            }
        }
    }
    Ok(())
}

/// `--comp-extra`: the compressor's options, comma-separated.
fn comp_extra(v: &str, opts: &mut PackOptions) -> Result<(), String> {
    for o in v.split(',').filter(|s| !s.is_empty()) {
        let (k, val) = o.split_once('=').unwrap_or((o, ""));
        let num = || {
            parse_size(val)
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("--comp-extra {k}: {val:?} is not a number"))
        };
        match (opts.compressor, k) {
            (_, "level") => opts.level = Some(num()?),
            (Compressor::Gzip, "window") => opts.tuning.gzip_window = num()? as u16,
            (Compressor::Xz, "dictsize") => opts.tuning.xz_dict_size = Some(num()?),
            (Compressor::Xz, f) if XZ_FILTERS.contains(&f) => {
                let i = XZ_FILTERS.iter().position(|x| *x == f).unwrap_or(0);
                opts.xz_filters |= 1 << i;
            }
            (Compressor::Lz4, "hc") => opts.level = Some(12),
            (c, k) => {
                return Err(format!(
                    "--comp-extra {k}: not an option sqfuse's tar2sqfs takes for {}",
                    c.name()
                ))
            }
        }
    }
    Ok(())
}

pub fn parse(args: &[OsString], source_date_epoch: Option<u32>) -> Result<Action, String> {
    let mut opts = PackOptions {
        compressor: Compressor::Xz,
        tar: true,
        tar_root_from_archive: true,
        always_fragments: true,
        no_exports: true,
        made_dir: MadeDir {
            perm: Some(0o755),
            uid: Some(0),
            gid: Some(0),
            mtime: Some(0),
        },
        ..Default::default()
    };
    let (mut quiet, mut force, mut keep_time) = (false, false, true);
    let mut extra: Option<String> = None;
    let mut image: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(o) = text(a).filter(|t| t.starts_with('-') && t.len() > 1) else {
            if image.replace(PathBuf::from(a)).is_some() {
                return Err("give one SQFSFILE (the archive is read from standard input)".into());
            }
            continue;
        };
        // --opt=value as well as --opt value.
        let (o, inline) = match o.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v)),
            _ => (o, None),
        };
        let val = |it: &mut std::slice::Iter<'_, OsString>| -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => value_str(o, it).map(str::to_string),
            }
        };
        match o {
            "-h" | "--help" => return Ok(Action::Help),
            "-V" | "--version" => return Ok(Action::Version),
            "-c" | "--compressor" => {
                opts.compressor = match val(&mut it)?.as_str() {
                    "gzip" => Compressor::Gzip,
                    "xz" => Compressor::Xz,
                    "lz4" => Compressor::Lz4,
                    "zstd" => Compressor::Zstd,
                    "lzo" => Compressor::Lzo,
                    "lzma" => {
                        return Err(
                            "--compressor lzma: legacy lzma images are not written; use xz".into(),
                        )
                    }
                    c => return Err(format!("--compressor {c}: unknown compressor")),
                }
            }
            "-X" | "--comp-extra" => extra = Some(val(&mut it)?),
            "-j" | "--num-jobs" => {
                let v = val(&mut it)?;
                opts.threads = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{o} {v}: not a positive number"))?;
            }
            "-Q" | "--queue-backlog" => {
                let v = val(&mut it)?;
                v.parse::<u32>()
                    .map_err(|_| format!("{o} {v}: not a number"))?;
            }
            "-b" | "--block-size" => {
                let v = val(&mut it)?;
                opts.block_size = parse_size(&v)
                    .ok()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| valid_block_size(n))
                    .ok_or_else(|| format!("{o} {v}: not a power of two from 4K to 1M"))?;
            }
            "-B" | "--dev-block-size" => {
                let v = val(&mut it)?;
                if parse_size(&v) != Ok(4096) {
                    return Err(format!("{o} {v}: sqfuse pads images to 4096 bytes only"));
                }
            }
            "-d" | "--defaults" => defaults(&val(&mut it)?, &mut opts.made_dir)?,
            "-s" | "--no-skip" => {}
            "-x" | "--no-xattr" => opts.no_xattrs = true,
            "-k" | "--no-keep-time" => keep_time = false,
            "-e" | "--exportable" => opts.no_exports = false,
            "-T" | "--no-tail-packing" => opts.always_fragments = false,
            "-f" | "--force" => force = true,
            "-q" | "--quiet" => quiet = true,
            "-r" | "--root-becomes" | "-S" | "--no-symlink-retarget" => {
                return Err(format!("option {o} is not supported by sqfuse's tar2sqfs"))
            }
            _ => return Err(format!("option {o} is not a tar2sqfs option (see --help)")),
        }
    }
    let image = image.ok_or("give the SQFSFILE to write (see --help)")?;
    if let Some(x) = extra {
        comp_extra(&x, &mut opts)?;
    }
    let t = source_date_epoch.unwrap_or(0);
    opts.mkfs_time = Some(t);
    if !keep_time {
        opts.all_time = Some(opts.made_dir.mtime.unwrap_or(0));
    }
    opts.force = force;
    Ok(Action::Pack(Box::new(Job { image, opts, quiet })))
}

/// tar2sqfs's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let sde = match crate::cli::pack::source_date_epoch() {
        Ok(s) => s,
        Err(e) => return crate::cli::report::fail(prog, &*e, 1),
    };
    match parse(args, sde) {
        Ok(Action::Help) => {
            print!(
                "Usage: tar2sqfs [OPTIONS...] <sqfsfile>\n\n\
                 sqfuse {} answering as tar2sqfs (squashfs-tools-ng): a tar archive on\n\
                 standard input into a new image. Options: --compressor, --comp-extra,\n\
                 --num-jobs, --queue-backlog, --block-size, --dev-block-size 4096, --defaults,\n\
                 --no-skip, --no-xattr, --no-keep-time, --exportable, --no-tail-packing,\n\
                 --force, --quiet, --help, --version.\n",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!("tar2sqfs (sqfuse) {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Action::Pack(job)) => {
            let sources = [PathBuf::from("-")];
            let source = crate::pack::Source::Paths(&sources);
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

    fn job(v: &[&str]) -> Job {
        match parse(&v.iter().map(OsString::from).collect::<Vec<_>>(), None).unwrap() {
            Action::Pack(j) => *j,
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn singularity_line_and_defaults() {
        let j = job(&["--compressor", "gzip", "out.sqfs"]);
        assert_eq!(j.opts.compressor, Compressor::Gzip);
        assert!(j.opts.always_fragments && j.opts.no_exports && j.opts.tar);
        assert_eq!(j.opts.mkfs_time, Some(0));
        let j = job(&[
            "-c",
            "xz",
            "-X",
            "dictsize=64K,x86",
            "--defaults=uid=5,mode=0700",
            "-k",
            "o",
        ]);
        assert_eq!(j.opts.tuning.xz_dict_size, Some(65536));
        assert_eq!(j.opts.xz_filters, 1);
        assert_eq!(
            (j.opts.made_dir.uid, j.opts.made_dir.perm),
            (Some(5), Some(0o700))
        );
        assert_eq!(j.opts.all_time, Some(0));
        let e = parse(&[OsString::from("-r"), "x".into(), "o".into()], None).unwrap_err();
        assert!(e.contains("-r"));
    }
}
