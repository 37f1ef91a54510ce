//! A small tar writer for hostile-input tests: members with any path, pax
//! records with any key and value, written exactly as given (no tool in
//! between that would refuse or repair them).

/// Builds a tar stream in memory.
#[derive(Default)]
pub struct TarWriter {
    pub out: Vec<u8>,
}

/// One 512-byte ustar header; `name` must fit 100 bytes (longer paths go
/// in a pax `path` record).
pub fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    let octal = |h: &mut [u8; 512], at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, if kind == b'5' { 0o755 } else { 0o644 });
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// One pax record, `LEN KEY=VALUE\n`, its length counting itself.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 2; // '=' and '\n'
    let mut len = body + 1;
    loop {
        let total = body + 1 + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

impl TarWriter {
    /// A member with its pax records (none: no pax header) and data.
    pub fn member(&mut self, path: &[u8], kind: u8, pax: &[(&[u8], &[u8])], data: &[u8]) {
        self.member_linked(path, kind, pax, data, b"");
    }

    pub fn member_linked(
        &mut self,
        path: &[u8],
        kind: u8,
        pax: &[(&[u8], &[u8])],
        data: &[u8],
        link: &[u8],
    ) {
        let mut records: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        if path.len() > 100 {
            records.extend(pax_record(b"path", path));
        }
        if !records.is_empty() {
            self.out
                .extend_from_slice(&header(b"pax", b'x', records.len() as u64, b""));
            padded(&mut self.out, &records);
        }
        let short = if path.len() > 100 {
            b"long" as &[u8]
        } else {
            path
        };
        self.out
            .extend_from_slice(&header(short, kind, data.len() as u64, link));
        padded(&mut self.out, data);
    }

    /// The stream with its end marker.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}
