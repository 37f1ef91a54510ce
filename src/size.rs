//! Byte counts as people write them: `4096`, `128K`, `1M`, `2G` (powers of
//! 1024). One parser for every size the tools take: block sizes, offsets,
//! the remote cache's bound.

/// `s` as a byte count: a decimal number, optionally followed by `K`, `M`
/// or `G` (either case). The error says what was wrong, in one line.
///
/// ```
/// assert_eq!(sqfuse::size::parse_size("128K"), Ok(128 << 10));
/// assert_eq!(sqfuse::size::parse_size("4096"), Ok(4096));
/// assert!(sqfuse::size::parse_size("1T").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    // The suffix is one ASCII byte, so cutting it off stays on a character
    // boundary.
    let (num, mul) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("bad size {s:?} (e.g. 128K, 1M, 4096)"))
}
