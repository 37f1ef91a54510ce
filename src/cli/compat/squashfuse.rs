//! `squashfuse_ll` and `squashfuse`: `[options] ARCHIVE MOUNTPOINT`, with
//! libfuse's -f, -s, -d, -h, -V and -o OPT[,OPT...] (also `-oOPT`), and the
//! usage text squashfuse 0.6.2 prints (Apptainer reads it to learn whether
//! `-o uid=N` is supported).

use super::text;
use crate::mount::options::MountOpts;
use crate::mount::MountRequest;
use std::ffi::OsString;
use std::path::PathBuf;

/// The squashfuse release whose command line this follows.
pub const COMPATIBLE: &str = "0.6.2";

#[derive(Debug)]
pub enum Action {
    /// Print the usage to stderr and exit 254, as squashfuse does for a
    /// missing argument or -h.
    Usage,
    Version,
    Mount(Box<MountRequest>),
}

/// squashfuse's usage text; `ll` adds the low-level server's options.
pub fn usage(prog: &str, ll: bool) -> String {
    let mut s = format!(
        "squashfuse {COMPATIBLE} (sqfuse {}) (c) 2012 Dave Vasilevsky\n\n\
         Usage: {prog} [options] ARCHIVE MOUNTPOINT\n\n\
         {prog} options:\n\
         \x20   -o offset=N            offset N bytes into ARCHIVE to mount\n\
         \x20   -o subdir=PATH         mount subdirectory PATH of ARCHIVE\n\
         \x20   -o notify_pipe=PATH    named pipe that will receive 's' (success)\n\
         \x20                          or 'f' (failure) when the mountpoint is ready\n",
        env!("CARGO_PKG_VERSION")
    );
    if ll {
        s.push_str(
            "    -o timeout=N           idle N seconds for automatic unmount\n\
             \x20   -o uid=N               set file owner to uid N\n\
             \x20   -o gid=N               set file group to gid N\n\
             \nFUSE options:\n\
             \x20   -h   --help            print help\n\
             \x20   -V   --version         print version\n\
             \x20   -d   -o debug          enable debug output (implies -f)\n\
             \x20   -f                     foreground operation\n\
             \x20   -s                     disable multi-threaded operation\n\
             \x20   -o clone_fd            use separate fuse device fd for each thread\n\
             \x20                          (may improve performance)\n\
             \x20   -o max_idle_threads    the maximum number of idle worker threads\n\
             \x20                          allowed (default: -1)\n\
             \x20   -o max_threads         the maximum number of worker threads\n\
             \x20                          allowed (default: 10)\n",
        );
    } else {
        s.push_str(
            "\nSelection of FUSE options:\n\
             \x20   -h   --help            print help\n\
             \x20   -V   --version         print version\n\
             \x20   -d   -o debug          enable debug output (implies -f)\n\
             \x20   -f                     foreground operation\n\
             \x20   -o allow_other         allow access by other users\n\
             \x20   -o allow_root          allow access by the superuser\n",
        );
    }
    s
}

/// Parses the arguments after argv[0]. A mistake found once a notify pipe
/// was named is told to the pipe too ('f'), as a failed mount would be.
pub fn parse(args: &[OsString]) -> Result<Action, String> {
    let mut opts = MountOpts::default();
    let r = parse_into(args, &mut opts);
    if r.is_err() {
        crate::mount::notify(&opts, b'f');
    }
    r
}

/// [`parse`] without telling a notify pipe anything (for the fuzzer, which
/// must not open files its input names).
pub fn parse_only(args: &[OsString]) -> Result<Action, String> {
    parse_into(args, &mut MountOpts::default())
}

fn parse_into(args: &[OsString], opts: &mut MountOpts) -> Result<Action, String> {
    let (mut foreground, mut single, mut debug) = (false, false, false);
    let mut positional: Vec<PathBuf> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match text(a) {
            Some("-h" | "--help") => return Ok(Action::Usage),
            Some("-V" | "--version") => return Ok(Action::Version),
            Some("-f") => foreground = true,
            Some("-s") => single = true,
            Some("-d") => debug = true,
            Some("-o") => {
                let v = super::value_str("-o", &mut it)?;
                opts.apply(v)?;
            }
            Some(o) if o.starts_with("-o") => opts.apply(&o[2..])?,
            Some(o) if o.starts_with('-') && o.len() > 1 => {
                return Err(format!("unknown option {o}"))
            }
            _ => positional.push(PathBuf::from(a)),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([image, mountpoint]) => Ok(Action::Mount(Box::new(MountRequest {
            images: vec![image],
            mountpoint,
            foreground,
            single_thread: single,
            debug,
            opts: std::mem::take(opts),
        }))),
        Err(p) if p.len() > 2 => Err(format!(
            "too many arguments: {}",
            p[2..]
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )),
        Err(_) => Ok(Action::Usage),
    }
}

/// squashfuse_ll's and squashfuse's main: `prog` is the name called by.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let ll = prog != "squashfuse";
    match parse(args) {
        Ok(Action::Usage) => {
            eprint!("{}", usage(prog, ll));
            ExitCode::from(254)
        }
        Ok(Action::Version) => {
            eprintln!(
                "squashfuse {COMPATIBLE} (sqfuse {})",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Mount(m)) => match crate::mount::mount(*m) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::cli::report::fail(prog, &e, 1),
        },
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(254)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Action, String> {
        parse(&v.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn launcher_lines_parse() {
        let Action::Mount(m) = p(&[
            "-ooffset=36864",
            "-onotify_pipe=/tmp/p",
            "-oauto_unmount",
            "-otimeout=1",
            "img",
            "mnt",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(m.opts.auto_unmount && m.opts.idle_timeout == Some(1));
        assert_eq!(m.opts.offset, crate::reader::Offset::At(36864));
        let Action::Mount(m) = p(&["-f", "-o", "ro", "/proc/self/fd/3", "/dev/fd/9"]).unwrap()
        else {
            panic!()
        };
        assert!(m.foreground);
        assert!(matches!(p(&[]).unwrap(), Action::Usage));
        assert!(matches!(p(&["-h"]).unwrap(), Action::Usage));
        assert!(p(&["-x", "a", "b"]).is_err());
        assert!(p(&["a", "b", "c"]).is_err());
    }

    #[test]
    fn usage_says_uid_for_apptainer() {
        assert!(usage("squashfuse_ll", true).contains("-o uid=N"));
        assert!(!usage("squashfuse", false).contains("-o uid=N"));
    }
}
