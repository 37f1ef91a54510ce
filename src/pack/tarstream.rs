//! A tar stream, read member by member: ustar, GNU and pax headers, as GNU
//! tar and Go's archive/tar read them. PAX records are taken by their
//! length prefix (a value may hold any byte, newlines included: tar-rs
//! splits at newlines, which loses binary xattrs and lets a crafted value
//! smuggle a `path` or `size` record that other readers never see). GNU
//! long names, old GNU sparse members and global pax headers are handled
//! here too; every size read is bounded.

use std::io::{self, Read};

pub const BLOCK: usize = 512;

/// Most bytes of metadata members (pax headers, GNU long names) one member
/// may carry, all of them together.
pub const MAX_META: u64 = 16 << 20;
/// Most bytes of global pax records kept (later records replace earlier
/// ones of the same key). They apply to every member that follows, so
/// their size is paid once per member: real archives keep a few short
/// ones (a commit id, a time).
pub const MAX_GLOBAL: usize = 64 << 10;
/// Most sparse runs a GNU sparse member may describe.
const MAX_RUNS: usize = 1 << 20;

/// Type flags (byte 156 of a header).
pub mod kind {
    pub const REGULAR: u8 = b'0';
    pub const REGULAR_OLD: u8 = 0;
    pub const HARD_LINK: u8 = b'1';
    pub const SYMLINK: u8 = b'2';
    pub const CHAR: u8 = b'3';
    pub const BLOCK: u8 = b'4';
    pub const DIR: u8 = b'5';
    pub const FIFO: u8 = b'6';
    pub const CONTIGUOUS: u8 = b'7';
    pub const PAX_LOCAL: u8 = b'x';
    pub const PAX_GLOBAL: u8 = b'g';
    pub const GNU_LONG_NAME: u8 = b'L';
    pub const GNU_LONG_LINK: u8 = b'K';
    pub const GNU_SPARSE: u8 = b'S';
    pub const GNU_DUMPDIR: u8 = b'D';
    pub const GNU_VOLUME: u8 = b'V';
    pub const GNU_MULTIVOLUME: u8 = b'M';
}

/// One member (file, directory, link, device...), its metadata complete.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub kind: u8,
    /// From a pax `path`, a GNU long name, or the header (prefix/name).
    pub path: Vec<u8>,
    /// From a pax `linkpath`, a GNU long link, or the header.
    pub link: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub devmajor: u32,
    pub devminor: u32,
    /// Bytes of data that follow in the archive.
    pub size: u64,
    /// Global pax records in force (shared by the members they apply to).
    pub global: std::sync::Arc<Vec<(String, Vec<u8>)>>,
    /// The member's own pax records, in order.
    pub pax: Vec<(String, Vec<u8>)>,
    /// An old GNU sparse member: its data runs (offset, length), the data
    /// holding them one after another, and the file's real size.
    pub gnu_sparse: Option<(Vec<(u64, u64)>, u64)>,
}

impl Member {
    /// The pax records that apply, global ones first, in order.
    pub fn pax_records(&self) -> impl DoubleEndedIterator<Item = &(String, Vec<u8>)> {
        self.global.iter().chain(self.pax.iter())
    }

