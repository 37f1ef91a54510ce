//! `tar2sqfs [OPTIONS...] SQFSFILE` (squashfs-tools-ng): a tar archive on
//! standard input packed into a new image with that tool's defaults: xz,
//! 128K blocks, tail ends packed into fragments, no export table, the
//! archive's `./` entry as the root, directories only members name made
//! 0755 and owned by 0:0 with time 0 (`--defaults`), the image time 0
//! (SOURCE_DATE_EPOCH if set). Whiteouts and `SCHILY.xattr.*` records are
//! kept as the archive has them.

use super::sqfs_ng::{self, Action, Job};
use crate::pack::PackOptions;
use std::ffi::OsString;
use std::path::PathBuf;

pub fn parse(args: &[OsString], source_date_epoch: Option<u32>) -> Result<Action, String> {
    let mut opts = PackOptions {
        tar: true,
        tar_root_from_archive: true,
        ..sqfs_ng::defaults_opts()
    };
    let mut keep_time = true;
    let own = |o: &str, _: sqfs_ng::Value, opts: &mut PackOptions| -> Result<bool, String> {
        match o {
            "-s" | "--no-skip" => {}
            "-x" | "--no-xattr" => opts.no_xattrs = true,
            "-k" | "--no-keep-time" => keep_time = false,
            "-r" | "--root-becomes" | "-S" | "--no-symlink-retarget" => {
                return Err(format!("option {o} is not supported by sqfuse's tar2sqfs"))
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let common = match sqfs_ng::parse_line("tar2sqfs", args, &mut opts, source_date_epoch, own)? {
        sqfs_ng::Parsed::Help => return Ok(Action::Help),
        sqfs_ng::Parsed::Version => return Ok(Action::Version),
        sqfs_ng::Parsed::Pack(c) => c,
    };
    if !keep_time {
        opts.all_time = Some(opts.made_dir.mtime.unwrap_or(0));
    }
    Ok(Action::Pack(Box::new(Job {
        image: common.image,
        sources: vec![PathBuf::from("-")],
        opts,
        quiet: common.quiet,
    })))
}

/// tar2sqfs's help.
fn help() -> String {
    format!(
        "Usage: tar2sqfs [OPTIONS...] <sqfsfile>\n\n\
                 sqfuse {} answering as tar2sqfs (squashfs-tools-ng): a tar archive on\n\
                 standard input into a new image. Options: --compressor, --comp-extra,\n\
                 --num-jobs, --queue-backlog, --block-size, --dev-block-size 4096, --defaults,\n\
                 --no-skip, --no-xattr, --no-keep-time, --exportable, --no-tail-packing,\n\
                 --force, --quiet, --help, --version.\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// tar2sqfs's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    sqfs_ng::main_of(prog, args, "tar2sqfs", &help(), parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::compressor::Compressor;

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
