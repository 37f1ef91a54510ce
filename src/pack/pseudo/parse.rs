//! Reading pseudo definitions: `NAME TYPE FIELDS...`, NAME quoted with
//! `"` or its spaces escaped with `\`, as mksquashfs reads them. Every
//! error names where the definition was given and the field that is wrong.

use super::{Attrs, Content, Definition, Entry};
use crate::error::io_words;
use crate::format::xattr::{Namespace, Xattr};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The longest definition read (continuation lines joined): far beyond
/// any real one, a bound on what one line may allocate.
const MAX_DEFINITION: usize = 1 << 20;

/// The most definitions one pseudo file may hold: far beyond any real
/// one (a 400k-file snap has 400k), a bound on the memory they take.
const MAX_DEFINITIONS: usize = 8 << 20;

/// The line `unsquashfs -pf` puts between the definitions and the data of
/// its `R` files (followed by one more `#` line).
const DATA_MARKER: &[u8] = b"# START OF DATA - DO NOT MODIFY";

/// A file holding `R` data copied from standard input; removed on drop.
#[derive(Debug)]
pub struct DataFile(pub(crate) PathBuf);

impl Drop for DataFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// A word: up to unquoted white space; `"` toggles quoting, `\` takes the
/// next byte as it is.
fn word(s: &[u8]) -> (Vec<u8>, &[u8]) {
    let (mut out, mut quoted, mut i) = (Vec::new(), false, 0);
    while let Some(&b) = s.get(i) {
        if !quoted && b.is_ascii_whitespace() {
            break;
        }
        i += 1;
        match b {
            b'"' => quoted = !quoted,
            b'\\' => match s.get(i) {
                Some(&n) => {
                    out.push(n);
                    i += 1;
                }
                None => break,
            },
            _ => out.push(b),
        }
    }
    (out, skip_ws(&s[i..]))
}

/// A run of non-space bytes (as scanf's `%s`).
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let s = skip_ws(s);
    let n = s.iter().take_while(|b| !b.is_ascii_whitespace()).count();
    (&s[..n], skip_ws(&s[n..]))
}

/// Reads the fields of one definition, naming each in its errors.
struct Fields<'a> {
    rest: &'a [u8],
    origin: &'a str,
}

impl<'a> Fields<'a> {
    fn fail(&self, what: impl std::fmt::Display) -> String {
        format!("pseudo definition {}: {what}", self.origin)
    }

    fn next(&mut self, field: &str) -> Result<&'a [u8], String> {
        let (t, rest) = token(self.rest);
        if t.is_empty() {
            return Err(self.fail(format_args!("{field} is missing")));
        }
        self.rest = rest;
        Ok(t)
    }

    fn text(&mut self, field: &str) -> Result<&'a str, String> {
        let t = self.next(field)?;
        std::str::from_utf8(t).map_err(|_| self.fail(format_args!("{field} is not text")))
    }

    fn number(&mut self, field: &str, max: u64) -> Result<u32, String> {
        let t = self.text(field)?;
        t.parse::<u64>()
            .ok()
            .filter(|&n| n <= max)
            .map(|n| n as u32)
            .ok_or_else(|| self.fail(format_args!("{field} {t:?} is not a number up to {max}")))
    }

    fn mode(&mut self) -> Result<u16, String> {
        let t = self.text("mode")?;
        u16::from_str_radix(t, 8)
            .ok()
            .filter(|&m| m <= 0o7777)
            .ok_or_else(|| self.fail(format_args!("mode {t:?} is not an octal mode up to 7777")))
    }

    fn id(&mut self, field: &str, group: bool) -> Result<u32, String> {
        let t = self.text(field)?;
        if let Ok(n) = t.parse::<i64>() {
            return u32::try_from(n).map_err(|_| {
                self.fail(format_args!(
                    "{field} {t} is out of range (0 to {})",
                    u32::MAX
                ))
            });
        }
        let found = if group {
            crate::users::gid_by_name(t)
        } else {
            crate::users::uid_by_name(t)
        };
        found.ok_or_else(|| {
            let what = if group { "group" } else { "user" };
            self.fail(format_args!("{field}: no {what} named {t:?}"))
        })
    }

    fn time(&mut self) -> Result<u32, String> {
        let (w, rest) = word(self.rest);
        if w.is_empty() {
            return Err(self.fail("time is missing"));
        }
        self.rest = rest;
        let w = String::from_utf8(w).map_err(|_| self.fail("time is not text"))?;
        parse_time(&w).map_err(|e| self.fail(format_args!("time: {e}")))
    }

    /// mode uid gid, after the time of an extended (upper-case) type.
    fn attrs(&mut self, timed: bool) -> Result<Attrs, String> {
        let mtime = if timed { Some(self.time()?) } else { None };
        Ok(Attrs {
            perm: self.mode()?,
            uid: self.id("uid", false)?,
            gid: self.id("gid", true)?,
            mtime,
        })
    }

    /// The rest of the line, which must be there (a command, a target).
    fn rest(&mut self, field: &str) -> Result<Vec<u8>, String> {
        let r = std::mem::take(&mut self.rest);
        if r.is_empty() {
            return Err(self.fail(format_args!("{field} is missing")));
        }
        Ok(r.to_vec())
    }

    fn end(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.fail(format_args!(
                "unexpected {:?} after the last field",
                String::from_utf8_lossy(self.rest)
            )))
        }
    }
}

