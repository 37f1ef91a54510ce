//! The `sqfuse` binary: argument glue over the library, under its own name
//! or the name of a tool it stands in for (squashfuse_ll, squashfuse,
//! mksquashfs, unsquashfs).

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use sqfuse::check;
use sqfuse::cli::args::{self, Cli, Cmd, ImageArgs, PackArgs};
use sqfuse::cli::compat::{self, Personality};
use sqfuse::cli::opened::Opened;
use sqfuse::cli::{extract, info, ls};
use sqfuse::pack::Source;
use sqfuse::reader::remote::{shown_name, RemoteOptions, RemoteSetting};
use sqfuse::{Image, OpenOptions};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let rest = args.get(1..).unwrap_or_default();
    match Personality::of(&argv0) {
        Personality::Sqfuse => sqfuse_main(args),
        Personality::SquashfuseLl => squashfuse_main(&argv0, rest, true),
        Personality::Squashfuse => squashfuse_main(&argv0, rest, false),
        Personality::Mksquashfs => mksquashfs_main(rest),
        Personality::Unsquashfs => unsquashfs_main(rest),
    }
}

/// Prints `e` as one line under `prog`'s name; the status to exit with.
fn fail(prog: &str, e: &anyhow::Error, code: u8) -> ExitCode {
    // A closed pipe (`sqfuse cat ... | head`) is not an error worth a word.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    if e.chain()
        .any(|c| matches!(c.downcast_ref(), Some(sqfuse::pack::PackError::Interrupted)))
    {
        eprintln!("{prog}: interrupted; nothing written");
        return ExitCode::from(INTERRUPTED);
    }
    // The library says what exists; the flag that overwrites is ours.
    if let Some(sqfuse::pack::PackError::Exists(p)) = e.chain().find_map(|c| c.downcast_ref()) {
        eprintln!("{prog}: {} exists (use -f to overwrite)", p.display());
        return ExitCode::from(code);
    }
    eprintln!("{prog}: {e:#}");
    ExitCode::from(code)
}

