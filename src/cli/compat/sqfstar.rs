//! `sqfstar [OPTIONS] FILESYSTEM [EXCLUDES...]`: mksquashfs's tar mode
//! under its own name (squashfs-tools 4.6+): a tar archive on standard
//! input, options before the image. Its options are mksquashfs's (minus
//! appending), with its own defaults: not exportable unless `-exports`,
//! tail ends packed into fragments unless `-no-tailends`, an existing
//! FILESYSTEM refused unless `-force`. The line is turned into
//! mksquashfs's `- FILESYSTEM -tar -noappend OPTIONS -e EXCLUDES` and
//! parsed there, so both names mean the same by each option.

use super::mksquashfs::{self, Action};
use super::text;
use std::ffi::OsString;

/// sqfstar's options that take a value (the rest take none).
const WITH_VALUE: &[&str] = &[
    "-b",
    "-comp",
    "-ef",
    "-mkfs-time",
    "-inode-time",
    "-root-time",
    "-repro-time",
    "-root-mode",
    "-root-uid",
    "-root-gid",
    "-force-file-mode",
    "-force-dir-mode",
    "-force-uid",
    "-force-gid",
    "-uid-gid-offset",
    "-default-mode",
    "-default-uid",
    "-default-gid",
    "-p",
    "-pd",
    "-pf",
    "-xattrs-exclude",
    "-xattrs-include",
    "-xattrs-add",
    "-info-file",
    "-throttle",
    "-limit",
    "-processors",
    "-mem",
    "-mem-percent",
    "-overcommit",
    "-fix",
    "-offset",
    "-o",
    "-help-option",
    "-help-section",
    "-help-comp",
    "-ho",
    "-hs",
    "-cols",
    "-fstime",
];

/// mksquashfs options sqfstar does not have.
const NOT_SQFSTAR: &[&str] = &[
    "-noappend",
    "-root-becomes",
    "-tar",
    "-no-strip",
    "-tarstyle",
    "-keep-as-directory",
    "-cpiostyle",
    "-cpiostyle0",
    "-zip",
    "-e",
    "-wildcards",
    "-one-file-system",
    "-sort",
    "-recover",
    "-no-recovery",
    "-recovery-path",
];

/// The mksquashfs line for a sqfstar line.
pub fn translate(args: &[OsString]) -> Result<(Vec<OsString>, bool), String> {
    let mut opts: Vec<OsString> = Vec::new();
    let (mut force, mut exports) = (false, false);
    let mut it = args.iter();
    let image = loop {
        let Some(a) = it.next() else {
            return Err("give the FILESYSTEM to write (see -help)".into());
        };
        match text(a) {
            Some(o) if o.starts_with('-') && o.len() > 1 => {
                if NOT_SQFSTAR.contains(&o) {
                    return Err(format!("option {o} is mksquashfs's, not sqfstar's"));
                }
                match o {
                    "-force" => force = true,
                    "-exports" => exports = true,
                    _ => {
                        opts.push(a.clone());
                        if WITH_VALUE.contains(&o) || mksquashfs::X_WITH_VALUE.contains(&o) {
                            let v = it
                                .next()
                                .ok_or_else(|| format!("option {o} needs a value"))?;
                            opts.push(v.clone());
                        }
                    }
                }
            }
            _ => break a.clone(),
        }
    };
    let excludes: Vec<OsString> = it.cloned().collect();
    let mut line = vec![
        OsString::from("-"),
        image,
        "-tar".into(),
        "-noappend".into(),
    ];
    if !exports {
        line.push("-no-exports".into());
    }
    // sqfstar packs tail ends into fragments unless -no-tailends.
    line.push("-tailends".into());
    line.extend(opts);
    if !excludes.is_empty() {
        // sqfstar's excludes are wildcards (or, with -regex, regexes).
        if !line.iter().any(|a| a == "-regex") {
            line.push("-wildcards".into());
        }
        line.push("-e".into());
        line.extend(excludes);
    }
    Ok((line, force))
}

/// sqfstar's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let fail = |msg: String| {
        eprintln!("{prog}: {msg}");
        ExitCode::from(1)
    };
    let (line, force) = match translate(args) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if args.iter().any(|a| a == "-version") {
        println!(
            "sqfstar version {} (sqfuse {}: SquashFS 4.0)",
            mksquashfs::COMPATIBLE,
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let sde = match crate::cli::pack::source_date_epoch() {
        Ok(s) => s,
        Err(e) => return crate::cli::report::fail(prog, &*e, 1),
    };
    match mksquashfs::parse(&line, sde) {
        Ok(Action::Help) => {
            print!(
                "SYNTAX: sqfstar [OPTIONS] FILESYSTEM [list of exclude dirs/files]\n\n\
                 sqfuse {} answering as sqfstar: a tar archive on standard input, the options\n\
                 of sqfstar {} (mksquashfs's, see its -help-all).\n",
                env!("CARGO_PKG_VERSION"),
                mksquashfs::COMPATIBLE
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => ExitCode::SUCCESS,
        Ok(Action::Pack(job)) => {
            if !force && std::fs::symlink_metadata(&job.image).is_ok() {
                return fail(format!(
                    "{} exists: appending is not done reading tar files; -force replaces it",
                    job.image.display()
                ));
            }
            match mksquashfs::run(&job, prog) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => crate::cli::report::fail(prog, &*e, 1),
            }
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[&str]) -> Result<(Vec<String>, bool), String> {
        translate(&v.iter().map(OsString::from).collect::<Vec<_>>())
            .map(|(l, f)| (l.into_iter().map(|a| a.into_string().unwrap()).collect(), f))
    }

    #[test]
    fn options_come_before_the_image_and_excludes_after() {
        let (line, force) = t(&[
            "-mkfs-time",
            "0",
            "-root-mode",
            "0755",
            "-force",
            "out.sqfs",
            "a",
            "b",
        ])
        .unwrap();
        assert!(force);
        assert_eq!(
            line,
            [
                "-",
                "out.sqfs",
                "-tar",
                "-noappend",
                "-no-exports",
                "-tailends",
                "-mkfs-time",
                "0",
                "-root-mode",
                "0755",
                "-wildcards",
                "-e",
                "a",
                "b"
            ]
        );
        let (line, _) = t(&["-exports", "o"]).unwrap();
        assert!(!line.contains(&"-no-exports".to_string()));
        assert!(t(&["-noappend", "o"]).unwrap_err().contains("mksquashfs's"));
        assert!(t(&["-b"]).is_err());
    }
}