/// A time as mksquashfs takes it: seconds since the epoch, or any string
/// `date -d` reads ("1 jan 1980", "yesterday").
pub fn parse_time(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let out = std::process::Command::new("date")
        .args(["-d", s, "+%s"])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run date to read {s:?}: {}", io_words(&e)))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .ok()
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("{s:?} is not a time (seconds, or a date string)"))
}

/// An xattr as mksquashfs's `-xattrs-add` takes it, `name=value` (the
/// value forms of pseudo `x` definitions); the error names `option`.
pub fn parse_xattr(option: &str, s: &[u8]) -> Result<Xattr, String> {
    let f = Fields {
        rest: b"",
        origin: option,
    };
    xattr(s, &f).map_err(|e| e.replacen("pseudo definition ", "", 1))
}

/// An xattr `name=value`: value plain, or `0s` base64, `0x` hex, `0t`
/// text with `\ooo` octal escapes, `0b` plain.
fn xattr(s: &[u8], f: &Fields) -> Result<Xattr, String> {
    let eq = s
        .iter()
        .position(|&b| b == b'=')
        .ok_or_else(|| f.fail("xattr has no '=' between name and value"))?;
    let (name, value) = (&s[..eq], &s[eq + 1..]);
    if name.is_empty() || value.is_empty() {
        return Err(f.fail("xattr name and value must not be empty"));
    }
    if Namespace::split(name).is_none() {
        return Err(f.fail(format_args!(
            "xattr {:?} is not in the user, trusted or security namespace",
            String::from_utf8_lossy(name)
        )));
    }
    let bad = |what: &str| f.fail(format_args!("xattr value is not valid {what}"));
    let (prefix, body) = if value.len() > 2 {
        (value[..2].to_ascii_lowercase(), &value[2..])
    } else {
        (Vec::new(), value)
    };
    let value = match prefix.as_slice() {
        b"0s" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| bad("base64"))?
        }
        b"0x" => {
            if body.len() % 2 != 0 {
                return Err(bad("hexadecimal"));
            }
            body.chunks(2)
                .map(|c| {
                    std::str::from_utf8(c)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad("hexadecimal"))?
        }
        b"0t" => {
            let mut out = Vec::with_capacity(body.len());
            let mut i = 0;
            while let Some(&b) = body.get(i) {
                if b == b'\\' {
                    let oct = body
                        .get(i + 1..i + 4)
                        .and_then(|o| std::str::from_utf8(o).ok())
                        .and_then(|o| u8::from_str_radix(o, 8).ok())
                        .ok_or_else(|| bad("text (\\ takes three octal digits)"))?;
                    out.push(oct);
                    i += 4;
                } else {
                    out.push(b);
                    i += 1;
                }
            }
            out
        }
        b"0b" => body.to_vec(),
        _ => value.to_vec(),
    };
    Ok(Xattr {
        name: name.to_vec(),
        value,
    })
}

