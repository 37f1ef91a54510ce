//! Start-up profiles: what one run of a program read from a mounted image,
//! in the order it first read it.
//!
//! A profile is written by a mount with `-o record=FILE` and used three
//! ways: replayed at mount (`-o preload=FILE`: the image ranges fetched
//! ahead, then the names, listings and file ranges brought into the
//! kernel's caches), and as a file order for the packer (`pack --order`),
//! so a launch reads contiguous data.
//!
//! The file is text, one item per line, so a packager can read and edit
//! it:
//!
//! ```text
//! sqfuse-profile 1
//! image 0 4a3f0000-6560e0f1-1a2b-4c-1e2f30-93a0c1d2e3f4a5b6   # identity of layer 0 (top)
//! range 0 96 8192                              # image bytes read: layer, offset, length
//! look /usr/lib/python3.11/os.py               # a name looked up (present or not)
//! list /usr/lib/python3.11                     # a directory listed
//! read /usr/lib/python3.11/os.py 0 40960       # file bytes read: offset, length
//! ```
//!
//! Paths start at the mount's root; bytes outside printable ASCII, `%` and
//! space are written `%XX`. Everything read is checked: a line too long,
//! too many lines, a bad number or escape is an error naming the line.

use crate::error::{Error, Result};
use crate::reader::Image;
use std::io::{BufRead, Write};
use std::path::Path;

/// The first line of every profile (and its version).
pub const MAGIC: &str = "sqfuse-profile 1";
/// Longest line accepted: a PATH_MAX path, every byte escaped.
pub const MAX_LINE: usize = 3 * 4096 + 64;
/// Most items one profile may hold.
pub const MAX_ITEMS: usize = 1 << 20;
/// Most layers one profile may name.
pub const MAX_LAYERS: usize = 128;

/// One thing the recorded run did, in the order it first did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileStep {
    /// A name looked up, whether or not it exists.
    Look(Vec<u8>),
    /// A directory listed.
    List(Vec<u8>),
    /// `len` bytes of a file read from `offset`.
    Read {
        /// The file's path.
        path: Vec<u8>,
        /// Where the read began.
        offset: u64,
        /// How many bytes it asked for.
        len: u64,
    },
}

impl ProfileStep {
    /// The path the step is about.
    pub fn path(&self) -> &[u8] {
        match self {
            ProfileStep::Look(p) | ProfileStep::List(p) | ProfileStep::Read { path: p, .. } => p,
        }
    }
}

/// Image bytes the recorded run needed: `len` bytes at `offset` of layer
/// `layer` (offsets as the superblock counts them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageRange {
    /// Which layer, top first.
    pub layer: usize,
    /// Image offset of the range.
    pub offset: u64,
    /// Its length.
    pub len: u64,
}

/// A start-up profile (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Each layer's identity ([`identity`]), top first.
    pub images: Vec<String>,
    /// Image ranges in the order first read.
    pub ranges: Vec<ImageRange>,
    /// Names, listings and file reads, in the order first done.
    pub steps: Vec<ProfileStep>,
}

/// What tells one image from another: superblock fields (size, build
/// time, table places) and a hash of the image's last 8 KiB, where its
/// tables end (inode sizes, fragment places and ids differ there between
/// two images of the same shape built in the same second).
pub fn identity(img: &Image) -> String {
    use sha2::Digest;
    let sb = &img.sb;
    let tail_len = sb.bytes_used.min(8192);
    let tail = img
        .read_bytes(sb.bytes_used - tail_len, tail_len as usize)
        .map(|b| b.into_owned())
        .unwrap_or_default();
    let hash = sha2::Sha256::digest(&tail);
    format!(
        "{:x}-{:x}-{:x}-{:x}-{:x}-{}",
        sb.bytes_used,
        sb.mkfs_time,
        sb.inode_count,
        sb.root_inode_ref,
        sb.directory_table_start,
        hex8(&hash[..8])
    )
}

