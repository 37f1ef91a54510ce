//! `sqfs2tar [OPTIONS...] SQFSFILE` (squashfs-tools-ng): the image as a
//! tar archive on standard output, as that tool writes it: GNU headers,
//! the root's entries without a leading `./` (the root itself only with
//! `--root-becomes`), hard links as link entries, xattrs as
//! `SCHILY.xattr.*` pax records; `--compressor` compresses the stream.

use super::{text, value_str};
use crate::format::inode::{Inode, InodeData};
use crate::reader::{Image, Step};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct Job {
    pub image: PathBuf,
    pub subdir: Option<String>,
    pub keep_as_dir: bool,
    pub root_becomes: Option<String>,
    pub xattrs: bool,
    pub hard_links: bool,
    pub compressor: Option<String>,
}

pub fn parse(args: &[OsString]) -> Result<Option<Job>, String> {
    let mut job = Job {
        xattrs: true,
        hard_links: true,
        ..Default::default()
    };
    let mut image = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(o) = text(a).filter(|t| t.starts_with('-') && t.len() > 1) else {
            if image.replace(PathBuf::from(a)).is_some() {
                return Err("give one SQFSFILE".into());
            }
            continue;
        };
        match o {
            "-h" | "--help" | "-V" | "--version" => return Ok(None),
            "-c" | "--compressor" => {
                let c = value_str(o, &mut it)?;
                if !matches!(c, "gzip" | "xz" | "zstd" | "bzip2") {
                    return Err(format!("{o} {c}: not gzip, xz, zstd or bzip2"));
                }
                job.compressor = Some(c.to_string());
            }
            "-d" | "--subdir" => {
                if job
                    .subdir
                    .replace(value_str(o, &mut it)?.to_string())
                    .is_some()
                {
                    return Err(format!("{o}: sqfuse's sqfs2tar takes one subdirectory"));
                }
            }
            "-r" | "--root-becomes" => job.root_becomes = Some(value_str(o, &mut it)?.to_string()),
            "-k" | "--keep-as-dir" => job.keep_as_dir = true,
            "-X" | "--no-xattr" => job.xattrs = false,
            "-L" | "--no-hard-links" => job.hard_links = false,
            "-s" | "--no-skip" => {}
            _ => return Err(format!("option {o} is not a sqfs2tar option (see --help)")),
        }
    }
    job.image = image.ok_or("give the SQFSFILE to read (see --help)")?;
    Ok(Some(job))
}

/// The header for `i` at `path`.
fn header(img: &Image, i: &Inode) -> crate::error::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(u32::from(i.perm));
    h.set_uid(u64::from(img.uid(i)?));
    h.set_gid(u64::from(img.gid(i)?));
    h.set_mtime(u64::from(i.mtime));
    h.set_size(0);
    Ok(h)
}

fn write_tar(img: &Image, job: &Job, out: impl Write) -> crate::error::Result<()> {
    use crate::error::Error;
    let wr = |e: std::io::Error| Error::io("writing the tar stream", e);
    let mut ar = tar::Builder::new(out);
    let (start, start_ref) = match &job.subdir {
        Some(d) => img.lookup_path(d)?,
        None => (img.root()?, img.root_ref()),
    };
    // Where entries go: under the root-becomes name, the subdirectory kept
    // as a prefix, or at the top.
    let prefix: Vec<u8> = match (&job.root_becomes, &job.subdir, job.keep_as_dir) {
        (Some(r), _, _) if r == "." => b"./".to_vec(),
        (Some(r), _, _) => format!("{}/", r.trim_end_matches('/')).into_bytes(),
        (None, Some(d), true) => format!("{}/", d.trim_matches('/')).into_bytes(),
        _ => Vec::new(),
    };
    if let Some(r) = &job.root_becomes {
        let mut h = header(img, &start)?;
        h.set_entry_type(tar::EntryType::Directory);
        let name = if r == "." {
            "./".to_string()
        } else {
            format!("{}/", r.trim_end_matches('/'))
        };
        ar.append_data(&mut h, name, std::io::empty()).map_err(wr)?;
    }
    if let (None, Some(d), true) = (&job.root_becomes, &job.subdir, job.keep_as_dir) {
        // The kept directory's own entry comes first.
        let mut h = header(img, &start)?;
        h.set_entry_type(tar::EntryType::Directory);
        ar.append_data(
            &mut h,
            format!("{}/", d.trim_matches('/')),
            std::io::empty(),
        )
        .map_err(wr)?;
    }
    let mut first: HashMap<u32, Vec<u8>> = HashMap::new();
    for step in img.walk(&start, start_ref)? {
        let Step::Entry(e) = step? else { continue };
        let mut path = prefix.clone();
        path.extend_from_slice(&e.path);
        let path_text = String::from_utf8_lossy(&path).into_owned();
        let i = &e.inode;
        if job.xattrs {
            let x = img.xattrs(i)?;
            if !x.is_empty() {
                let recs: Vec<(String, Vec<u8>)> = x
                    .iter()
                    .map(|x| {
                        (
                            format!("SCHILY.xattr.{}", String::from_utf8_lossy(&x.name)),
                            x.value.clone(),
                        )
                    })
                    .collect();
                ar.append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(wr)?;
            }
        }
        let mut h = header(img, i)?;
        if !i.is_dir() && job.hard_links {
            if let Some(p) = first.get(&i.number) {
                h.set_entry_type(tar::EntryType::Link);
                ar.append_link(&mut h, &path_text, String::from_utf8_lossy(p).as_ref())
                    .map_err(wr)?;
                continue;
            }
            first.insert(i.number, path.clone());
        }
        match &i.data {
            InodeData::Dir(_) => {
                h.set_entry_type(tar::EntryType::Directory);
                ar.append_data(&mut h, format!("{path_text}/"), std::io::empty())
                    .map_err(wr)?;
            }
            InodeData::File(f) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(f.size);
                let file = img.open_file(i)?;
                let reader = ChunkReader::new(img, file);
                ar.append_data(&mut h, &path_text, reader).map_err(wr)?;
            }
            InodeData::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                ar.append_link(&mut h, &path_text, String::from_utf8_lossy(t).as_ref())
                    .map_err(wr)?;
            }
            InodeData::BlockDev(r) | InodeData::CharDev(r) => {
                let block = matches!(i.data, InodeData::BlockDev(_));
                h.set_entry_type(if block {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Char
                });
                let (major, minor) = crate::format::inode::rdev_split(*r);
                h.set_device_major(major).map_err(wr)?;
                h.set_device_minor(minor).map_err(wr)?;
                ar.append_data(&mut h, &path_text, std::io::empty())
                    .map_err(wr)?;
            }
            InodeData::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                ar.append_data(&mut h, &path_text, std::io::empty())
                    .map_err(wr)?;
            }
            InodeData::Socket => {
                eprintln!(
                    "sqfs2tar: {path_text}: a socket cannot be stored in a tar archive; skipped"
                );
            }
        }
    }
    ar.into_inner().map_err(wr)?.flush().map_err(wr)
}