/// Parses one definition. `in_file`: the definition is in a pseudo file,
/// where `R` (data after the definitions) may be used.
pub(super) fn definition(
    text: &[u8],
    origin: &str,
    in_file: Option<&Arc<Path>>,
) -> Result<Definition, String> {
    let (name, rest) = word(skip_ws(text));
    let path = name
        .iter()
        .position(|&b| b != b'/')
        .map_or(Vec::new(), |i| name[i..].to_vec());
    let mut f = Fields { rest, origin };
    let ty = f.text("type")?;
    let timed = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && ty != "L";
    let entry = match ty {
        "d" | "D" => Entry::Dir(f.attrs(timed)?),
        "m" | "M" => Entry::Modify(f.attrs(timed)?),
        "b" | "c" | "B" | "C" => {
            let attrs = f.attrs(timed)?;
            let major = f.number("major", 0xfff)?;
            let minor = f.number("minor", 0xfffff)?;
            Entry::Device {
                attrs,
                block: ty.eq_ignore_ascii_case("b"),
                major,
                minor,
            }
        }
        "i" | "I" => {
            let attrs = f.attrs(timed)?;
            let socket = match f.text("ipc type")? {
                "s" => true,
                "f" => false,
                t => return Err(f.fail(format_args!("ipc type {t:?} is not s or f"))),
            };
            Entry::Ipc { attrs, socket }
        }
        "f" | "F" => {
            let attrs = f.attrs(timed)?;
            Entry::File(attrs, Content::Command(f.rest("command")?))
        }
        "R" => {
            let Some(file) = in_file else {
                return Err(f.fail("R definitions are only read from a pseudo file (-pf)"));
            };
            let attrs = f.attrs(true)?;
            let length = f.number_u64("file length")?;
            let offset = f.number_u64("offset")?;
            let sparse = f.number("sparse", 1)? == 1;
            Entry::File(
                attrs,
                Content::Data {
                    file: file.clone(),
                    offset,
                    length,
                    sparse,
                },
            )
        }
        "s" | "S" => {
            let mut attrs = f.attrs(timed)?;
            attrs.perm = 0o777; // symlinks always have rwxrwxrwx
            let target = f.rest("symlink target")?;
            if target.len() > 65535 {
                return Err(f.fail("symlink target is longer than 65535 bytes"));
            }
            Entry::Symlink(attrs, target)
        }
        "x" => {
            let x = xattr(&f.rest("xattr")?, &f)?;
            Entry::Xattr(x)
        }
        "l" | "h" => {
            let (target, rest) = word(f.rest);
            f.rest = rest;
            if target.is_empty() {
                return Err(f.fail("link target is missing"));
            }
            use std::os::unix::ffi::OsStrExt;
            let mut p = PathBuf::from(std::ffi::OsStr::from_bytes(&target));
            if ty == "h" {
                p = std::fs::canonicalize(&p).map_err(|e| {
                    f.fail(format_args!("cannot resolve {}: {}", p.display(), io_words(&e)))
                })?;
            }
            let m = std::fs::symlink_metadata(&p)
                .map_err(|e| f.fail(format_args!("cannot stat {}: {}", p.display(), io_words(&e))))?;
            if m.is_dir() {
                return Err(f.fail(format_args!(
                    "{} is a directory, which cannot be hard-linked",
                    p.display()
                )));
            }
            Entry::Link(p)
        }
        "L" => {
            let (target, rest) = word(f.rest);
            f.rest = rest;
            let start = target.iter().position(|&b| b != b'/');
            let Some(start) = start else {
                return Err(f.fail("pseudo link target is missing"));
            };
            Entry::PseudoLink(target[start..].to_vec())
        }
        t => {
            return Err(f.fail(format_args!(
                "type {t:?} is not one of d m b c f s i x l h L D M B C F S I R (a name with spaces is quoted or has them escaped)"
            )))
        }
    };
    f.end()?;
    if path.is_empty() && !matches!(entry, Entry::Dir(_) | Entry::Modify(_) | Entry::Xattr(_)) {
        return Err(f.fail("the root can only be a directory"));
    }
    Ok(Definition {
        path,
        entry,
        origin: origin.to_string(),
    })
}

impl Fields<'_> {
    fn number_u64(&mut self, field: &str) -> Result<u64, String> {
        let t = self.text(field)?;
        t.parse()
            .map_err(|_| self.fail(format_args!("{field} {t:?} is not a number")))
    }
}

/// `-pd`'s definition: `d mode uid gid` or `D time mode uid gid`.
pub(super) fn default_dir(text: &[u8]) -> Result<Attrs, String> {
    let origin = format!("-pd \"{}\"", String::from_utf8_lossy(text));
    let mut f = Fields {
        rest: skip_ws(text),
        origin: &origin,
    };
    let attrs = match f.text("type")? {
        "d" => f.attrs(false)?,
        "D" => f.attrs(true)?,
        t => return Err(f.fail(format_args!("type {t:?} is not d or D"))),
    };
    f.end()?;
    Ok(attrs)
}

/// What a pseudo file held.
pub(super) struct FileDefs {
    pub(super) defs: Vec<Definition>,
    pub(super) data_file: Option<Arc<DataFile>>,
}

