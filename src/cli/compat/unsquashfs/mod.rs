//! `unsquashfs [OPTIONS] FILESYSTEM [PATH...]`: extract (into
//! squashfs-root, or -d DIR), list (-l, -ll, -lln), show the superblock
//! (-s) or print files (-cat), with unsquashfs's output formats.

mod pseudo;

use super::{text, value_str};
use crate::cli::extract::{self, ExtractOptions, Pick};
use crate::error::{Error, Result};
use crate::format::inode::{Inode, InodeData};
use crate::format::superblock::flags;
use crate::pattern::{PathPattern, PatternKind};
use crate::reader::{Image, Step};
use crate::size::parse_size;
use std::ffi::{CStr, OsString};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Extract,
    /// -l: names only.
    List,
    /// -ll (names of users and groups) or -lln (numbers).
    LongList {
        numeric: bool,
    },
    /// -s: the superblock.
    Stat,
    /// -cat: the files' contents to standard output.
    Cat,
    /// -pf FILE (`-`: standard output): the image as a pseudo file.
    Pseudo,
}

#[derive(Debug)]
pub struct Job {
    pub image: PathBuf,
    pub offset: u64,
    pub dest: PathBuf,
    pub mode: Mode,
    pub force: bool,
    pub quiet: bool,
    pub xattrs: bool,
    pub utc: bool,
    pub paths: Vec<String>,
    pub kind: PatternKind,
    /// -user-xattrs: only `user.` xattrs are extracted.
    pub user_xattrs_only: bool,
    /// -pf's FILE.
    pub pseudo_file: Option<PathBuf>,
}

#[derive(Debug)]
pub enum Action {
    Help,
    Version,
    Run(Job),
}

pub fn parse(args: &[OsString]) -> std::result::Result<Action, String> {
    let mut job = Job {
        image: PathBuf::new(),
        offset: 0,
        dest: PathBuf::from("squashfs-root"),
        mode: Mode::Extract,
        force: false,
        quiet: false,
        xattrs: true,
        utc: false,
        paths: Vec::new(),
        kind: PatternKind::Glob,
        user_xattrs_only: false,
        pseudo_file: None,
    };
    let mut it = args.iter();
    let image = loop {
        let Some(a) = it.next() else {
            return Err("give the FILESYSTEM to read (see -help)".into());
        };
        let Some(o) = text(a).filter(|t| t.starts_with('-') && t.len() > 1) else {
            break a;
        };
        match o {
            "-v" | "-version" => return Ok(Action::Version),
            "-h" | "-help" => return Ok(Action::Help),
            "-d" | "-dest" => job.dest = PathBuf::from(super::value(o, &mut it)?),
            "-f" | "-force" => job.force = true,
            "-o" | "-offset" => {
                let v = value_str(o, &mut it)?;
                job.offset = parse_size(v).map_err(|e| format!("{o}: {e}"))?;
            }
            "-l" | "-ls" => job.mode = Mode::List,
            "-ll" | "-lls" => job.mode = Mode::LongList { numeric: false },
            "-lln" | "-llnumeric" => job.mode = Mode::LongList { numeric: true },
            "-s" | "-stat" => job.mode = Mode::Stat,
            "-cat" => job.mode = Mode::Cat,
            "-n" | "-no-progress" | "-i" | "-info" => {}
            "-q" | "-quiet" => job.quiet = true,
            "-no" | "-no-xattrs" => job.xattrs = false,
            "-x" | "-xattrs" => job.xattrs = true,
            "-UTC" => job.utc = true,
            "-no-wild" | "-no-wildcards" => job.kind = PatternKind::Literal,
            "-r" | "-regex" => job.kind = PatternKind::Regex,
            "-pf" | "-pseudo-file" => {
                job.pseudo_file = Some(PathBuf::from(super::value(o, &mut it)?));
                job.mode = Mode::Pseudo;
            }
            "-u" | "-user-xattrs" => {
                job.user_xattrs_only = true;
                job.xattrs = true;
            }
            // Sizes of unsquashfs's own queues and caches: nothing to size
            // here.
            "-da" | "-data-queue" | "-fr" | "-frag-queue" => {
                let v = value_str(o, &mut it)?;
                v.parse::<u32>()
                    .map_err(|_| format!("{o} {v}: not a number"))?;
            }
            "-ig" | "-ignore-errors" | "-st" | "-strict-errors" | "-no-exit" | "-no-exit-code" => {}
            "-p" | "-processors" => {
                let v = value_str(o, &mut it)?;
                v.parse::<usize>()
                    .map_err(|_| format!("{o} {v}: not a number"))?;
            }
            _ => {
                return Err(format!(
                    "option {o} is not supported by sqfuse's unsquashfs (see the README's table)"
                ))
            }
        }
    };
    job.image = PathBuf::from(image);
    job.paths = it
        .map(|a| text(a).map(str::to_string).ok_or("a path is not UTF-8"))
        .collect::<std::result::Result<_, _>>()?;
    Ok(Action::Run(job))
}