fn sqfuse_main(args: Vec<OsString>) -> ExitCode {
    let args = match args::with_implicit_mount(args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("sqfuse: {msg}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprintln!(
                "sqfuse: say what to do: sqfuse IMAGE MOUNTPOINT, or one of {} (see --help)",
                command_names()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line: clap's first paragraph (the error and what it names,
            // with its suggestion), without the usage block.
            let text = e.render().to_string();
            let para: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let mut msg = para.join(" ");
            // `mount X`: clap fills the last positional first and reports
            // the images missing; to the user, the mountpoint is.
            if e.kind() == clap::error::ErrorKind::MissingRequiredArgument
                && msg.contains("<IMAGE>...")
            {
                msg = msg.replace("<IMAGE>...", "<MOUNTPOINT>");
            }
            if let Some(tip) = text.lines().map(str::trim).find(|l| l.starts_with("tip:")) {
                msg = format!("{msg} ({tip})");
            }
            eprintln!("sqfuse: {} (see --help)", msg.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(c) => c,
        Err(e) => fail("sqfuse", &e, 2),
    }
}

/// Every command, as clap knows them: the bare-`sqfuse` message never
/// misses one added later.
fn command_names() -> String {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let names: Vec<&str> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .map(|c| c.get_name())
        .collect();
    names.join(", ")
}

/// The image named on the command line, its errors naming it.
fn open(a: &ImageArgs) -> Result<Image> {
    if sqfuse::mount::is_registry(&a.image) {
        return Err(anyhow!(
            "{}: this command reads image files; ls, cat and info read registry images too (or mount it)",
            a.image.display()
        ));
    }
    let opts = OpenOptions {
        offset: a.offset,
        verity: a.verity.options()?,
        remote: Some(remote_options(a)?),
        ..Default::default()
    };
    Image::open(&a.image, &opts).map_err(|e| named(&a.image, e))
}

/// How a URL or registry image is fetched and cached: the `SQFUSE_*`
/// environment, then the command's flags.
fn remote_options(a: &ImageArgs) -> Result<RemoteOptions> {
    let mut remote = RemoteOptions::from_env().map_err(|e| named(&a.image, e))?;
    remote.log_requests = a.debug;
    if let Some(d) = &a.cache_dir {
        remote.apply(RemoteSetting::cache_dir(d));
    }
    if let Some(f) = &a.ca_file {
        remote.apply(RemoteSetting::CaFile(f.into()));
    }
    Ok(remote)
}

/// The image or registry image named on the command line, for `ls`, `cat`
/// and `info`.
fn open_tree(a: &ImageArgs) -> Result<Opened> {
    if !sqfuse::mount::is_registry(&a.image) {
        return Ok(Opened::Image(Arc::new(open(a)?)));
    }
    #[cfg(feature = "registry")]
    {
        let opened = sqfuse::cli::opened::open_registry(a, &remote_options(a)?)?;
        if let Some(note) = opened.unverified_note() {
            eprintln!("sqfuse: note: {note}");
        }
        Ok(opened)
    }
    #[cfg(not(feature = "registry"))]
    Err(anyhow!(
        "{}: this sqfuse was built without registry support (cargo feature \"registry\")",
        a.image.display()
    ))
}

/// An image error with the image's name in front, unless it names it.
fn named(image: &Path, e: sqfuse::Error) -> anyhow::Error {
    anyhow::Error::new(e.within(shown_name(image)))
}

fn run(cli: Cli) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cli.cmd {
        Cmd::Pack(a) => return pack(a),
        Cmd::Mount(m) => {
            let mut opts = sqfuse::mount::options::MountOpts::default();
            for o in &m.options {
                if let Err(e) = opts.apply(o) {
                    // A launcher waiting on the pipe hears of this too.
                    sqfuse::mount::notify(&opts, b'f');
                    return Err(anyhow::Error::msg(e));
                }
            }
            sqfuse::mount::mount(sqfuse::mount::MountRequest {
                images: m.images,
                mountpoint: m.mountpoint,
                foreground: m.foreground,
                single_thread: m.single_thread,
                debug: m.debug,
                opts,
            })?;
        }
        Cmd::Info { img, json } => match open_tree(&img)? {
            Opened::Image(image) => info::info(&image, json, &mut out)?,
            #[cfg(feature = "registry")]
            Opened::Registry { reference, layers } => {
                info::info_layers(&reference, &layers, json, &mut out)?
            }
        },
        Cmd::Ls {
            img,
            path,
            long,
            recursive,
            json,
        } => {
            let o = ls::LsOptions {
                long,
                recursive,
                json,
            };
            let view = open_tree(&img)?.view().map_err(|e| named(&img.image, e))?;
            ls::ls(&*view, &path, o, &mut out).map_err(|e| named(&img.image, e))?
        }
        Cmd::Cat { img, paths } => {
            let view = open_tree(&img)?.view().map_err(|e| named(&img.image, e))?;
            for p in &paths {
                cat(&*view, p, &mut out).map_err(|e| named(&img.image, e))?;
            }
        }
        Cmd::Extract {
            img,
            dest,
            path,
            force,
            no_xattrs,
            verbose,
        } => {
            let image = open(&img)?;
            let opts = extract::ExtractOptions {
                xattrs: !no_xattrs,
                force,
                ..Default::default()
            };
            let rep =
                extract::extract(&image, &dest, &path, opts).map_err(|e| named(&img.image, e))?;
            if verbose {
                for w in &rep.warnings {
                    eprintln!("sqfuse: warning: {w}");
                }
            } else if !rep.warnings.is_empty() {
                eprintln!(
                    "sqfuse: {} skipped or incomplete (-v lists them)",
                    plural(rep.warnings.len() as u64, "entry", "entries")
                );
            }
        }
        Cmd::Check { img } => return check_image(&img, &mut out),
        Cmd::Verity {
            image,
            offset,
            salt,
            roothash,
            force,
        } => {
            let salt = match salt {
                Some(s) => s.0,
                None => sqfuse::pack::verity::random_salt()?,
            };
            let appended = sqfuse::pack::verity::add_to_image(&image, offset, salt, force)?;
            report_root(&appended, roothash.as_deref(), &mut out)?;
        }
        Cmd::Push {
            paths,
            verity,
            insecure,
            creds,
        } => {
            let (reference, images) = paths.split_last().expect("clap requires two");
            let reference = reference.to_string_lossy();
            let access = sqfuse::pack::oci::RegistryAccess { insecure, creds };
            #[cfg(feature = "registry")]
            {
                // Unfinished uploads are remembered beside the URL cache.
                let opts = sqfuse::registry::push::PushOptions {
                    verity,
                    state_dir: RemoteOptions::from_env()?.cache_dir,
                };
                let rep = sqfuse::registry::push::push(images, &reference, &access, &opts)?;
                let resumed = match rep.resumed_bytes {
                    0 => String::new(),
                    n => format!(", {} resumed", indicatif::BinaryBytes(n)),
                };
                eprintln!(
                    "sqfuse: pushed {} ({} blobs sent, {} already there{resumed})",
                    plural(images.len() as u64, "layer", "layers"),
                    rep.uploaded,
                    rep.present
                );
                writeln!(out, "{}", rep.by_digest)?;
            }
            #[cfg(not(feature = "registry"))]
            {
                let _ = (images, access, verity);
                return Err(anyhow!(
                    "{reference}: this sqfuse was built without registry support (cargo feature \"registry\")"
                ));
            }
        }
        Cmd::Profile {
            paths,
            command,
            options,
            force,
        } => {
            let (profile, images) = paths.split_last().expect("clap requires two");
            if !force && profile.symlink_metadata().is_ok() {
                return Err(anyhow!(
                    "{} exists (use -f to overwrite)",
                    profile.display()
                ));
            }
            let status = sqfuse::cli::record::record(&sqfuse::cli::record::Recording {
                images,
                profile,
                options: &options,
                command: &command,
            })?;
            if !status.success() {
                eprintln!(
                    "sqfuse: profile: the command ended with {status}; the profile was written"
                );
                return Ok(ExitCode::from(
                    status.code().unwrap_or(1).clamp(1, 255) as u8
                ));
            }
        }
        Cmd::Completions { shell } => args::write_completions(shell, &mut out),
        Cmd::Man { dir } => {
            args::write_man_pages(&dir).with_context(|| format!("writing {}", dir.display()))?
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a tree's root hash (the value to pin or sign), and writes it to
/// `file` if asked.
fn report_root(
    a: &sqfuse::pack::verity::Appended,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let root = hex::encode(&a.root);
    writeln!(out, "root hash: {root}")?;
    if let Some(f) = file {
        std::fs::write(f, format!("{root}\n"))
            .with_context(|| format!("writing {}", f.display()))?;
    }
    Ok(())
}

/// `cat`: regular files only; anything else is named as what it is.
fn cat(view: &dyn sqfuse::view::View, p: &str, out: &mut dyn Write) -> sqfuse::Result<()> {
    use sqfuse::format::inode::InodeData;
    let node = sqfuse::view::lookup_path(view, p)?;
    let (image, inode) = (view.image(&node), node.inode);
    let what = match &inode.data {
        InodeData::File(_) => None,
        InodeData::Dir(_) => Some("a directory".to_string()),
        InodeData::Symlink(t) => Some(format!("a symbolic link to {}", String::from_utf8_lossy(t))),
        _ => Some("a device, fifo or socket".to_string()),
    };
    if let Some(what) = what {
        return Err(sqfuse::Error::invalid(format!(
            "{p} is {what}, not a regular file"
        )));
    }
    let f = image.open_file(&inode)?;
    image.for_each_chunk(&f, |c| {
        out.write_all(&c.bytes())
            .map_err(|e| sqfuse::Error::io("writing standard output", e))
    })
}

fn check_image(img: &ImageArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let image = open(img)?;
    let rep = check::check(&image);
    let name = shown_name(&img.image);
    for (p, more) in rep.problems.iter().zip(&rep.repeats) {
        let also = match more {
            0 => String::new(),
            1 => " (and 1 more path with the same problem)".to_string(),
            n => format!(" (and {n} more paths with the same problem)"),
        };
        writeln!(out, "{name}: {}{also}", sqfuse::error::Report(p))?;
    }
    writeln!(
        out,
        "{name}: {}, {}, {}, {}, {}: {}",
        plural(rep.inodes, "inode", "inodes"),
        plural(rep.directories, "directory", "directories"),
        plural(rep.files, "file", "files"),
        plural(rep.data_bytes, "data byte", "data bytes"),
        plural(rep.fragments, "fragment", "fragments"),
        if rep.is_sound() {
            "ok".to_string()
        } else {
            plural(rep.problems.len() as u64, "problem", "problems")
        }
    )?;
    out.flush()?;
    Ok(if rep.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn source_date_epoch() -> Result<Option<u32>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={v:?} is not a u32 timestamp")),
        Err(_) => Ok(None),
    }
}

fn pack(a: PackArgs) -> Result<ExitCode> {
    let oci_source = match a.paths.as_slice() {
        [s, ..] if a.paths.len() <= 2 => {
            let s = s.to_string_lossy();
            sqfuse::pack::oci::is_reference(&s).then(|| s.into_owned())
        }
        _ => None,
    };
    let (sources, image): (&[PathBuf], &Path) = match (&a.layers, &oci_source) {
        (Some(outdir), Some(_)) if a.paths.len() == 1 => (&a.paths[..], outdir),
        (Some(_), _) => {
            return Err(anyhow!(
                "--layers takes one OCI SOURCE (oci:DIR[:TAG] or docker://HOST/REPO[:TAG]) and no IMAGE"
            ))
        }
        (None, _) => {
            let (s, i) = a
                .split_paths()
                .ok_or_else(|| anyhow!("give SOURCE... IMAGE (the image to create comes last)"))?;
            (s, i.as_path())
        }
    };
    if a.xz_filter.is_some() && a.compressor != sqfuse::format::compressor::Compressor::Xz {
        return Err(anyhow!("--xz-filter needs -c xz"));
    }
    if a.no_fragments && a.always_fragments {
        return Err(anyhow!(
            "--no-fragments and --always-fragments contradict each other"
        ));
    }
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
        source_date_epoch: source_date_epoch()?,
        excludes: a
            .excludes
            .iter()
            .cloned()
            .map(sqfuse::pack::exclude::Rule::Glob)
            .collect(),
        offset: a.offset,
        one_file_system: a.one_file_system,
        force: a.force,
        skip_unreadable: a.skip_unreadable,
        tar: a.tar,
        root_time: None,
        verity_salt: match (a.verity, &a.verity_salt) {
            (false, _) => None,
            (true, Some(s)) => Some(s.0.clone()),
            (true, None) => Some(sqfuse::pack::verity::random_salt()?),
        },
        whiteouts: a.whiteouts,
        tar_root_from_archive: true,
        order: {
            let mut files = Vec::new();
            for f in &a.order {
                files.extend(sqfuse::profile::Profile::load(f)?.file_order());
            }
            sqfuse::pack::order::FileOrder::from_paths(&files)
        },
    };
    if let Some(reference) = &oci_source {
        return pack_oci(reference, &a, image, &opts);
    }
    let rep = run_pack(Source::Paths(sources), image, &opts, a.quiet, "sqfuse")?;
    if let Some(v) = &rep.verity {
        let mut out = std::io::stdout().lock();
        report_root(v, a.verity_roothash.as_deref(), &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `pack` from an OCI image: flattened into `target`, or with --layers one
/// image per layer in the directory `target`.
fn pack_oci(
    reference: &str,
    a: &PackArgs,
    target: &Path,
    opts: &sqfuse::pack::PackOptions,
) -> Result<ExitCode> {
    use sqfuse::pack::oci;
    let remote = oci::RegistryAccess {
        insecure: a.insecure,
        creds: a.creds.clone(),
    };
    let img = oci::OciImage::open(reference, &remote, target)?;
    let Some(outdir) = &a.layers else {
        let rep = run_pack(Source::OciFlattened(&img), target, opts, a.quiet, "sqfuse")?;
        if let Some(v) = &rep.verity {
            report_root(
                v,
                a.verity_roothash.as_deref(),
                &mut std::io::stdout().lock(),
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    if a.verity_roothash.is_some() {
        return Err(anyhow!(
            "--verity-roothash names one file; with --layers each layer's root hash is written beside it as LAYER.roothash"
        ));
    }
    let plan = oci::LayerPlan::new(&img, outdir, opts.force)?;
    for (layer, file) in plan.to_pack() {
        let rep = run_pack(Source::OciLayer(&img, layer), file, opts, a.quiet, "sqfuse")?;
        if let Some(v) = &rep.verity {
            let roothash = file.with_extension("sqfs.roothash");
            println!("{}:", file.display());
            report_root(v, Some(&roothash), &mut std::io::stdout().lock())?;
        }
    }
    plan.finish(&img)?;
    if !a.quiet {
        eprintln!(
            "mount with: sqfuse {} MOUNTPOINT",
            plan.top_first()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Packs with Ctrl-C handling, a progress bar on a terminal and a summary.
fn run_pack(
    source: Source<'_>,
    image: &Path,
    opts: &sqfuse::pack::PackOptions,
    quiet: bool,
    prog: &str,
) -> Result<sqfuse::pack::PackReport> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let start = std::time::Instant::now();
    let progress = Arc::new(sqfuse::pack::data::Progress::default());
    let display = (!quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| ProgressDisplay::start(progress.clone()));
    let result = sqfuse::pack::pack_source(source, image, opts, &stop, progress);
    if let Some(d) = display {
        d.finish(result.is_ok());
    }
    let rep = result.map_err(|e| unreadable_hint(e, opts, prog))?;
    for w in &rep.warnings {
        eprintln!("{prog}: warning: {w}");
    }
    if !quiet {
        eprintln!("{}", summary(image, &rep, start.elapsed().as_secs_f64()));
    }
    Ok(rep)
}

/// A progress display on stderr, drawn from the packer's counters: a
/// spinner with the entries found while the source is scanned and the
/// duplicates are sought, then a bar over the bytes to read.
struct ProgressDisplay {
    /// 0 while packing; 1 once it succeeded, 2 once it failed.
    end: Arc<std::sync::atomic::AtomicU8>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressDisplay {
    fn start(p: Arc<sqfuse::pack::data::Progress>) -> Self {
        use sqfuse::pack::data::Phase;
        use std::sync::atomic::Ordering::Relaxed;
        let end = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let ended = end.clone();
        // The first frame before the pack starts: a scan faster than the
        // display thread's start still shows that it scanned.
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("scanning the source");
        bar.tick();
        let thread = std::thread::spawn(move || {
            let mut writing = false;
            let show = |bar: &indicatif::ProgressBar, writing: &mut bool| match p.phase() {
                Phase::Scanning => bar.set_message(match p.entries.load(Relaxed) {
                    0 => "scanning the source".to_string(),
                    n => format!("scanning: {}", plural(n, "entry", "entries")),
                }),
                Phase::Deduplicating => bar.set_message(format!(
                    "looking for duplicates among {} of equal size",
                    plural(p.candidates.load(Relaxed), "file", "files")
                )),
                Phase::Writing => {
                    let inp = p.bytes_in.load(Relaxed);
                    bar.set_length(p.total.load(Relaxed).max(inp));
                    bar.set_position(inp);
                    if !*writing {
                        *writing = true;
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{bar:30} {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                        );
                    }
                    bar.set_message(plural(p.files.load(Relaxed), "file", "files"));
                }
            };
            while ended.load(Relaxed) == 0 {
                show(&bar, &mut writing);
                bar.tick();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if ended.load(Relaxed) == 1 {
                // The last frame, even of a pack faster than one frame:
                // every byte counted read, the bar full.
                p.enter(Phase::Writing);
                show(&bar, &mut writing);
                bar.finish();
            } else {
                bar.finish_and_clear();
            }
        });
        ProgressDisplay { end, thread }
    }

    fn finish(self, succeeded: bool) {
        self.end
            .store(if succeeded { 1 } else { 2 }, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// A source the user may not read: the error, and the option that packs
/// the rest (sqfuse's own flag; the personalities have their tools' ways).
fn unreadable_hint(
    e: sqfuse::pack::PackError,
    opts: &sqfuse::pack::PackOptions,
    prog: &str,
) -> anyhow::Error {
    let denied = matches!(&e, sqfuse::pack::PackError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied);
    if denied && !opts.skip_unreadable && prog == "sqfuse" {
        return anyhow!(
            "{}; --skip-unreadable packs the rest, leaving out what cannot be read",
            sqfuse::error::Report(&e)
        );
    }
    anyhow::Error::new(e)
}

/// The line a pack ends with: what went in, what came out, how fast.
fn summary(image: &Path, rep: &sqfuse::pack::PackReport, secs: f64) -> String {
    use indicatif::BinaryBytes;
    let mut line = format!(
        "{}: {}, {} ({} duplicate{}), {} of data, {} image",
        image.display(),
        plural(rep.inodes.into(), "inode", "inodes"),
        plural(rep.files, "file", "files"),
        rep.duplicates,
        if rep.duplicates == 1 { "" } else { "s" },
        BinaryBytes(rep.data_bytes),
        BinaryBytes(rep.image_size),
    );
    // Below a few blocks the image is its tables, not a compression ratio.
    if rep.data_bytes >= 1 << 20 {
        let pct = 100.0 * rep.image_size as f64 / rep.data_bytes as f64;
        line.push_str(&format!(" ({pct:.1}% of the data)"));
    }
    line.push_str(&format!(", {secs:.1} s"));
    if secs >= 0.5 {
        let rate = rep.data_bytes as f64 / secs;
        line.push_str(&format!(", {}/s", BinaryBytes(rate as u64)));
    }
    line
}

/// `n` and the noun, singular for one: "1 file", "2 files".
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn squashfuse_main(argv0: &OsString, args: &[OsString], ll: bool) -> ExitCode {
    use compat::squashfuse::{parse, usage, Action, COMPATIBLE};
    let prog = Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "squashfuse".into());
    match parse(args) {
        Ok(Action::Usage) => {
            eprint!("{}", usage(&prog, ll));
            ExitCode::from(254)
        }
        Ok(Action::Version) => {
            eprintln!(
                "squashfuse {COMPATIBLE} (sqfuse {})",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Mount(m)) => match sqfuse::mount::mount(*m) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&prog, &anyhow::Error::new(e), 1),
        },
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(254)
        }
    }
}

fn mksquashfs_main(args: &[OsString]) -> ExitCode {
    use compat::mksquashfs::{help, parse, Action, COMPATIBLE};
    let sde = match source_date_epoch() {
        Ok(s) => s,
        Err(e) => return fail("mksquashfs", &e, 1),
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
            match run_pack(
                Source::Paths(&job.sources),
                &job.image,
                &job.opts,
                job.quiet,
                "mksquashfs",
            ) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail("mksquashfs", &e, 1),
            }
        }
        Err(msg) => {
            eprintln!("mksquashfs: {msg}");
            ExitCode::from(1)
        }
    }
}

fn unsquashfs_main(args: &[OsString]) -> ExitCode {
    use compat::unsquashfs::{help, parse, run, Action};
    match parse(args) {
        Ok(Action::Help) => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!(
                "unsquashfs version {} (sqfuse {})",
                compat::mksquashfs::COMPATIBLE,
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Run(job)) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let result = run(&job, &mut out).map_err(|e| named(&job.image, e));
            let _ = out.flush();
            match result {
                Ok(code) => ExitCode::from(code),
                Err(e) => fail("unsquashfs", &e, 1),
            }
        }
        Err(msg) => {
            eprintln!("unsquashfs: {msg}");
            ExitCode::from(1)
        }
    }
}