/// Reads a pseudo file (`-`: standard input): one definition per line,
/// `\` at a line's end continuing it, blank lines and `#` comments
/// skipped, and after unsquashfs's data marker the data of `R` files.
pub(super) fn file(path: &Path, spool_dir: &Path) -> Result<FileDefs, String> {
    let stdin = path == Path::new("-");
    let shown = if stdin {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let fail = |e: std::io::Error| format!("pseudo file {shown}: {}", io_words(&e));
    let mut input: Box<dyn BufRead> = if stdin {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(fail)?,
        ))
    };
    let data_path: Arc<Path> = if stdin {
        Arc::from(Path::new("-"))
    } else {
        Arc::from(path)
    };
    let mut defs = Vec::new();
    let (mut line_no, mut consumed) = (0usize, 0u64);
    let mut line = Vec::new();
    let mut marker = false;
    loop {
        line.clear();
        let first = line_no + 1;
        // One definition: lines joined while one ends in a lone '\'.
        loop {
            let mut part = Vec::new();
            let n = (&mut input)
                .take((MAX_DEFINITION + 2) as u64)
                .read_until(b'\n', &mut part)
                .map_err(fail)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            consumed += n as u64;
            if part.last() == Some(&b'\n') {
                part.pop();
            } else if n > MAX_DEFINITION {
                return Err(format!(
                    "pseudo file {shown}:{line_no}: line longer than {MAX_DEFINITION} bytes"
                ));
            }
            line.extend_from_slice(&part);
            if line.len() > MAX_DEFINITION {
                return Err(format!(
                    "pseudo file {shown}:{first}: definition longer than {MAX_DEFINITION} bytes"
                ));
            }
            let continued = line.ends_with(b"\\") && !line.ends_with(b"\\\\");
            if !continued {
                break;
            }
            line.pop();
        }
        if line.is_empty() && first > line_no {
            break; // the end
        }
        let def = skip_ws(&line);
        if def.is_empty() {
            continue;
        }
        if def[0] == b'#' {
            if def == DATA_MARKER {
                marker = true;
                break;
            }
            continue;
        }
        let origin = format!("{shown}:{first}");
        if defs.len() == MAX_DEFINITIONS {
            return Err(format!(
                "pseudo file {origin}: more than {MAX_DEFINITIONS} definitions"
            ));
        }
        defs.push(definition(def, &origin, Some(&data_path))?);
    }
    let has_data = defs
        .iter()
        .any(|d| matches!(d.entry, Entry::File(_, Content::Data { .. })));
    if !has_data {
        return Ok(FileDefs {
            defs,
            data_file: None,
        });
    }
    if !marker {
        return Err(format!(
            "pseudo file {shown}: R definitions but no \"{}\" line before their data",
            String::from_utf8_lossy(DATA_MARKER)
        ));
    }
    // The marker is followed by a "#\n" line; the data starts after it.
    let mut skip = [0u8; 2];
    input.read_exact(&mut skip).map_err(fail)?;
    let (file, start, data_file) = if stdin {
        let tmp = spool_dir.join(format!(".sqfuse-pseudo-data-{}", std::process::id()));
        let mut out = std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| format!("{}: {}", tmp.display(), io_words(&e)))?;
        let guard = Arc::new(DataFile(tmp.clone()));
        std::io::copy(&mut input, &mut out)
            .map_err(|e| format!("copying pseudo data to {}: {}", tmp.display(), io_words(&e)))?;
        (Arc::from(tmp.as_path()), 0, Some(guard))
    } else {
        (data_path.clone(), consumed + 2, None)
    };
    let data_len = std::fs::metadata(&*file).map_err(fail)?.len();
    for d in &mut defs {
        if let Entry::File(
            _,
            Content::Data {
                file: f,
                offset,
                length,
                ..
            },
        ) = &mut d.entry
        {
            *f = file.clone();
            *offset = offset
                .checked_add(start)
                .filter(|&o| o.checked_add(*length).is_some_and(|end| end <= data_len))
                .ok_or_else(|| {
                    format!(
                        "pseudo definition {}: data offset {} and length {length} are past the end of the data",
                        d.origin, offset
                    )
                })?;
        }
    }
    Ok(FileDefs { defs, data_file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(s: &str) -> Result<Definition, String> {
        definition(s.as_bytes(), "-p", None)
    }

    #[test]
    fn every_type_reads_as_mksquashfs_reads_it() {
        let d = def("/dev/console c 600 0 0 5 1").unwrap();
        assert_eq!(d.path, b"dev/console");
        assert!(matches!(
            d.entry,
            Entry::Device {
                block: false,
                major: 5,
                minor: 1,
                attrs: Attrs {
                    perm: 0o600,
                    uid: 0,
                    gid: 0,
                    mtime: None
                }
            }
        ));
        let d = def("\"a b\"/c\\ d D 1000 755 root 0").unwrap();
        assert_eq!(d.path, b"a b/c d");
        assert!(matches!(
            d.entry,
            Entry::Dir(Attrs {
                mtime: Some(1000),
                perm: 0o755,
                ..
            })
        ));
        let d = def("f F 5 644 0 0 echo  hi there").unwrap();
        assert_eq!(
            d.entry,
            Entry::File(
                Attrs {
                    perm: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: Some(5)
                },
                Content::Command(b"echo  hi there".to_vec())
            )
        );
        let d = def("/ d 755 0 0").unwrap();
        assert!(d.path.is_empty());
        let d = def("l s 0 0 0 ../x y").unwrap();
        assert!(matches!(&d.entry, Entry::Symlink(a, t) if a.perm == 0o777 && t == b"../x y"));
        assert!(matches!(
            def("p i 644 0 0 s").unwrap().entry,
            Entry::Ipc { socket: true, .. }
        ));
        let d = def("f x user.a=0thi\\000there").unwrap();
        assert_eq!(
            d.entry,
            Entry::Xattr(Xattr {
                name: b"user.a".to_vec(),
                value: b"hi\0there".to_vec()
            })
        );
        let d = def("f x user.a=0x6869").unwrap();
        assert!(matches!(&d.entry, Entry::Xattr(x) if x.value == b"hi"));
        let d = def("f x user.a=0saGk=").unwrap();
        assert!(matches!(&d.entry, Entry::Xattr(x) if x.value == b"hi"));
        assert_eq!(
            def("a L /b/c").unwrap().entry,
            Entry::PseudoLink(b"b/c".to_vec())
        );
    }

    #[test]
    fn bad_definitions_name_the_field() {
        for (d, says) in [
            ("a d 800 0 0", "mode \"800\""),
            ("a d 755 0", "gid is missing"),
            ("a c 644 0 0 4096 1", "major \"4096\""),
            ("a z 644 0 0", "type \"z\""),
            ("a d 755 0 0 junk", "unexpected \"junk\""),
            ("a i 644 0 0 q", "ipc type \"q\""),
            ("a f 644 0 0", "command is missing"),
            ("a x user.a", "no '='"),
            ("a x system.a=1", "namespace"),
            ("a d 755 nosuchuser-sqfuse 0", "no user named"),
            ("a R 1 644 0 0 1 2 0", "only read from a pseudo file"),
            ("/ f 644 0 0 true", "root can only be a directory"),
            ("a D notadate-zz 644 0 0", "is not a time"),
        ] {
            let e = def(d).unwrap_err();
            assert!(
                e.contains(says) && e.starts_with("pseudo definition -p:"),
                "{d}: {e}"
            );
        }
    }

    #[test]
    fn pseudo_file_lines_continue_and_r_data_follows_the_marker() {
        let dir = std::env::temp_dir().join(format!("sqfuse-pf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pf = dir.join("pf");
        let body = b"# comment\n\n  a d 755 0 0\nb f 644 0 0 echo \\\none\nc R 7 644 0 0 3 2 0\n#\n# START OF DATA - DO NOT MODIFY\n#\nxyabcz";
        std::fs::write(&pf, body).unwrap();
        let got = file(&pf, &dir).unwrap();
        assert_eq!(got.defs.len(), 3);
        assert_eq!(
            got.defs[1].entry,
            Entry::File(
                Attrs {
                    perm: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: None
                },
                Content::Command(b"echo one".to_vec())
            )
        );
        assert_eq!(got.defs[1].origin, format!("{}:4", pf.display()));
        let Entry::File(_, Content::Data { offset, length, .. }) = &got.defs[2].entry else {
            panic!()
        };
        let at = *offset as usize;
        assert_eq!(&body[at..at + *length as usize], b"abc");
        std::fs::write(&pf, "a d 755 0 0\nb d 9 0 0\n").unwrap();
        let e = file(&pf, &dir).err().unwrap();
        assert!(
            e.contains(&format!("{}:2", pf.display())) && e.contains("mode"),
            "{e}"
        );
        std::fs::write(&pf, "c R 7 644 0 0 3 2 0\n").unwrap();
        assert!(file(&pf, &dir).err().unwrap().contains("START OF DATA"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