fn hex8(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `path` with `%`, space, controls and non-ASCII bytes as `%XX`.
pub fn escape(path: &[u8]) -> String {
    let mut s = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_graphic() && b != b'%' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

impl Profile {
    /// The identities of a view's layers, top first, to compare with
    /// [`Profile::images`].
    pub fn identities(layers: &[std::sync::Arc<Image>]) -> Vec<String> {
        layers.iter().map(|l| identity(l)).collect()
    }

    /// Reads a profile; `name` is how errors name the file.
    pub fn parse(input: impl BufRead, name: &str) -> Result<Profile> {
        let mut p = Profile::default();
        let mut lines = LineReader { input, n: 0, name };
        match lines.next()? {
            Some(l) if l == MAGIC => {}
            Some(l) if l.starts_with("sqfuse-profile ") => {
                return Err(lines.bad("a profile of another version (this sqfuse reads version 1)"))
            }
            _ => return Err(lines.bad("not a sqfuse profile (no 'sqfuse-profile 1' line)")),
        }
        let mut items = 0usize;
        while let Some(line) = lines.next()? {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            items += 1;
            if items > MAX_ITEMS {
                return Err(lines.bad(&format!("more than {MAX_ITEMS} items")));
            }
            let f: Vec<&str> = line.split(' ').collect();
            let num = |s: &str| -> Result<u64> {
                s.parse::<u64>()
                    .map_err(|_| lines.bad(&format!("'{}' is not a number", short(s))))
            };
            let path = |s: &str| -> Result<Vec<u8>> {
                let p = unescape(s).ok_or_else(|| lines.bad("bad %-escape in a path"))?;
                if !p.starts_with(b"/") || p.contains(&0) {
                    return Err(lines.bad("a path must start with / and hold no NUL"));
                }
                Ok(p)
            };
            match (f[0], f.len()) {
                ("image", 3) => {
                    let layer = num(f[1])? as usize;
                    if layer != p.images.len() || layer >= MAX_LAYERS {
                        return Err(
                            lines.bad("image lines must number the layers 0, 1, ... in order")
                        );
                    }
                    p.images.push(f[2].chars().take(200).collect());
                }
                ("range", 4) => {
                    let layer = num(f[1])? as usize;
                    if layer >= p.images.len() {
                        return Err(lines.bad(&format!(
                            "range of layer {layer}, which no image line names"
                        )));
                    }
                    let (offset, len) = (num(f[2])?, num(f[3])?);
                    if offset.checked_add(len).is_none() {
                        return Err(lines.bad("range past the largest offset"));
                    }
                    p.ranges.push(ImageRange { layer, offset, len });
                }
                ("look", 2) => p.steps.push(ProfileStep::Look(path(f[1])?)),
                ("list", 2) => p.steps.push(ProfileStep::List(path(f[1])?)),
                ("read", 4) => {
                    let (offset, len) = (num(f[2])?, num(f[3])?);
                    if offset.checked_add(len).is_none() {
                        return Err(lines.bad("read past the largest offset"));
                    }
                    p.steps.push(ProfileStep::Read {
                        path: path(f[1])?,
                        offset,
                        len,
                    });
                }
                (word, _) => {
                    return Err(lines.bad(&format!(
                        "'{}' is not an item this sqfuse knows, or has the wrong number of fields",
                        short(word)
                    )))
                }
            }
        }
        if p.images.is_empty() {
            return Err(lines.bad("no image line"));
        }
        Ok(p)
    }

    /// Reads the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile> {
        let name = crate::error::shown_path(path);
        let f = std::fs::File::open(path).map_err(|e| Error::io(name.clone(), e))?;
        Profile::parse(std::io::BufReader::new(f), &name)
    }

    /// Writes the profile as text.
    pub fn write_to(&self, mut out: impl Write) -> std::io::Result<()> {
        writeln!(out, "{MAGIC}")?;
        for (k, id) in self.images.iter().enumerate() {
            writeln!(out, "image {k} {id}")?;
        }
        for r in &self.ranges {
            writeln!(out, "range {} {} {}", r.layer, r.offset, r.len)?;
        }
        for s in &self.steps {
            match s {
                ProfileStep::Look(p) => writeln!(out, "look {}", escape(p))?,
                ProfileStep::List(p) => writeln!(out, "list {}", escape(p))?,
                ProfileStep::Read { path, offset, len } => {
                    writeln!(out, "read {} {offset} {len}", escape(path))?
                }
            }
        }
        Ok(())
    }

    /// Writes the profile to `path` through a temporary file renamed into
    /// place, so a reader never sees half of one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes).expect("writing to memory");
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".sqfuse-{}.tmp", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let r = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r.map_err(|e| Error::io(crate::error::shown_path(path), e))
    }

    /// The files read, each once, in the order first read: the order the
    /// packer lays their data out in (paths relative to the root).
    pub fn file_order(&self) -> Vec<Vec<u8>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for s in &self.steps {
            if let ProfileStep::Read { path, .. } = s {
                if seen.insert(path.as_slice()) {
                    out.push(path[1..].to_vec());
                }
            }
        }
        out
    }
}

