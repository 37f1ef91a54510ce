//! What squashfs-tools-ng's packers (tar2sqfs, gensquashfs) share: their
//! defaults and the options both take, each tool adding its own.

use super::{text, value_str};
use crate::format::compressor::{Compressor, XZ_FILTERS};
use crate::pack::{MadeDir, PackOptions};
use crate::size::parse_size;
use std::ffi::OsString;
use std::path::PathBuf;

/// A pack as the tool asked for it.
#[derive(Debug)]
pub struct Job {
    pub image: PathBuf,
    pub sources: Vec<PathBuf>,
    pub opts: PackOptions,
    pub quiet: bool,
}

/// What a tool's line asks for.
#[derive(Debug)]
pub enum Action {
    Help,
    Version,
    Pack(Box<Job>),
}

/// The main of a squashfs-tools-ng tool: `parse` its line, then print
/// `help`, the version, or pack.
pub(super) fn main_of(
    prog: &str,
    args: &[OsString],
    tool: &str,
    help: &str,
    parse: fn(&[OsString], Option<u32>) -> Result<Action, String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let sde = match crate::cli::pack::source_date_epoch() {
        Ok(s) => s,
        Err(e) => return crate::cli::report::fail(prog, &*e, 1),
    };
    match parse(args, sde) {
        Ok(Action::Help) => {
            print!("{help}");
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!("{tool} (sqfuse) {}", env!("CARGO_PKG_VERSION"));
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

/// A line read: help, version, or a pack.
pub(super) enum Parsed {
    Help,
    Version,
    Pack(Common),
}

/// What the shared options say besides `PackOptions`.
pub(super) struct Common {
    pub image: PathBuf,
    pub quiet: bool,
}

/// squashfs-tools-ng's defaults: xz, 128K blocks, tail ends packed, no
/// export table, made directories 0755 0:0 at time 0.
pub(super) fn defaults_opts() -> PackOptions {
    PackOptions {
        compressor: Compressor::Xz,
        always_fragments: true,
        no_exports: true,
        made_dir: MadeDir {
            perm: Some(0o755),
            uid: Some(0),
            gid: Some(0),
            mtime: Some(0),
        },
        ..Default::default()
    }
}

/// `--defaults uid=U,gid=G,mode=M,mtime=T`.
pub(super) fn defaults(v: &str, made: &mut MadeDir) -> Result<(), String> {
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

/// The value a tool's own option asks for.
pub(super) type Value<'a> = &'a mut dyn FnMut() -> Result<String, String>;

/// Reads a line of options and one SQFSFILE; `own` takes the tool's own
/// options first (true: taken). The image time is SOURCE_DATE_EPOCH or 0.
pub(super) fn parse_line(
    tool: &str,
    args: &[OsString],
    opts: &mut PackOptions,
    source_date_epoch: Option<u32>,
    mut own: impl FnMut(&str, Value, &mut PackOptions) -> Result<bool, String>,
) -> Result<Parsed, String> {
    let (mut quiet, mut force) = (false, false);
    let mut extra: Option<String> = None;
    let mut image: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(o) = text(a).filter(|t| t.starts_with('-') && t.len() > 1) else {
            if image.replace(PathBuf::from(a)).is_some() {
                return Err("give one SQFSFILE".into());
            }
            continue;
        };
        // --opt=value as well as --opt value.
        let (o, inline) = match o.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k, Some(v)),
            _ => (o, None),
        };
        let mut val = || -> Result<String, String> {
            match inline {
                Some(v) => Ok(v.to_string()),
                None => value_str(o, &mut it).map(str::to_string),
            }
        };
        if own(o, &mut val, opts)? {
            continue;
        }
        match o {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-c" | "--compressor" => {
                opts.compressor = super::compressor_named(o, &val()?)?;
            }
            "-X" | "--comp-extra" => extra = Some(val()?),
            "-j" | "--num-jobs" => {
                let v = val()?;
                opts.threads = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("{o} {v}: not a positive number"))?;
            }
            "-Q" | "--queue-backlog" => {
                let v = val()?;
                v.parse::<u32>()
                    .map_err(|_| format!("{o} {v}: not a number"))?;
            }
            "-b" | "--block-size" => opts.block_size = super::block_size(o, &val()?)?,
            "-B" | "--dev-block-size" => {
                let v = val()?;
                if parse_size(&v) != Ok(4096) {
                    return Err(format!("{o} {v}: sqfuse pads images to 4096 bytes only"));
                }
            }
            "-d" | "--defaults" => defaults(&val()?, &mut opts.made_dir)?,
            "-e" | "--exportable" => opts.no_exports = false,
            "-T" | "--no-tail-packing" => opts.always_fragments = false,
            "-f" | "--force" => force = true,
            "-q" | "--quiet" => quiet = true,
            _ => return Err(format!("option {o} is not a {tool} option (see --help)")),
        }
    }
    let image = image.ok_or("give the SQFSFILE to write (see --help)")?;
    if let Some(x) = extra {
        comp_extra(&x, opts)?;
    }
    opts.mkfs_time = Some(source_date_epoch.unwrap_or(0));
    opts.force = force;
    Ok(Parsed::Pack(Common { image, quiet }))
}
