//! Permission changes as mksquashfs takes them (`-root-mode`,
//! `-force-file-mode`, `-default-mode`, ...): an octal mode, or chmod's
//! symbolic clauses, `[ugoa]*([+-=]([rwxXst]*|[ugo]))+`, comma-separated.
//! A clause without `ugoa` acts on all three (with no umask).

/// One parsed change: applied to an entry's mode, it gives the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeChange {
    /// An octal mode: the permission bits become these.
    Octal(u16),
    /// Symbolic clauses, applied in order.
    Symbolic(Vec<Clause>),
}

/// `who op perms`: one operation of a symbolic clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clause {
    /// The bits `who` covers (u: 04700, g: 02070, o: 01007, a: 07777;
    /// none given: all, as `a`).
    mask: u16,
    op: Op,
    perms: Perms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// `rwxst` bits (already within the mask), and whether `X` was given.
    Bits { bits: u16, x_if_exec: bool },
    /// `u`, `g` or `o`: copy that class's bits.
    Copy(u8),
}

impl std::str::FromStr for ModeChange {
    type Err = String;

    /// Parses an octal mode (at most 07777) or symbolic clauses; the error
    /// says what was expected where.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            let n = u16::from_str_radix(s, 8)
                .ok()
                .filter(|&n| n <= 0o7777)
                .ok_or_else(|| format!("mode {s:?} is not an octal mode up to 7777"))?;
            return Ok(ModeChange::Octal(n));
        }
        let mut clauses = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            parse_clause(part, &mut clauses).map_err(|e| format!("mode {s:?}: {e}"))?;
        }
        if clauses.is_empty() {
            return Err(format!("mode {s:?} has no clause"));
        }
        Ok(ModeChange::Symbolic(clauses))
    }
}

fn parse_clause(part: &str, out: &mut Vec<Clause>) -> Result<(), String> {
    let b = part.as_bytes();
    let mut i = 0;
    let mut mask = 0u16;
    while let Some(&c) = b.get(i) {
        mask |= match c {
            b'u' => 0o4700,
            b'g' => 0o2070,
            b'o' => 0o1007,
            b'a' => 0o7777,
            _ => break,
        };
        i += 1;
    }
    if i == 0 {
        mask = 0o7777;
    }
    if !matches!(b.get(i), Some(b'+' | b'-' | b'=')) {
        return Err(match b.get(i) {
            None => "expected who (ugoa) or an operator (+-=), found the end".into(),
            Some(&c) => format!(
                "expected who (ugoa) or an operator (+-=), found {:?}",
                char::from(c)
            ),
        });
    }
    while let Some(&c) = b.get(i) {
        let op = match c {
            b'+' => Op::Add,
            b'-' => Op::Remove,
            b'=' => Op::Set,
            _ => unreachable!("the loop stops at the next operator or the end"),
        };
        i += 1;
        let perms = match b.get(i) {
            Some(&who @ (b'u' | b'g' | b'o')) => {
                i += 1;
                Perms::Copy(who)
            }
            _ => {
                let (mut bits, mut x_if_exec) = (0u16, false);
                while let Some(&p) = b.get(i) {
                    match p {
                        b'r' => bits |= 0o444,
                        b'w' => bits |= 0o222,
                        b'x' => bits |= 0o111,
                        b's' => bits |= 0o6000,
                        b't' => bits |= 0o1000,
                        b'X' => x_if_exec = true,
                        b'+' | b'-' | b'=' => break,
                        _ => {
                            return Err(format!(
                                "expected permissions (rwxXst), found {:?}",
                                char::from(p)
                            ))
                        }
                    }
                    i += 1;
                }
                Perms::Bits {
                    bits: bits & mask,
                    x_if_exec,
                }
            }
        };
        if let Some(&c) = b.get(i) {
            if !matches!(c, b'+' | b'-' | b'=') {
                return Err(format!(
                    "expected an operator (+-=) after {}, found {:?}",
                    &part[..i],
                    char::from(c)
                ));
            }
        }
        out.push(Clause { mask, op, perms });
    }
    Ok(())
}

impl ModeChange {
    /// The permission bits (07777) `perm` becomes, for a directory if
    /// `is_dir` (where `X` always counts).
    pub fn apply(&self, perm: u16, is_dir: bool) -> u16 {
        let clauses = match self {
            ModeChange::Octal(m) => return *m,
            ModeChange::Symbolic(c) => c,
        };
        let mut mode = perm & 0o7777;
        for c in clauses {
            let bits = match c.perms {
                Perms::Copy(who) => {
                    let class = match who {
                        b'u' => (mode >> 6) & 7,
                        b'g' => (mode >> 3) & 7,
                        _ => mode & 7,
                    };
                    ((class << 6) | (class << 3) | class) & c.mask
                }
                Perms::Bits { bits, x_if_exec } if x_if_exec && (is_dir || mode & 0o111 != 0) => {
                    bits | (0o111 & c.mask)
                }
                Perms::Bits { bits, .. } => bits,
            };
            mode = match c.op {
                Op::Set => (mode & !c.mask) | bits,
                Op::Add => mode | bits,
                Op::Remove => mode & !bits,
            };
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> ModeChange {
        s.parse().unwrap()
    }

    #[test]
    fn octal_and_symbolic_modes_as_chmod_applies_them() {
        assert_eq!(m("0755").apply(0o644, false), 0o755);
        assert_eq!(m("go-w,u+rw").apply(0o666, false), 0o644);
        assert_eq!(m("a=rX").apply(0o700, true), 0o555);
        assert_eq!(
            m("a=rX").apply(0o600, false),
            0o444,
            "X only where x is set"
        );
        assert_eq!(m("a=rX").apply(0o700, false), 0o555);
        assert_eq!(m("ugo=rwx").apply(0, true), 0o777);
        assert_eq!(m("g=u").apply(0o750, false), 0o770);
        assert_eq!(m("u+s,+t").apply(0o755, false), 0o5755);
        assert_eq!(
            m("=r").apply(0o777, false),
            0o444,
            "no who: all three, no umask"
        );
        assert_eq!(m("u=rwx,go=rx").apply(0, true), 0o755);
    }

    #[test]
    fn bad_modes_say_what_was_expected() {
        for bad in ["8", "17777", "u", "u+q", "", ",", "z+r", "u+r*"] {
            assert!(bad.parse::<ModeChange>().is_err(), "{bad:?}");
        }
        let e = "u+q".parse::<ModeChange>().unwrap_err();
        assert_eq!(e, "mode \"u+q\": expected permissions (rwxXst), found 'q'");
    }
}