fn short(s: &str) -> String {
    crate::error::shorten(s).into_owned()
}

/// Lines of at most [`MAX_LINE`] bytes, counted for messages.
struct LineReader<'a, R> {
    input: R,
    n: usize,
    name: &'a str,
}

impl<R: BufRead> LineReader<'_, R> {
    fn bad(&self, what: &str) -> Error {
        Error::invalid(format!("{}: line {}: {what}", self.name, self.n))
    }

    fn next(&mut self) -> Result<Option<String>> {
        let mut buf = Vec::new();
        let got = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(self.name.to_string(), e))?;
        if got == 0 {
            return Ok(None);
        }
        self.n += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            return Err(self.bad(&format!("longer than {MAX_LINE} bytes")));
        }
        String::from_utf8(buf)
            .map(Some)
            .map_err(|_| self.bad("not UTF-8 text (paths are %-escaped)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Profile {
        Profile {
            images: vec!["1-2-3-4-5".into()],
            ranges: vec![ImageRange {
                layer: 0,
                offset: 96,
                len: 8192,
            }],
            steps: vec![
                ProfileStep::Look(b"/a b/%\xff".to_vec()),
                ProfileStep::List(b"/".to_vec()),
                ProfileStep::Read {
                    path: b"/x".to_vec(),
                    offset: 0,
                    len: 4096,
                },
            ],
        }
    }

    #[test]
    fn round_trips_through_text() {
        let mut out = Vec::new();
        sample().write_to(&mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("look /a%20b/%25%FF\n"), "{text}");
        assert_eq!(Profile::parse(&out[..], "p").unwrap(), sample());
    }

    #[test]
    fn hostile_lines_are_errors_naming_the_line() {
        let cases: &[(&str, &str)] = &[
            ("", "not a sqfuse profile"),
            ("sqfuse-profile 2\n", "another version"),
            ("sqfuse-profile 1\n", "no image line"),
            ("sqfuse-profile 1\nimage 1 x\n", "line 2: image lines"),
            (
                "sqfuse-profile 1\nimage 0 x\nrange 1 0 1\n",
                "line 3: range of layer 1",
            ),
            (
                "sqfuse-profile 1\nimage 0 x\nread /a 18446744073709551615 2\n",
                "past the largest",
            ),
            (
                "sqfuse-profile 1\nimage 0 x\nread /a -1 2\n",
                "'-1' is not a number",
            ),
            ("sqfuse-profile 1\nimage 0 x\nlook a\n", "must start with /"),
            ("sqfuse-profile 1\nimage 0 x\nlook /%zz\n", "bad %-escape"),
            ("sqfuse-profile 1\nimage 0 x\nlook /%0\n", "bad %-escape"),
            ("sqfuse-profile 1\nimage 0 x\nlook /%00\n", "no NUL"),
            (
                "sqfuse-profile 1\nimage 0 x\nfly /a\n",
                "'fly' is not an item",
            ),
            ("sqfuse-profile 1\nimage 0 x\n\u{e9}\n", "not an item"),
        ];
        for (text, want) in cases {
            let e = Profile::parse(text.as_bytes(), "p")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.starts_with("p") || e.contains("p: "), "{e}");
        }
        let long = format!(
            "sqfuse-profile 1\nimage 0 x\nlook /{}\n",
            "a".repeat(MAX_LINE)
        );
        let e = Profile::parse(long.as_bytes(), "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3: longer than"), "{e}");
        let bad_utf8 = b"sqfuse-profile 1\nimage 0 x\nlook /\xff\n";
        let e = Profile::parse(&bad_utf8[..], "p").unwrap_err().to_string();
        assert!(e.contains("line 3: not UTF-8"), "{e}");
    }

    #[test]
    fn file_order_lists_each_file_once_in_first_read_order() {
        let mut p = sample();
        p.steps.push(ProfileStep::Read {
            path: b"/y/z".to_vec(),
            offset: 0,
            len: 1,
        });
        p.steps.push(ProfileStep::Read {
            path: b"/x".to_vec(),
            offset: 4096,
            len: 1,
        });
        assert_eq!(p.file_order(), vec![b"x".to_vec(), b"y/z".to_vec()]);
    }
}