/// A file's contents as a reader, chunk by chunk.
struct ChunkReader<'a> {
    img: &'a Image,
    file: crate::reader::FileReader,
    next: usize,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> ChunkReader<'a> {
    fn new(img: &'a Image, file: crate::reader::FileReader) -> Self {
        ChunkReader {
            img,
            file,
            next: 0,
            buf: Vec::new(),
            at: 0,
        }
    }
}

impl std::io::Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if self.next == self.file.chunk_count() {
                return Ok(0);
            }
            let c = self
                .img
                .read_chunk(&self.file, self.next)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            self.next += 1;
            self.buf = c.bytes().into_owned();
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// sqfs2tar's main.
pub fn main(prog: &str, args: &[OsString]) -> std::process::ExitCode {
    use std::process::ExitCode;
    let job = match parse(args) {
        Ok(Some(j)) => j,
        Ok(None) => {
            print!(
                "Usage: sqfs2tar [OPTIONS...] <sqfsfile>\n\n\
                 sqfuse {} answering as sqfs2tar (squashfs-tools-ng): the image as a tar\n\
                 archive on standard output. Options: --compressor gzip|xz|zstd|bzip2,\n\
                 --subdir DIR (once), --root-becomes DIR, --keep-as-dir, --no-xattr,\n\
                 --no-hard-links, --no-skip, --help, --version.\n",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("{prog}: {msg}");
            return ExitCode::from(1);
        }
    };
    let run = || -> crate::error::Result<()> {
        use crate::open::{open_layers, Named, OpenRequest};
        let img = open_layers(&OpenRequest::new(vec![Named::of(&job.image)]))?
            .layers
            .remove(0)
            .image;
        let out = std::io::BufWriter::new(std::io::stdout().lock());
        let wr = |e: std::io::Error| crate::error::Error::io("writing the tar stream", e);
        match job.compressor.as_deref() {
            Some("gzip") => {
                let mut z = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                write_tar(&img, &job, &mut z)?;
                z.finish().map_err(wr)?.flush().map_err(wr)
            }
            Some("xz") => {
                let mut z = liblzma::write::XzEncoder::new(out, 6);
                write_tar(&img, &job, &mut z)?;
                z.finish().map_err(wr)?.flush().map_err(wr)
            }
            Some("zstd") => {
                let mut z = zstd::Encoder::new(out, 3).map_err(wr)?;
                write_tar(&img, &job, &mut z)?;
                z.finish().map_err(wr)?.flush().map_err(wr)
            }
            Some(_) => {
                let mut z = bzip2::write::BzEncoder::new(out, bzip2::Compression::default());
                write_tar(&img, &job, &mut z)?;
                z.finish().map_err(wr)?.flush().map_err(wr)
            }
            None => write_tar(&img, &job, out),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::cli::report::fail(prog, &e, 1),
    }
}
