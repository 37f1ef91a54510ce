//! A small tar writer for hostile-input tests: members with any path, pax
//! records with any key and value, written exactly as given (no tool in
//! between that would refuse or repair them). Headers and records are the
//! fuzz builder's (sqfuse::fuzz), so both make archives the same way.

/// Builds a tar stream in memory.
#[derive(Default)]
pub struct TarWriter {
    pub out: Vec<u8>,
}

/// One 512-byte ustar header; `name` must fit 100 bytes (longer paths go
/// in a pax `path` record).
pub fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> [u8; 512] {
    let mode = if kind == b'5' { 0o755 } else { 0o644 };
    sqfuse::fuzz::tar_header(name, kind, size, link, mode, (0, 0))
}

/// One pax record, `LEN KEY=VALUE\n`, its length counting itself.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    sqfuse::fuzz::pax_record(&mut r, key, value);
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
