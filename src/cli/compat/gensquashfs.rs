//! `gensquashfs [OPTIONS...] SQFSFILE` (squashfs-tools-ng): a directory
//! (`-D DIR`) or a pack file (`-F FILE`, its inputs relative to `-D` or to
//! the pack file) into a new image, with that tool's defaults: times set to
//! `--defaults mtime` (0) unless `--keep-time`, xattrs only with
//! `--keep-xattr`, made directories 0755 0:0.

use super::sqfs_ng::{self, Action, Job};
use crate::pack::pseudo::{packfile, Attrs};
use crate::pack::PackOptions;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub fn parse(args: &[OsString], source_date_epoch: Option<u32>) -> Result<Action, String> {
    let mut opts = PackOptions {
        no_xattrs: true,
        ..sqfs_ng::defaults_opts()
    };
    let (mut pack_file, mut pack_dir): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let (mut keep_time, mut uid, mut gid) = (false, None, None);
    let own = |o: &str, val: sqfs_ng::Value, opts: &mut PackOptions| -> Result<bool, String> {
        let id = |v: String| {
            v.parse::<u32>()
                .map_err(|_| format!("{o} {v}: not a number"))
        };
        match o {
            "-F" | "--pack-file" => pack_file = Some(PathBuf::from(val()?)),
            "-D" | "--pack-dir" => pack_dir = Some(PathBuf::from(val()?)),
            "-u" | "--set-uid" => uid = Some(id(val()?)?),
            "-g" | "--set-gid" => gid = Some(id(val()?)?),
            "--all-root" => (uid, gid) = (Some(0), Some(0)),
            "-k" | "--keep-time" => keep_time = true,
            "-x" | "--keep-xattr" => opts.no_xattrs = false,
            "-o" | "--one-file-system" => opts.one_file_system = true,
            "-S" | "--sort-file" | "-s" | "--selinux" | "-A" | "--xattr-file" => {
                return Err(format!(
                    "option {o} is not supported by sqfuse's gensquashfs"
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let common = match sqfs_ng::parse_line("gensquashfs", args, &mut opts, source_date_epoch, own)?
    {
        sqfs_ng::Parsed::Help => return Ok(Action::Help),
        sqfs_ng::Parsed::Version => return Ok(Action::Version),
        sqfs_ng::Parsed::Pack(c) => c,
    };
    let made = opts.made_dir;
    let default_time = made.mtime.unwrap_or(0);
    opts.force_uid = uid;
    opts.force_gid = gid;
    let sources = match (pack_file, pack_dir) {
        (None, None) => return Err("give -D DIR or -F PACKFILE (see --help)".into()),
        (None, Some(dir)) => {
            if !keep_time {
                opts.all_time = Some(default_time);
            }
            vec![dir]
        }
        (Some(file), dir) => {
            // A pack file is a listing: 256 MiB is far beyond any, and a
            // bound on what it may make us hold.
            let fail = |e: std::io::Error| {
                format!(
                    "pack file {}: {}",
                    file.display(),
                    crate::error::io_words(&e)
                )
            };
            let mut text = String::new();
            use std::io::Read;
            std::fs::File::open(&file)
                .map_err(fail)?
                .take(256 << 20)
                .read_to_string(&mut text)
                .map_err(fail)?;
            if text.len() == 256 << 20 {
                return Err(format!("pack file {}: larger than 256 MiB", file.display()));
            }
            let base = dir.unwrap_or_else(|| {
                file.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            });
            let shown = file.display().to_string();
            opts.pseudo.defs = packfile::parse(&text, &shown, &base, default_time)?;
            // Directories the pack file names only through their
            // contents, and the root: the defaults.
            let attrs = Attrs {
                perm: made.perm.unwrap_or(0o755),
                uid: made.uid.unwrap_or(0),
                gid: made.gid.unwrap_or(0),
                mtime: Some(default_time),
            };
            opts.pseudo.default_dir = Some(attrs);
            vec![PathBuf::from("-")]
        }
    };
    Ok(Action::Pack(Box::new(Job {
        image: common.image,
        sources,
        opts,
        quiet: common.quiet,
    })))
}

/// gensquashfs's help.
fn help() -> String {
    format!(
        "Usage: gensquashfs [OPTIONS...] <squashfs-file>\n\n\
                 sqfuse {} answering as gensquashfs (squashfs-tools-ng): -D DIR packs a\n\
                 directory, -F PACKFILE a gen_init_cpio style listing (dir, file, nod, slink,\n\
                 link, pipe, sock; not glob). Options: --compressor, --comp-extra, --num-jobs,\n\
                 --queue-backlog, --block-size, --dev-block-size 4096, --defaults, --set-uid,\n\
                 --set-gid, --all-root, --keep-time, --keep-xattr, --one-file-system,\n\
                 --exportable, --no-tail-packing, --force, --quiet, --help, --version.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// gensquashfs's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    sqfs_ng::main_of(prog, args, "gensquashfs", &help(), parse)
}
