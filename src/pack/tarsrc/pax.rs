//! What a member's pax records and GNU headers say beyond the member
//! walk: numbers, sparse maps (PAX 0.1 and 1.0), libarchive's `%XX`
//! escapes in xattr names.

use std::io::Read;

pub(super) fn parse_num(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.trim();
    // pax times may carry fractions ("1234.5", "-1.25"): keep whole seconds, rounding down.
    match s.split_once('.') {
        Some((i, _)) if s.starts_with('-') => i.parse::<i64>().ok().map(|n| n - 1),
        Some((i, _)) => i.parse().ok(),
        None => s.parse().ok(),
    }
}

/// A PAX sparse map: (offset, length) of each data run, and the real size.
pub(super) struct SparseMap {
    pub(super) runs: Vec<(u64, u64)>,
    pub(super) real_size: u64,
    pub(super) name: Option<Vec<u8>>,
    /// Format 1.0: the map is at the start of the data.
    pub(super) map_in_data: bool,
}

pub(super) fn pax_sparse(m: &super::super::tarstream::Member) -> Option<SparseMap> {
    let get = |k: &str| m.pax_value(k).map(<[u8]>::to_vec);
    let num = |k: &str| get(k).and_then(|v| parse_num(&v)).map(|n| n.max(0) as u64);
    let major = num("GNU.sparse.major");
    let name = get("GNU.sparse.name");
    if major == Some(1) {
        return Some(SparseMap {
            runs: Vec::new(),
            real_size: num("GNU.sparse.realsize")?,
            name,
            map_in_data: true,
        });
    }
    let real_size = num("GNU.sparse.size")?;
    let mut runs = Vec::new();
    if let Some(map) = get("GNU.sparse.map") {
        // 0.1: "off,len,off,len,..."
        let nums: Vec<u64> = String::from_utf8_lossy(&map)
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        runs = nums
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (c[0], c[1]))
            .collect();
    } else {
        // 0.0: repeated GNU.sparse.offset / GNU.sparse.numbytes pairs, in order.
        let mut off = None;
        for (k, v) in m.pax_records() {
            match k.as_str() {
                "GNU.sparse.offset" => off = parse_num(v),
                "GNU.sparse.numbytes" => {
                    if let (Some(o), Some(n)) = (off.take(), parse_num(v)) {
                        runs.push((o.max(0) as u64, n.max(0) as u64));
                    }
                }
                _ => {}
            }
        }
    }
    Some(SparseMap {
        runs,
        real_size,
        name,
        map_in_data: false,
    })
}

/// One decimal number terminated by a newline; adds the bytes read to `consumed`.
pub(super) fn map_number(r: &mut impl Read, consumed: &mut u64) -> std::io::Result<u64> {
    let mut s = Vec::new();
    let mut b = [0u8; 1];
    loop {
        r.read_exact(&mut b)?;
        *consumed += 1;
        if b[0] == b'\n' {
            break;
        }
        if s.len() > 24 {
            return Err(std::io::Error::other("sparse map line too long"));
        }
        s.push(b[0]);
    }
    String::from_utf8_lossy(&s)
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other("bad sparse map number"))
}

/// Reads the 1.0 map at the start of a member's data: decimal numbers, one
/// per line, padded to 512 bytes. Returns the runs and the bytes consumed.
pub(super) fn read_map_1_0(r: &mut impl Read) -> std::io::Result<(Vec<(u64, u64)>, u64)> {
    let mut consumed = 0u64;
    let count = map_number(r, &mut consumed)?;
    if count > 1 << 20 {
        return Err(std::io::Error::other("sparse map too large"));
    }
    let mut runs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let off = map_number(r, &mut consumed)?;
        let len = map_number(r, &mut consumed)?;
        runs.push((off, len));
    }
    let pad = consumed.next_multiple_of(512) - consumed;
    std::io::copy(&mut r.take(pad), &mut std::io::sink())?;
    Ok((runs, consumed + pad))
}

/// libarchive's `%XX` escapes in xattr names. Works on bytes: a `%` may be
/// followed by anything, including half of a multi-byte character.
pub(super) fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |c: u8| char::from(c).to_digit(16);
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}