pub fn help() -> String {
    format!(
        "SYNTAX: unsquashfs [OPTIONS] FILESYSTEM [files to extract]\n\n\
         sqfuse {} as unsquashfs. Supported options:\n\
         \t-d[est] DIR\textract to DIR, default \"squashfs-root\"\n\
         \t-f[orce]\tif a file already exists then overwrite\n\
         \t-o[ffset] N\tskip N bytes at the start of FILESYSTEM (K, M, G suffixes)\n\
         \t-l[s], -ll[s], -lln[umeric]\tlist, long list (numeric owners), do not extract\n\
         \t-s[tat]\t\tdisplay the superblock\n\
         \t-cat\t\tcat the files named to standard output\n\
         \t-n[o-progress], -q[uiet], -i[nfo], -no[-xattrs], -x[attrs], -p[rocessors] N,\n\
         \t-UTC, -no-wild[cards], -r[egex], -v[ersion], -h[elp]\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Which entries the PATH arguments select: all without any; otherwise a
/// path matched by a pattern and everything below it, and the directories
/// leading there.
fn picker(
    paths: &[String],
    kind: PatternKind,
) -> std::result::Result<impl Fn(&[u8]) -> Pick, String> {
    let patterns: Vec<PathPattern> = paths
        .iter()
        .map(|p| PathPattern::compile(p, kind))
        .collect::<std::result::Result<_, _>>()?;
    Ok(move |path: &[u8]| {
        if patterns.is_empty() {
            return Pick::All;
        }
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        if (1..=comps.len()).any(|n| patterns.iter().any(|p| p.matches(&comps[..n]))) {
            Pick::All
        } else if patterns.iter().any(|p| p.leads_to(&comps)) {
            Pick::Parent
        } else {
            Pick::No
        }
    })
}

fn open(job: &Job) -> Result<std::sync::Arc<Image>> {
    use crate::open::{open_layers, Named, OpenRequest};
    let req = OpenRequest {
        offset: crate::reader::Offset::At(job.offset),
        ..OpenRequest::new(vec![Named::of(&job.image)])
    };
    Ok(open_layers(&req)?.layers.remove(0).image)
}

/// Runs the job; returns the exit status unsquashfs would.
pub fn run(job: &Job, out: &mut dyn Write) -> Result<u8> {
    let img = open(job)?;
    let wr = |e: std::io::Error| Error::io("writing standard output", e);
    match job.mode {
        Mode::Stat => stat(&img, job, out).map_err(wr)?,
        Mode::List | Mode::LongList { .. } => list(&img, job, out)?,
        Mode::Pseudo => {
            if !job.paths.is_empty() {
                return Err(Error::invalid(
                    "-pf writes the whole image: give no paths to extract with it",
                ));
            }
            let target = job.pseudo_file.clone().unwrap_or_default();
            if target == std::path::Path::new("-") {
                pseudo::write(&img, out)?;
            } else {
                write_pseudo_file(&img, &target)?;
            }
        }
        Mode::Cat => {
            for p in &job.paths {
                let (inode, _) = img.lookup_path(p)?;
                let f = img.open_file(&inode).map_err(|e| e.at_path(p.clone()))?;
                img.for_each_chunk(&f, |c| out.write_all(&c.bytes()).map_err(wr))?;
            }
        }
        Mode::Extract => {
            let pick = picker(&job.paths, job.kind).map_err(Error::invalid)?;
            let opts = ExtractOptions {
                xattrs: job.xattrs,
                user_xattrs_only: job.user_xattrs_only,
                force: job.force,
                ..Default::default()
            };
            let rep = extract::extract_picked(&img, &job.dest, opts, &pick)?;
            if !job.quiet {
                let n = |count: u64, one: &str, many: &str| {
                    format!("created {count} {}\n", if count == 1 { one } else { many })
                };
                let text = [
                    n(rep.files, "file", "files"),
                    n(rep.dirs, "directory", "directories"),
                    n(rep.symlinks, "symlink", "symlinks"),
                    n(rep.devices, "device", "devices"),
                    n(rep.fifos, "fifo", "fifos"),
                    n(rep.sockets, "socket", "sockets"),
                    n(rep.hardlinks, "hardlink", "hardlinks"),
                ]
                .concat();
                write!(out, "\n{text}").map_err(wr)?;
            }
            for w in &rep.warnings {
                eprintln!("unsquashfs: {w}");
            }
        }
    }
    Ok(0)
}

/// The pseudo file written to `target`: straight into a FIFO or device
/// (snapd reads it from a FIFO), else through a temporary file renamed
/// into place, as every file sqfuse writes.
fn write_pseudo_file(img: &Image, target: &std::path::Path) -> Result<()> {
    let fail = |e: std::io::Error| Error::io(format!("writing {}", target.display()), e);
    let special = std::fs::metadata(target).is_ok_and(|m| !m.is_file());
    if special {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(target)
            .map_err(fail)?;
        return pseudo::write(img, &mut std::io::BufWriter::new(f));
    }
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let file_name = target.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{file_name}.sqfuse-pf-{}", std::process::id()));
    let written = (|| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(fail)?;
        let mut w = std::io::BufWriter::new(f);
        pseudo::write(img, &mut w)?;
        w.into_inner()
            .map_err(|e| fail(e.into_error()))?
            .sync_all()
            .map_err(fail)?;
        std::fs::rename(&tmp, target).map_err(fail)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn list(img: &Image, job: &Job, out: &mut dyn Write) -> Result<()> {
    let wr = |e: std::io::Error| Error::io("writing standard output", e);
    let pick = picker(&job.paths, job.kind).map_err(Error::invalid)?;
    let dest = job.dest.to_string_lossy().into_owned();
    let root = img.root()?;
    line(img, job, &root, &dest, out).map_err(wr)?;
    let mut walk = img.walk(&root, img.root_ref())?;
    while let Some(step) = walk.next() {
        let Step::Entry(e) = step? else { continue };
        match pick(&e.path) {
            Pick::No => walk.skip_dir(),
            _ => {
                let name = format!("{dest}/{}", String::from_utf8_lossy(&e.path));
                line(img, job, &e.inode, &name, out).map_err(wr)?;
            }
        }
    }
    Ok(())
}

/// A user's or group's name, or its number.
fn owner_name(id: u32, user: bool, numeric: bool) -> String {
    if !numeric {
        // SAFETY: the returned pointers are read at once, on this thread.
        unsafe {
            let name = if user {
                let pw = libc::getpwuid(id);
                (!pw.is_null()).then(|| (*pw).pw_name)
            } else {
                let gr = libc::getgrgid(id);
                (!gr.is_null()).then(|| (*gr).gr_name)
            };
            if let Some(n) = name.filter(|n| !n.is_null()) {
                return CStr::from_ptr(n).to_string_lossy().into_owned();
            }
        }
    }
    id.to_string()
}

/// "YYYY-MM-DD HH:MM", in local time unless -UTC.
fn time_text(t: u32, utc: bool) -> String {
    let secs = libc::time_t::from(t);
    // SAFETY: tm is plain data filled by the _r functions.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        if utc {
            libc::gmtime_r(&secs, &mut tm);
        } else {
            libc::localtime_r(&secs, &mut tm);
        }
    }
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// One listing line, as unsquashfs prints it (its 25-column owner and size
/// field; devices as the old-style "major,minor" of the stored number).
fn line(img: &Image, job: &Job, i: &Inode, name: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let Mode::LongList { numeric } = job.mode else {
        return writeln!(out, "{name}");
    };
    let (uid, gid) = (img.uid(i).unwrap_or(0), img.gid(i).unwrap_or(0));
    let (user, group) = (
        owner_name(uid, true, numeric),
        owner_name(gid, false, numeric),
    );
    let pad = 25usize.saturating_sub(user.len() + group.len());
    let size = match &i.data {
        InodeData::BlockDev(r) | InodeData::CharDev(r) => {
            let pad = pad.saturating_sub(7);
            format!("{:pad$}{:3},{:3}", " ", (*r as i32) >> 8, *r & 0xff)
        }
        _ => format!("{:>pad$}", i.size()),
    };
    write!(
        out,
        "{} {user}/{group} {size} {} {name}",
        crate::cli::mode_string(i.file_type(), i.perm),
        time_text(i.mtime, job.utc)
    )?;
    if let InodeData::Symlink(t) = &i.data {
        write!(out, " -> {}", String::from_utf8_lossy(t))?;
    }
    writeln!(out)
}

/// The superblock as unsquashfs -s shows it.
/// The compressor options as unsquashfs 4.7.5's compressors print them.
fn option_lines(o: &crate::format::compressor::CompressorOptions) -> Vec<String> {
    use crate::format::compressor::{CompressorOptions as O, GZIP_STRATEGIES, XZ_FILTERS};
    let named = |bits: u32, names: &[&str]| -> Vec<String> {
        names
            .iter()
            .enumerate()
            .filter(|(i, _)| (bits >> i) & 1 != 0)
            .map(|(_, n)| n.to_string())
            .collect()
    };
    match *o {
        O::Gzip {
            level,
            window_bits,
            strategies,
        } => {
            let s = named(u32::from(strategies), &GZIP_STRATEGIES);
            vec![
                format!("compression-level {level}"),
                format!("window-size {window_bits}"),
                format!(
                    "Strategies selected: {}",
                    if s.is_empty() {
                        "default".to_string()
                    } else {
                        s.join(", ")
                    }
                ),
            ]
        }
        O::Xz { dict_size, filters } => {
            let f = named(filters, &XZ_FILTERS);
            vec![
                format!("Dictionary size {dict_size}"),
                if f.is_empty() {
                    "No filters specified".to_string()
                } else {
                    format!("Filters selected: {}", f.join(", "))
                },
            ]
        }
        O::Lz4 { flags, data, .. } => {
            let hc = flags & 1 != 0;
            match (hc, data) {
                (true, d) => {
                    let level = d.unwrap_or(12);
                    vec![
                        "High Compression option specified (-Xhc)".to_string(),
                        format!(
                            "Compression-level {level}{}",
                            if level == 12 { " (default)" } else { "" }
                        ),
                    ]
                }
                (false, d) => {
                    let acc = d.unwrap_or(1);
                    vec![format!(
                        "Acceleration {acc}{}",
                        if acc == 1 { " (default)" } else { "" }
                    )]
                }
            }
        }
        O::Zstd { level } => vec![format!("compression-level {level}")],
        O::Lzo { algorithm, level } => {
            const LZO: [&str; 5] = [
                "lzo1x_1",
                "lzo1x_1_11",
                "lzo1x_1_12",
                "lzo1x_1_15",
                "lzo1x_999",
            ];
            let name = LZO.get(algorithm as usize).copied().unwrap_or("unknown");
            let mut v = vec![format!("algorithm {name}")];
            if algorithm == 4 {
                v.push(format!("compression level {level}"));
            }
            v
        }
    }
}

fn stat(img: &Image, job: &Job, out: &mut dyn Write) -> std::io::Result<()> {
    let sb = &img.sb;
    let has = |f| sb.has(f);
    let un = |f| if has(f) { "un" } else { "" };
    let secs = libc::time_t::from(sb.mkfs_time);
    // SAFETY: tm and buf are filled by the _r functions.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0 as libc::c_char; 64];
    let when = unsafe {
        if job.utc {
            libc::gmtime_r(&secs, &mut tm);
        } else {
            libc::localtime_r(&secs, &mut tm);
        }
        libc::asctime_r(&tm, buf.as_mut_ptr());
        CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
    };
    writeln!(
        out,
        "Found a valid SQUASHFS 4:0 superblock on {}.",
        job.image.display()
    )?;
    write!(out, "Creation or last append time {when}")?;
    writeln!(
        out,
        "Filesystem size {} bytes ({:.2} Kbytes / {:.2} Mbytes)",
        sb.bytes_used,
        sb.bytes_used as f64 / 1024.0,
        sb.bytes_used as f64 / (1024.0 * 1024.0)
    )?;
    writeln!(out, "Compression {}", img.compressor.name())?;
    if let Some(o) = &img.compressor_options {
        for l in option_lines(o) {
            writeln!(out, "\t{l}")?;
        }
    }
    writeln!(out, "Block size {}", sb.block_size)?;
    writeln!(
        out,
        "Filesystem is {}exportable via NFS",
        if has(flags::EXPORTABLE) { "" } else { "not " }
    )?;
    writeln!(
        out,
        "Inodes are {}compressed",
        un(flags::UNCOMPRESSED_INODES)
    )?;
    writeln!(out, "Data is {}compressed", un(flags::UNCOMPRESSED_DATA))?;
    let ids_un = has(flags::UNCOMPRESSED_INODES) || has(flags::UNCOMPRESSED_IDS);
    writeln!(
        out,
        "Uids/Gids (Id table) are {}compressed",
        if ids_un { "un" } else { "" }
    )?;
    if has(flags::NO_FRAGMENTS) {
        writeln!(out, "Fragments are not stored")?;
    } else {
        writeln!(
            out,
            "Fragments are {}compressed",
            un(flags::UNCOMPRESSED_FRAGMENTS)
        )?;
        writeln!(
            out,
            "Tailends are {}packed into fragments",
            if has(flags::ALWAYS_FRAGMENTS) {
                ""
            } else {
                "not "
            }
        )?;
    }
    if has(flags::NO_XATTRS) {
        writeln!(out, "Xattrs are not stored")?;
    } else {
        writeln!(
            out,
            "Xattrs are {}compressed",
            un(flags::UNCOMPRESSED_XATTRS)
        )?;
    }
    writeln!(
        out,
        "Duplicates are {}removed",
        if has(flags::DUPLICATES) { "" } else { "not " }
    )?;
    writeln!(out, "Number of fragments {}", sb.fragment_entry_count)?;
    writeln!(out, "Number of inodes {}", sb.inode_count)?;
    writeln!(out, "Number of ids {}", sb.id_count)?;
    if !has(flags::NO_XATTRS) {
        writeln!(out, "Number of xattr ids {}", img.xattr_count())?;
    }
    Ok(())
}

/// unsquashfs's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    match parse(args) {
        Ok(Action::Help) => {
            print!("{}", help());
            ExitCode::SUCCESS
        }
        Ok(Action::Version) => {
            println!(
                "unsquashfs version {} (sqfuse {})",
                super::mksquashfs::COMPATIBLE,
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Ok(Action::Run(job)) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let result = run(&job, &mut out);
            let _ = out.flush();
            match result {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    let e = e.within(crate::reader::remote::shown_name(&job.image));
                    crate::cli::report::fail(prog, &e, 1)
                }
            }
        }
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(v: &[&str]) -> Job {
        match parse(&v.iter().map(OsString::from).collect::<Vec<_>>()).unwrap() {
            Action::Run(j) => j,
            _ => panic!(),
        }
    }

    #[test]
    fn options_then_image_then_paths() {
        let j = job(&["-f", "-d", "out", "-o", "4K", "-q", "img.sqfs", "a/b", "c*"]);
        assert!(j.force && j.quiet);
        assert_eq!(j.dest, PathBuf::from("out"));
        assert_eq!(j.offset, 4096);
        assert_eq!(j.paths, ["a/b", "c*"]);
        assert_eq!(job(&["-lln", "i"]).mode, Mode::LongList { numeric: true });
        assert!(parse(&[OsString::from("-bogus"), "i".into()]).is_err());
    }

    #[test]
    fn picking_by_path_patterns() {
        let pick = picker(&["d/f*".into()], PatternKind::Glob).unwrap();
        assert_eq!(pick(b"d"), Pick::Parent);
        assert_eq!(pick(b"d/f1"), Pick::All);
        assert_eq!(pick(b"d/f1/below"), Pick::All);
        assert_eq!(pick(b"d/g"), Pick::No);
        assert_eq!(pick(b"e"), Pick::No);
        let all = picker(&[], PatternKind::Glob).unwrap();
        assert_eq!(all(b"anything"), Pick::All);
    }
}
