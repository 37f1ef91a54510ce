//! Personalities: called as squashfuse_ll, squashfuse, mksquashfs or
//! unsquashfs (a symlink to the binary), sqfuse takes that tool's command
//! line. Each parser turns the tool's arguments into the library's own
//! options; an option sqfuse does not support is an error naming it, never
//! a silent difference.

pub mod mksquashfs;
pub mod squashfuse;
pub mod unsquashfs;

use std::ffi::{CString, OsStr, OsString};
use std::path::Path;

/// The tool the binary was called as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    Sqfuse,
    SquashfuseLl,
    Squashfuse,
    Mksquashfs,
    Unsquashfs,
}

impl Personality {
    /// From argv[0]'s last component.
    pub fn of(argv0: &OsStr) -> Self {
        match Path::new(argv0).file_name().and_then(|n| n.to_str()) {
            Some("squashfuse_ll") => Self::SquashfuseLl,
            Some("squashfuse") => Self::Squashfuse,
            Some("mksquashfs") => Self::Mksquashfs,
            Some("unsquashfs") => Self::Unsquashfs,
            _ => Self::Sqfuse,
        }
    }
}

/// Arguments as strings (every option these tools take is ASCII); paths
/// stay `OsString`s.
fn text(a: &OsStr) -> Option<&str> {
    a.to_str()
}

/// A number or a user name, as mksquashfs's -force-uid takes.
pub fn uid_of(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let c = CString::new(s).map_err(|_| format!("bad user {s:?}"))?;
    // SAFETY: a valid C string; the result is read at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(format!("user {s:?} does not exist"));
    }
    Ok(unsafe { (*pw).pw_uid })
}

/// A number or a group name.
pub fn gid_of(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse() {
        return Ok(n);
    }
    let c = CString::new(s).map_err(|_| format!("bad group {s:?}"))?;
    // SAFETY: a valid C string; the result is read at once.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(format!("group {s:?} does not exist"));
    }
    Ok(unsafe { (*gr).gr_gid })
}

/// The next argument, the value of option `opt`.
fn value<'a>(opt: &str, it: &mut std::slice::Iter<'a, OsString>) -> Result<&'a OsString, String> {
    it.next()
        .ok_or_else(|| format!("option {opt} needs a value"))
}

fn value_str<'a>(opt: &str, it: &mut std::slice::Iter<'a, OsString>) -> Result<&'a str, String> {
    text(value(opt, it)?).ok_or_else(|| format!("option {opt}: the value is not UTF-8"))
}
