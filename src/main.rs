//! The `sqfuse` binary: argument parsing and error messages over the library.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use sqfuse::cli::{check, extract, info, ls};
use sqfuse::{Image, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sqfuse",
    version,
    about = "Mount, inspect and create SquashFS 4.0 images"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct ImageArgs {
    /// The SquashFS image (or a file holding one at --offset).
    image: PathBuf,
    /// Byte offset of the SquashFS superblock inside IMAGE.
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Mount IMAGE read-only on MOUNTPOINT (also: `sqfuse IMAGE MOUNTPOINT`).
    Mount {
        image: PathBuf,
        mountpoint: PathBuf,
        /// Stay in the foreground.
        #[arg(short = 'f')]
        foreground: bool,
        /// Serve requests with one thread.
        #[arg(short = 's')]
        single_thread: bool,
        /// Log every request to stderr (implies -f).
        #[arg(short = 'd')]
        debug: bool,
        /// Mount options, comma-separated: offset=N|auto, subdir=PATH, uid=N,
        /// gid=N, timeout=SECS, notify_pipe=PATH, cache_mb=N, threads=N,
        /// allow_other, allow_root, auto_unmount, nosuid, nodev, noexec, and
        /// the generic fstab options (ro, noatime, user, noauto, _netdev, x-*...).
        #[arg(short = 'o', action = clap::ArgAction::Append)]
        options: Vec<String>,
    },
    /// Show the superblock, compressor and table layout.
    Info {
        #[command(flatten)]
        img: ImageArgs,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List a directory (or file) in the image.
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
    },
    /// Write files' contents to stdout.
    Cat {
        #[command(flatten)]
        img: ImageArgs,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Recreate the tree (or PATH in it) under DEST.
    Extract {
        #[command(flatten)]
        img: ImageArgs,
        dest: PathBuf,
        #[arg(default_value = "/")]
        path: String,
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
}

fn open(a: &ImageArgs) -> Result<Image> {
    let opts = OpenOptions {
        offset: a.offset,
        ..Default::default()
    };
    Image::open(&a.image, &opts).with_context(|| format!("{}", a.image.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.cmd {
        Cmd::Mount {
            image,
            mountpoint,
            foreground,
            single_thread,
            debug,
            options,
        } => {
            let mut opts = sqfuse::mount::options::MountOpts::default();
            for o in &options {
                opts.apply(o).map_err(anyhow::Error::msg)?;
            }
            let args = sqfuse::mount::MountArgs {
                image,
                mountpoint,
                foreground,
                single_thread,
                debug,
                opts,
            };
            sqfuse::mount::mount(args)?;
        }
        Cmd::Info { img, json } => info::info(&open(&img)?, json, &mut out)?,
        Cmd::Ls {
            img,
            path,
            long,
            recursive,
        } => ls::ls(
            &open(&img)?,
            &path,
            ls::LsOptions { long, recursive },
            &mut out,
        )
        .with_context(|| path.clone())?,
        Cmd::Cat { img, paths } => {
            let image = open(&img)?;
            for p in &paths {
                let (inode, _) = image.lookup_path(p).with_context(|| p.clone())?;
                let f = image.file_info(&inode).with_context(|| p.clone())?;
                image
                    .for_each_chunk(f, |c| {
                        out.write_all(&c.bytes())
                            .map_err(|e| sqfuse::Error::io("stdout", e))
                    })
                    .with_context(|| p.clone())?;
            }
        }
        Cmd::Extract {
            img,
            dest,
            path,
            no_xattrs,
            verbose,
        } => {
            let image = open(&img)?;
            let opts = extract::ExtractOptions {
                xattrs: !no_xattrs,
                ..Default::default()
            };
            let rep = extract::extract(&image, &dest, &path, opts)?;
            if verbose {
                for w in &rep.warnings {
                    eprintln!("sqfuse: warning: {w}");
                }
            } else if !rep.warnings.is_empty() {
                eprintln!(
                    "sqfuse: {} entries skipped or incomplete (-v lists them)",
                    rep.warnings.len()
                );
            }
        }
        Cmd::Check { img } => {
            let image = open(&img)?;
            let rep = check::check(&image);
            for p in &rep.problems {
                writeln!(out, "{}: {p}", img.image.display())?;
            }
            writeln!(
                out,
                "{}: {} inodes, {} directories, {} files, {} data bytes, {} fragments: {}",
                img.image.display(),
                rep.inodes,
                rep.directories,
                rep.files,
                rep.data_bytes,
                rep.fragments,
                if rep.is_sound() {
                    "ok".to_string()
                } else {
                    format!("{} problem(s)", rep.problems.len())
                }
            )?;
            out.flush()?;
            return Ok(if rep.is_sound() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

const SUBCOMMANDS: &[&str] = &["mount", "info", "ls", "cat", "extract", "check", "help"];

/// `sqfuse IMAGE MOUNTPOINT ...` (the squashfuse and mount.fuse3 form)
/// means `sqfuse mount IMAGE MOUNTPOINT ...`.
fn with_implicit_mount(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if let Some(first) = args.get(1).and_then(|a| a.to_str()) {
        if !first.starts_with('-') && !SUBCOMMANDS.contains(&first) {
            args.insert(1, "mount".into());
        }
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(with_implicit_mount(std::env::args_os().collect()));
    match run(cli) {
        Ok(c) => c,
        Err(e) => {
            // Broken pipe (`sqfuse cat ... | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("sqfuse: {e:#}");
            ExitCode::from(2)
        }
    }
}
