//! The `sqfuse` binary: argument glue over the library, under its own name
//! or the name of a tool it stands in for (one table, in `cli::compat`).

use clap::Parser;
use sqfuse::cli::args::{self, Cli, Cmd};
use sqfuse::cli::report::{self, plural, Failure};
use sqfuse::cli::{cat, check, compat, extract, info, ls, opened, pack};
use sqfuse::open::Credentials;
use sqfuse::reader::remote::{shown_name, RemoteOptions};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    match compat::called_as(&argv0) {
        Some(p) => (p.main)(p.name, args.get(1..).unwrap_or_default()),
        None => sqfuse_main(args),
    }
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
        Err(e) => report::fail("sqfuse", &*e, 2),
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

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // An error of the image's, named by it (unless it says its name).
    let named = |image: &Path| {
        let name = shown_name(image);
        move |e: sqfuse::Error| e.within(name)
    };
    match cli.cmd {
        Cmd::Pack(a) => return pack::pack(a),
        Cmd::Mount(m) => {
            let mut opts = sqfuse::mount::options::MountOpts::default();
            for o in &m.options {
                if let Err(e) = opts.apply(o) {
                    // A launcher waiting on the pipe hears of this too.
                    sqfuse::mount::notify(&opts, b'f');
                    return Err(e.into());
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
        Cmd::Umount { mountpoint, lazy } => sqfuse::cli::umount::umount(&mountpoint, lazy)?,
        Cmd::Info { img, json } => info::info_opened(
            &opened::open_any(&img).map_err(named(&img.image))?,
            json,
            &mut out,
        )?,
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
            let view = opened::open_any(&img)
                .and_then(|o| o.view())
                .map_err(named(&img.image))?;
            ls::ls(&*view, &path, o, &mut out).map_err(named(&img.image))?
        }
        Cmd::Cat { img, paths } => {
            let view = opened::open_any(&img)
                .and_then(|o| o.view())
                .map_err(named(&img.image))?;
            for p in &paths {
                cat::cat(&*view, p, &mut out).map_err(named(&img.image))?;
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
            let image = opened::open_image(&img).map_err(named(&img.image))?;
            let opts = extract::ExtractOptions {
                xattrs: !no_xattrs,
                force,
                ..Default::default()
            };
            let rep = extract::extract(&image, &dest, &path, opts).map_err(named(&img.image))?;
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
        Cmd::Check { img } => return check::check_image(&img, &mut out),
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
            pack::report_root(&appended, roothash.as_deref(), &mut out)?;
        }
        Cmd::Push {
            paths,
            verity,
            insecure,
            creds,
        } => {
            let (reference, images) = paths.split_last().expect("clap requires two");
            let reference = reference.to_string_lossy();
            let creds = match creds {
                Some(c) => Credentials::Given(c),
                None => Credentials::Stored,
            };
            let access = sqfuse::open::registry_access(insecure, &creds)?;
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
                return Err(format!(
                    "{reference}: this sqfuse was built without registry support (cargo feature \"registry\")"
                )
                .into());
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
                return Err(format!("{} exists (use -f to overwrite)", profile.display()).into());
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
        Cmd::Man { dir } => args::write_man_pages(&dir)
            .map_err(|e| sqfuse::Error::io(format!("writing {}", dir.display()), e))?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
