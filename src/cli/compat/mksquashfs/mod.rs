//! `mksquashfs SOURCE... FILESYSTEM [OPTIONS] [-e LIST...]`: mksquashfs
//! 4.7's command line (options.rs), mapped onto the library's pack: its
//! defaults (gzip through zlib, 128K blocks, the build time as the image
//! time, SOURCE_DATE_EPOCH honoured), pseudo definitions, and appending to
//! an existing image unless `-noappend`.

mod exclude;
mod options;

pub use options::parse;
pub(crate) use options::X_WITH_VALUE;

use crate::pack::PackOptions;
use std::ffi::OsString;
use std::path::PathBuf;

/// The squashfs-tools release whose behaviour this follows (Apptainer
/// compares `-version`'s number with 4.6 to choose its options).
pub const COMPATIBLE: &str = "4.7.5";

/// How a pack shows that it is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing (`-quiet`).
    Quiet,
    /// A bar on a terminal, and the summary.
    Bar,
    /// `-percentage`: the percentage done, one number per line on stdout
    /// (for `dialog --gauge` and Apptainer's progress).
    Percentage,
}

#[derive(Debug)]
pub struct Job {
    pub sources: Vec<PathBuf>,
    pub image: PathBuf,
    pub opts: PackOptions,
    pub progress: Progress,
    /// Add to FILESYSTEM if it is an image (mksquashfs's default).
    pub append: bool,
    /// `-root-becomes NAME`: when appending, the old root moves to NAME.
    pub root_becomes: Option<String>,
    /// `-comp` was given: appending to an image compressed otherwise fails.
    pub comp_given: bool,
}

#[derive(Debug)]
pub enum Action {
    Help,
    Version,
    Pack(Box<Job>),
}

pub fn help() -> String {
    format!(
        "SYNTAX: mksquashfs source1 source2 ...  FILESYSTEM [OPTIONS] [-e list of exclude dirs/files]\n\n\
         sqfuse {} answering as mksquashfs: the options of mksquashfs {COMPATIBLE} (see its\n\
         -help-all), with the same meanings. Options that only tune mksquashfs's readers,\n\
         queues and memory are taken and change nothing; those sqfuse does not do (-zip,\n\
         -cpiostyle, -action..., -dereference, -stream, -fix, -one-file-system-x,\n\
         -max-depth) are refused with an error naming them. Source - packs only what\n\
         pseudo definitions (-p, -pf, -pd) make.\n",
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
                "mksquashfs version {COMPATIBLE} (sqfuse {}: SquashFS 4.0)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Pack(job)) => match run(&job, prog) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::cli::report::fail(prog, &*e, 1),
        },
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Packs `job` as mksquashfs does (appending to an image already there).
pub fn run(job: &Job, prog: &str) -> Result<(), crate::cli::report::Failure> {
    use crate::cli::progress::{run_pack_shown, Shown};
    let shown = match job.progress {
        Progress::Quiet => Shown::Quiet,
        Progress::Bar => Shown::Bar,
        Progress::Percentage => Shown::Percentage,
    };
    let mut opts = job.opts.clone();
    let exists = std::fs::metadata(&job.image).is_ok_and(|m| m.len() > 0);
    if job.append && exists {
        opts.append = Some(crate::pack::Append {
            root_becomes: job.root_becomes.clone(),
            compressor: job.comp_given.then_some(job.opts.compressor),
        });
    }
    opts.force = true; // -noappend overwrites, as mksquashfs does
    let source = crate::pack::Source::Paths(&job.sources);
    run_pack_shown(source, &job.image, &opts, shown, prog)?;
    Ok(())
}

#[cfg(test)]
mod tests;
