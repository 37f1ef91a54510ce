//! squashfs-tools-ng's pack files (`gensquashfs -F`), in the
//! `gen_init_cpio` style: `TYPE PATH MODE UID GID [EXTRA]` per line, read
//! into the same definitions as mksquashfs's pseudo files.

use super::{Attrs, Content, Definition, Entry};
use std::path::Path;

/// One word: up to white space, or `"..."` with `\` escaping the next
/// byte; and what follows it.
fn word(s: &str) -> (String, &str) {
    let s = s.trim_start();
    let mut out = String::new();
    let mut chars = s.char_indices();
    if s.starts_with('"') {
        chars.next();
        let mut esc = false;
        for (i, c) in chars {
            if esc {
                out.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                return (out, &s[i + c.len_utf8()..]);
            } else {
                out.push(c);
            }
        }
        return (out, "");
    }
    for (i, c) in chars {
        if c.is_whitespace() {
            return (out, &s[i..]);
        }
        out.push(c);
    }
    (out, "")
}

/// Parses a pack file's text. `base` is where relative input paths are
/// read from; `mtime` the time every entry gets (`--defaults mtime=`).
pub fn parse(text: &str, name: &str, base: &Path, mtime: u32) -> Result<Vec<Definition>, String> {
    let mut defs = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let origin = format!("{name}:{}", n + 1);
        let fail = |what: String| format!("pack file {origin}: {what}");
        let (ty, rest) = word(line);
        let (path, rest) = word(rest);
        if path.is_empty() {
            return Err(fail("the path is missing".into()));
        }
        let mut fields = rest;
        let mut next = |what: &str| {
            let (w, r) = word(fields);
            fields = r;
            if w.is_empty() {
                Err(fail(format!("{what} is missing")))
            } else {
                Ok(w)
            }
        };
        let mode = next("mode")?;
        let perm = u16::from_str_radix(&mode, 8)
            .ok()
            .filter(|&m| m <= 0o7777)
            .ok_or_else(|| fail(format!("mode {mode:?} is not an octal mode up to 7777")))?;
        let id = |w: String, what: &str| {
            w.parse::<u32>()
                .map_err(|_| fail(format!("{what} {w:?} is not a number")))
        };
        let uid = id(next("uid")?, "uid")?;
        let gid = id(next("gid")?, "gid")?;
        let attrs = Attrs {
            perm,
            uid,
            gid,
            mtime: Some(mtime),
        };
        let rest_of_line = |f: &str| {
            let f = f.trim();
            if f.starts_with('"') {
                word(f).0
            } else {
                f.to_string()
            }
        };
        let entry = match ty.as_str() {
            "dir" => Entry::Dir(attrs),
            "pipe" => Entry::Ipc {
                attrs,
                socket: false,
            },
            "sock" => Entry::Ipc {
                attrs,
                socket: true,
            },
            "nod" => {
                let kind = next("device type (c or b)")?;
                let major = id(next("major")?, "major")?;
                let minor = id(next("minor")?, "minor")?;
                let block = match kind.as_str() {
                    "b" => true,
                    "c" => false,
                    k => return Err(fail(format!("device type {k:?} is not c or b"))),
                };
                Entry::Device {
                    attrs,
                    block,
                    major,
                    minor,
                }
            }
            "slink" => {
                let t = rest_of_line(fields);
                if t.is_empty() {
                    return Err(fail("the symlink target is missing".into()));
                }
                Entry::Symlink(
                    Attrs {
                        perm: 0o777,
                        ..attrs
                    },
                    t.into_bytes(),
                )
            }
            "link" => {
                let t = rest_of_line(fields);
                let t = t.trim_start_matches('/');
                if t.is_empty() {
                    return Err(fail("the hard link's target is missing".into()));
                }
                Entry::PseudoLink(t.as_bytes().to_vec())
            }
            "file" => {
                let loc = rest_of_line(fields);
                let loc = if loc.is_empty() {
                    path.trim_start_matches('/').to_string()
                } else {
                    loc
                };
                Entry::File(attrs, Content::Path(base.join(loc)))
            }
            "glob" => {
                return Err(fail(
                    "glob entries are not supported by sqfuse's gensquashfs; list the files".into(),
                ))
            }
            t => {
                return Err(fail(format!(
                    "type {t:?} is not dir, file, nod, slink, link, pipe or sock"
                )))
            }
        };
        defs.push(Definition {
            path: path.trim_start_matches('/').as_bytes().to_vec(),
            entry,
            origin: format!("pack file {origin}"),
        });
    }
    Ok(defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_of_gensquashfs_help() {
        let text =
            "# A simple squashfs image\ndir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n\
                    slink /lib 0777 0 0 /usr/lib\nlink /init 0777 0 0 /sbin/init\n\
                    file /sbin/init 0755 0 0 ../init/sbin/init\nfile /bin/bash 0755 0 0\n\
                    file \"/opt/my app/\\\"special\\\"/data\" 0600 0 0\n";
        let d = parse(text, "p", Path::new("/base"), 0).unwrap();
        assert_eq!(d.len(), 7);
        assert!(matches!(
            d[1].entry,
            Entry::Device {
                block: false,
                major: 5,
                minor: 1,
                ..
            }
        ));
        assert_eq!(d[3].entry, Entry::PseudoLink(b"sbin/init".to_vec()));
        assert!(
            matches!(&d[5].entry, Entry::File(_, Content::Path(p)) if p == Path::new("/base/bin/bash"))
        );
        assert_eq!(d[6].path, b"opt/my app/\"special\"/data");
        let e = parse("dir /x 0999 0 0\n", "p", Path::new("."), 0).unwrap_err();
        assert!(e.contains("p:1") && e.contains("mode"), "{e}");
        assert!(parse(
            "glob /usr/lib 0755 0 0 -type d ./lib\n",
            "p",
            Path::new("."),
            0
        )
        .is_err());
    }
}
