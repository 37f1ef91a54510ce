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
    /// Byte offset of the SquashFS superblock inside IMAGE, or "auto" to
    /// find it (AppImage, SIF).
    #[arg(long, default_value = "0")]
    offset: sqfuse::reader::Offset,
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1024),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("bad size {s:?} (e.g. 128K, 1M, 4096)"))
}

fn parse_compressor(s: &str) -> Result<sqfuse::format::compressor::Compressor, String> {
    use sqfuse::format::compressor::Compressor as C;
    Ok(match s {
        "gzip" => C::Gzip,
        "xz" => C::Xz,
        "lz4" => C::Lz4,
        "zstd" => C::Zstd,
        "lzo" => C::Lzo,
        _ => {
            return Err(format!(
                "unknown compressor {s:?} (gzip, xz, lz4, zstd, lzo)"
            ))
        }
    })
}

fn parse_xz_filter(s: &str) -> Result<u32, String> {
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
struct PackArgs {
    /// Directory to pack (with --tar: a tar file, or - for standard input).
    source: PathBuf,
    /// Image to create.
    image: PathBuf,
    /// Compressor: gzip, xz, lz4, zstd or lzo.
    #[arg(short, long, default_value = "zstd", value_parser = parse_compressor)]
    compressor: sqfuse::format::compressor::Compressor,
    /// Compression level in the compressor's own range (defaults: zstd 3,
    /// gzip 9, xz 6, lzo 8; lz4 has none).
    #[arg(short, long)]
    level: Option<u32>,
    /// xz branch filter for executables: x86, arm, armthumb, powerpc, ia64, sparc.
    #[arg(long, value_parser = parse_xz_filter)]
    xz_filter: Option<u32>,
    /// Block size, 4K to 1M (suffixes K and M).
    #[arg(short, long, default_value = "128K", value_parser = parse_size)]
    block_size: u32,
    /// Compression threads (default: all cores). The image is the same for any value.
    #[arg(short = 'j', long)]
    threads: Option<usize>,
    /// Store file tails as partial blocks, not in fragments.
    #[arg(long)]
    no_fragments: bool,
    /// Put the tails of files larger than a block in fragments too.
    #[arg(long)]
    always_fragments: bool,
    /// Do not share the data of identical files or tails.
    #[arg(long)]
    no_dedup: bool,
    #[arg(long)]
    no_xattrs: bool,
    /// Leave out the export table (NFS export support).
    #[arg(long)]
    no_exports: bool,
    /// Store all-zero blocks as data instead of holes.
    #[arg(long)]
    no_sparse: bool,
    /// Make every entry owned by root.
    #[arg(long)]
    all_root: bool,
    #[arg(long)]
    force_uid: Option<u32>,
    #[arg(long)]
    force_gid: Option<u32>,
    /// Image creation time (default: SOURCE_DATE_EPOCH, else the newest mtime in SOURCE).
    #[arg(long)]
    mkfs_time: Option<u32>,
    /// Set every entry's mtime to T.
    #[arg(long)]
    all_time: Option<u32>,
    /// Leave out paths matching GLOB (repeatable; `**` spans directories; a
    /// leading '/' anchors at SOURCE).
    #[arg(short, long = "exclude", value_name = "GLOB")]
    excludes: Vec<String>,
    /// Do not descend into other filesystems (their mountpoints stay, empty).
    #[arg(long)]
    one_file_system: bool,
    /// Overwrite IMAGE if it exists.
    #[arg(short, long)]
    force: bool,
    /// Skip (with a warning) source entries that cannot be read.
    #[arg(long)]
    skip_unreadable: bool,
    /// SOURCE is a tar archive (ustar, gnu or pax; `-` reads standard input).
    #[arg(long)]
    tar: bool,
    /// No summary line.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create an image from a directory or a tar archive (parallel, byte-identical for any -j).
    Pack(PackArgs),
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
        Cmd::Pack(a) => pack(a)?,
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
                let f = image.open_file(&inode).with_context(|| p.clone())?;
                image
                    .for_each_chunk(&f, |c| {
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
                writeln!(out, "{}: {}", img.image.display(), sqfuse::error::Report(p))?;
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

fn pack(a: PackArgs) -> Result<()> {
    let sde = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Some(
            v.trim()
                .parse::<u32>()
                .map_err(|_| anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a u32 timestamp"))?,
        ),
        Err(_) => None,
    };
    let defaults = sqfuse::pack::PackOptions::default();
    let opts = sqfuse::pack::PackOptions {
        compressor: a.compressor,
        level: a.level,
        xz_filters: a.xz_filter.unwrap_or(0),
        block_size: a.block_size,
        threads: a.threads.unwrap_or(defaults.threads).max(1),
        no_fragments: a.no_fragments,
        always_fragments: a.always_fragments,
        no_dedup: a.no_dedup,
        no_xattrs: a.no_xattrs,
        no_exports: a.no_exports,
        no_sparse: a.no_sparse,
        all_root: a.all_root,
        force_uid: a.force_uid,
        force_gid: a.force_gid,
        mkfs_time: a.mkfs_time,
        all_time: a.all_time,
        source_date_epoch: sde,
        excludes: a.excludes,
        one_file_system: a.one_file_system,
        force: a.force,
        skip_unreadable: a.skip_unreadable,
        tar: a.tar,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let start = std::time::Instant::now();
    let progress = std::sync::Arc::new(sqfuse::pack::data::Progress::default());
    let bar = (!a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| progress_bar(progress.clone()));
    let result = sqfuse::pack::pack(&a.source, &a.image, &opts, &stop, progress);
    if let Some((done, handle)) = bar {
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handle.join();
    }
    let rep = result?;
    for w in &rep.warnings {
        eprintln!("sqfuse: warning: {w}");
    }
    if !a.quiet {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{}: {} inodes, {} files ({} duplicates), {:.1} MiB in, {:.1} MiB image ({:.1}%), {:.1}s, {:.0} MiB/s",
            a.image.display(),
            rep.inodes,
            rep.files,
            rep.duplicates,
            rep.bytes_in as f64 / 1048576.0,
            rep.image_size as f64 / 1048576.0,
            100.0 * rep.image_size as f64 / (rep.bytes_in.max(1)) as f64,
            secs,
            rep.bytes_in as f64 / 1048576.0 / secs.max(0.001)
        );
    }
    Ok(())
}

/// A progress bar on stderr, updated from the packer's counters until `done`.
fn progress_bar(
    p: std::sync::Arc<sqfuse::pack::data::Progress>,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let handle = std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        while !d.load(Relaxed) {
            let (inp, out) = (p.bytes_in.load(Relaxed), p.bytes_out.load(Relaxed));
            bar.set_length(p.total.load(Relaxed).max(inp));
            bar.set_position(inp);
            let ratio = if inp > 0 {
                100.0 * out as f64 / inp as f64
            } else {
                0.0
            };
            bar.set_message(format!(
                "{} files, {} out ({ratio:.0}%)",
                p.files.load(Relaxed),
                indicatif::HumanBytes(out)
            ));
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        bar.finish_and_clear();
    });
    (done, handle)
}

const SUBCOMMANDS: &[&str] = &[
    "pack", "mount", "info", "ls", "cat", "extract", "check", "help",
];

/// `sqfuse [-f -s -d -o OPTS] IMAGE MOUNTPOINT ...` (the squashfuse and
/// mount.fuse3 form) means `sqfuse mount ...`: the first positional
/// argument (skipping flags and -o's value) is not a command name.
fn with_implicit_mount(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        match a {
            "-o" => i += 2,
            "-h" | "--help" | "-V" | "--version" => return args,
            _ if a.starts_with('-') => i += 1,
            _ => {
                if !SUBCOMMANDS.contains(&a) {
                    args.insert(1, "mount".into());
                }
                return args;
            }
        }
    }
    args
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(with_implicit_mount(std::env::args_os().collect())) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!("sqfuse: say what to do: sqfuse IMAGE MOUNTPOINT, or one of pack, mount, info, ls, cat, extract, check (see --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line: clap's first paragraph (the error and what it names),
            // without the usage block.
            let text = e.render().to_string();
            let para: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let msg = para.join(" ");
            eprintln!("sqfuse: {} (see --help)", msg.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
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

#[cfg(test)]
mod tests {
    use super::with_implicit_mount;

    fn words(v: &[&str]) -> Vec<String> {
        with_implicit_mount(v.iter().map(|s| s.into()).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn mount_form_is_recognised_with_flags_anywhere() {
        assert_eq!(
            words(&["sqfuse", "img", "mnt"]),
            ["sqfuse", "mount", "img", "mnt"]
        );
        assert_eq!(
            words(&["sqfuse", "-d", "img", "mnt"]),
            ["sqfuse", "mount", "-d", "img", "mnt"]
        );
        assert_eq!(
            words(&["sqfuse", "-o", "ro", "img", "mnt"]),
            ["sqfuse", "mount", "-o", "ro", "img", "mnt"]
        );
        assert_eq!(words(&["sqfuse", "ls", "img"]), ["sqfuse", "ls", "img"]);
        assert_eq!(words(&["sqfuse", "--help"]), ["sqfuse", "--help"]);
        assert_eq!(words(&["sqfuse"]), ["sqfuse"]);
    }
}