    /// The last pax record for `key`.
    pub fn pax_value(&self, key: &str) -> Option<&[u8]> {
        self.pax_records()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

fn bad(at: u64, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("tar header at offset {at}: {what}"),
    )
}

/// A numeric header field: octal ASCII (space or NUL terminated), or GNU's
/// base-256 (first byte 0x80 positive, 0xff negative).
pub fn number(field: &[u8]) -> Option<i64> {
    match field.first() {
        Some(&b) if b & 0x80 != 0 => {
            let negative = b == 0xff;
            let mut v: i128 = if negative { -1 } else { 0 };
            for (i, &c) in field.iter().enumerate() {
                let c = if i == 0 { c & 0x7f } else { c };
                let c = if i == 0 && negative { 0xff } else { c };
                v = v.checked_mul(256)?.checked_add(i128::from(c))?;
                if v.unsigned_abs() > u128::from(u64::MAX) {
                    return None;
                }
            }
            i64::try_from(v).ok()
        }
        _ => {
            let s: Vec<u8> = field
                .iter()
                .copied()
                .skip_while(|&c| c == b' ' || c == 0)
                .take_while(|&c| c != b' ' && c != 0)
                .collect();
            if s.is_empty() {
                return Some(0);
            }
            i64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
        }
    }
}

/// Bytes of a NUL-terminated field.
fn text(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// Pax records, each `LEN KEY=VALUE\n` taken by its length.
pub fn pax_records(mut data: &[u8], at: u64) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|&c| c == 0) {
            break; // padding some writers leave
        }
        let sp = data
            .iter()
            .take(20)
            .position(|&c| c == b' ')
            .ok_or_else(|| bad(at, "pax record without a length"))?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&n: &usize| n > sp + 1 && n <= data.len())
            .ok_or_else(|| bad(at, "pax record length is wrong"))?;
        let record = &data[sp + 1..len];
        let Some((&b'\n', body)) = record.split_last() else {
            return Err(bad(at, "pax record does not end with a newline"));
        };
        let eq = body
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| bad(at, "pax record without '='"))?;
        let key = String::from_utf8(body[..eq].to_vec())
            .map_err(|_| bad(at, "pax record key is not UTF-8"))?;
        out.push((key, body[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// Reads members from a tar stream.
pub struct TarStream<R: Read> {
    r: R,
    /// Bytes read so far.
    pos: u64,
    /// Data of the current member not read yet, and its padding after.
    left: u64,
    pad: u64,
    global: std::sync::Arc<Vec<(String, Vec<u8>)>>,
    done: bool,
}

impl<R: Read> TarStream<R> {
    pub fn new(r: R) -> Self {
        TarStream {
            r,
            pos: 0,
            left: 0,
            pad: 0,
            global: Default::default(),
            done: false,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = (buf.len() as u64).min(n) as usize;
            if self.fill(&mut buf[..k])? != k {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "tar stream ends at offset {} inside a member (truncated?)",
                        self.pos
                    ),
                ));
            }
            n -= k as u64;
        }
        Ok(())
    }

    /// The rest of the current member's data, and its padding.
    fn finish_member(&mut self) -> io::Result<()> {
        let n = self.left + self.pad;
        self.left = 0;
        self.pad = 0;
        self.skip(n)
    }

    /// The data of a metadata member (long name, pax header), bounded.
    fn meta_data(&mut self, size: u64, at: u64) -> io::Result<Vec<u8>> {
        if size > MAX_META {
            return Err(bad(
                at,
                format!("a metadata member of {size} bytes is too large"),
            ));
        }
        let mut v = vec![0u8; size as usize];
        if self.fill(&mut v)? != v.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("tar stream ends inside the metadata member at offset {at}"),
            ));
        }
        self.skip(size.next_multiple_of(BLOCK as u64) - size)?;
        Ok(v)
    }

    /// Reads one 512-byte header; `None` at the end of the archive.
    fn header(&mut self) -> io::Result<Option<[u8; BLOCK]>> {
        let mut h = [0u8; BLOCK];
        let n = self.fill(&mut h)?;
        if n == 0 || (n == BLOCK && h.iter().all(|&c| c == 0)) {
            return Ok(None); // end: EOF or the first zero block
        }
        if n < BLOCK {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "tar stream ends inside a header at offset {}",
                    self.pos - n as u64
                ),
            ));
        }
        let at = self.pos - BLOCK as u64;
        let stored = number(&h[148..156]).ok_or_else(|| bad(at, "bad checksum field"))?;
        let unsigned: i64 = h
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    i64::from(c)
                }
            })
            .sum();
        let signed: i64 = h
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    i64::from(c as i8)
                }
            })
            .sum();
        if stored != unsigned && stored != signed {
            return Err(bad(
                at,
                "header checksum does not match (not a tar archive, or damaged)",
            ));
        }
        Ok(Some(h))
    }

    /// The next member, with the metadata members before it applied.
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        if self.done {
            return Ok(None);
        }
        self.finish_member()?;
        let (mut long_name, mut long_link, mut local): (Option<Vec<u8>>, Option<Vec<u8>>, Vec<_>) =
            (None, None, Vec::new());
        // Metadata members may follow one another without end: together
        // they are bounded, as each one is.
        let mut meta_bytes = 0u64;
        loop {
            let Some(h) = self.header()? else {
                self.done = true;
                return Ok(None);
            };
            let at = self.pos - BLOCK as u64;
            let field = |range: std::ops::Range<usize>, what: &str| {
                number(&h[range]).ok_or_else(|| bad(at, format!("bad number in the {what} field")))
            };
            let header_size = field(124..136, "size")?;
            let size = u64::try_from(header_size).map_err(|_| bad(at, "negative size"))?;
            let kind = h[156];
            if matches!(
                kind,
                kind::GNU_LONG_NAME | kind::GNU_LONG_LINK | kind::PAX_LOCAL | kind::PAX_GLOBAL
            ) {
                meta_bytes = meta_bytes.saturating_add(size);
                if meta_bytes > MAX_META {
                    return Err(bad(
                        at,
                        format!("metadata members before one member exceed {MAX_META} bytes"),
                    ));
                }
            }
            match kind {
                kind::GNU_LONG_NAME => {
                    long_name = Some(text(&self.meta_data(size, at)?).to_vec());
                    continue;
                }
                kind::GNU_LONG_LINK => {
                    long_link = Some(text(&self.meta_data(size, at)?).to_vec());
                    continue;
                }
                kind::PAX_LOCAL => {
                    local.extend(pax_records(&self.meta_data(size, at)?, at)?);
                    continue;
                }
                kind::PAX_GLOBAL => {
                    if size > MAX_GLOBAL as u64 {
                        return Err(bad(
                            at,
                            format!("a global pax header of {size} bytes is too large (at most {MAX_GLOBAL})"),
                        ));
                    }
                    let records = pax_records(&self.meta_data(size, at)?, at)?;
                    // Later records replace earlier ones of the same key.
                    let mut seen = std::collections::HashSet::new();
                    let mut g: Vec<_> = (self.global.iter().cloned().chain(records))
                        .rev()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect();
                    g.reverse();
                    let total: usize = g.iter().map(|(k, v)| k.len() + v.len()).sum();
                    if total > MAX_GLOBAL {
                        return Err(bad(
                            at,
                            format!("global pax records hold {total} bytes, more than the {MAX_GLOBAL} accepted"),
                        ));
                    }
                    self.global = std::sync::Arc::new(g);
                    continue;
                }
                kind::GNU_VOLUME => {
                    self.skip(size.next_multiple_of(BLOCK as u64))?;
                    continue;
                }
                kind::GNU_MULTIVOLUME => {
                    return Err(bad(at, "multi-volume archives are not supported"));
                }
                _ => {}
            }
            let ustar = &h[257..263] == b"ustar\0";
            let gnu = &h[257..265] == b"ustar  \0";
            let mut path = text(&h[0..100]).to_vec();
            if ustar {
                let prefix = text(&h[345..500]);
                if !prefix.is_empty() {
                    path = [prefix, b"/", &path].concat();
                }
            }
            let mut m = Member {
                kind,
                path,
                link: text(&h[157..257]).to_vec(),
                mode: field(100..108, "mode")? as u32,
                uid: field(108..116, "uid")? as u64,
                gid: field(116..124, "gid")? as u64,
                mtime: field(136..148, "mtime")?,
                devmajor: field(329..337, "devmajor")? as u32,
                devminor: field(337..345, "devminor")? as u32,
                size,
                global: self.global.clone(),
                pax: std::mem::take(&mut local),
                gnu_sparse: None,
            };
            if let Some(n) = long_name.take() {
                m.path = n;
            }
            if let Some(l) = long_link.take() {
                m.link = l;
            }
            if let Some(p) = m.pax_value("path") {
                m.path = p.to_vec();
            }
            if let Some(l) = m.pax_value("linkpath") {
                m.link = l.to_vec();
            }
            if let Some(s) = m.pax_value("size") {
                m.size = std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| bad(at, "pax size is not a number"))?;
            }
            if kind == kind::GNU_SPARSE && gnu {
                m.gnu_sparse = Some(self.gnu_sparse_map(&h, at)?);
            }
            self.left = m.size;
            self.pad = m.size.next_multiple_of(BLOCK as u64) - m.size;
            return Ok(Some(m));
        }
    }

    /// An old GNU sparse member's runs: four in the header, more in
    /// extension blocks while the "is extended" byte says so.
    fn gnu_sparse_map(&mut self, h: &[u8; BLOCK], at: u64) -> io::Result<(Vec<(u64, u64)>, u64)> {
        let real = number(&h[483..495])
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| bad(at, "bad GNU sparse real size"))?;
        let mut runs = Vec::new();
        let mut take = |entries: &[u8]| -> io::Result<()> {
            for e in entries.chunks_exact(24) {
                if e.iter().all(|&c| c == 0) {
                    continue;
                }
                let (off, len) = (number(&e[..12]), number(&e[12..]));
                let (Some(off), Some(len)) = (off, len) else {
                    return Err(bad(at, "bad GNU sparse entry"));
                };
                if off < 0 || len < 0 || runs.len() >= MAX_RUNS {
                    return Err(bad(at, "bad GNU sparse entry"));
                }
                runs.push((off as u64, len as u64));
            }
            Ok(())
        };
        take(&h[386..482])?;
        let mut extended = h[482] != 0;
        while extended {
            let mut x = [0u8; BLOCK];
            if self.fill(&mut x)? != BLOCK {
                return Err(bad(at, "tar stream ends inside a GNU sparse map"));
            }
            take(&x[..504])?;
            extended = x[504] != 0;
        }
        Ok((runs, real))
    }

    /// Reads the current member's data (at most what is left of it).
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = (buf.len() as u64).min(self.left) as usize;
        if k == 0 {
            return Ok(0);
        }
        let n = self.fill(&mut buf[..k])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "tar stream ends at offset {} inside a member (truncated?)",
                    self.pos
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The current member's data as a reader.
pub struct Data<'a, R: Read>(pub &'a mut TarStream<R>);

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read_data(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_octal_and_base_256() {
        assert_eq!(number(b"0000644\0"), Some(0o644));
        assert_eq!(number(b"  17 \0\0\0"), Some(0o17));
        assert_eq!(number(b"\0\0\0\0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[4..].copy_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(number(&big), Some(1 << 40));
        assert_eq!(number(&[0xff; 12]), Some(-1));
        assert_eq!(number(b"9\0"), None, "not octal");
    }

    #[test]
    fn pax_records_by_length_keep_newlines_in_values() {
        let value = b"a\n22 linkpath=/etc/evil\nb";
        // " KEY=VALUE\n" after two length digits.
        let rec_len = 2 + 1 + b"SCHILY.xattr.user.x=".len() + value.len() + 1;
        assert!((10..100).contains(&rec_len));
        let mut data = format!("{rec_len} SCHILY.xattr.user.x=").into_bytes();
        data.extend_from_slice(value);
        data.push(b'\n');
        data.extend_from_slice(b"11 path=ok\n");
        let r = pax_records(&data, 0).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].1, value, "the whole value, newlines and all");
        assert_eq!((r[1].0.as_str(), r[1].1.as_slice()), ("path", &b"ok"[..]));
        assert!(
            pax_records(b"99 path=x\n", 0).is_err(),
            "length past the data"
        );
        assert!(pax_records(b"9 path=xy", 0).is_err(), "no newline");
    }
}
