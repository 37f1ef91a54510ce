//! Personalities: called as squashfuse_ll, squashfuse, mksquashfs or
//! unsquashfs (a symlink to the binary), sqfuse takes that tool's command
//! line. Each parser turns the tool's arguments into the library's own
//! options; an option sqfuse does not support is an error naming it, never
//! a silent difference.

pub mod gensquashfs;
pub mod mksquashfs;
mod sqfs2tar;
mod sqfs_ng;
pub mod sqfstar;
pub mod squashfuse;
pub mod tar2sqfs;
pub mod unsquashfs;

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// A tool sqfuse stands in for: the name it answers to, and its main.
pub struct Personality {
    /// The name (argv[0]'s last component) it answers to.
    pub name: &'static str,
    /// Runs the tool's command line (the arguments after argv[0]); `prog`
    /// is the name called by, for messages.
    pub main: fn(prog: &str, args: &[OsString]) -> std::process::ExitCode,
}

/// Every personality, by the name it answers to.
pub const PERSONALITIES: &[Personality] = &[
    Personality {
        name: "squashfuse_ll",
        main: squashfuse::main,
    },
    Personality {
        name: "squashfuse",
        main: squashfuse::main,
    },
    Personality {
        name: "mksquashfs",
        main: mksquashfs::main,
    },
    Personality {
        name: "unsquashfs",
        main: unsquashfs::main,
    },
    Personality {
        name: "sqfstar",
        main: sqfstar::main,
    },
    Personality {
        name: "tar2sqfs",
        main: tar2sqfs::main,
    },
    Personality {
        name: "gensquashfs",
        main: gensquashfs::main,
    },
    Personality {
        name: "sqfs2tar",
        main: sqfs2tar::main,
    },
];

/// The personality `argv0` calls for (None: sqfuse itself).
pub fn called_as(argv0: &OsStr) -> Option<&'static Personality> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    PERSONALITIES.iter().find(|p| p.name == name)
}

/// Arguments as strings (every option these tools take is ASCII); paths
/// stay `OsString`s.
fn text(a: &OsStr) -> Option<&str> {
    a.to_str()
}

/// A block size as mksquashfs and squashfs-tools-ng take it (`128K`,
/// `1M`, bytes): a power of two from 4K to 1M.
fn block_size(opt: &str, v: &str) -> Result<u32, String> {
    crate::size::parse_size(v)
        .ok()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| crate::format::block::valid_block_size(n))
        .ok_or_else(|| format!("{opt} {v}: not a power of two from 4K to 1M"))
}

/// A compressor by the name mksquashfs and squashfs-tools-ng give it
/// (lzma, legacy, is read but not written).
fn compressor_named(
    opt: &str,
    name: &str,
) -> Result<crate::format::compressor::Compressor, String> {
    use crate::format::compressor::Compressor;
    Ok(match name {
        "gzip" => Compressor::Gzip,
        "xz" => Compressor::Xz,
        "lz4" => Compressor::Lz4,
        "zstd" => Compressor::Zstd,
        "lzo" => Compressor::Lzo,
        "lzma" => {
            return Err(format!(
                "{opt} lzma: legacy lzma images can be read, not written; use xz"
            ))
        }
        c => {
            return Err(format!(
                "{opt} {c}: unknown compressor (gzip, xz, lz4, zstd, lzo)"
            ))
        }
    })
}

/// A number or a user name, as mksquashfs's -force-uid takes.
pub fn uid_of(s: &str) -> Result<u32, String> {
    s.parse()
        .ok()
        .or_else(|| crate::users::uid_by_name(s))
        .ok_or_else(|| format!("user {s:?} does not exist"))
}

/// A number or a group name.
pub fn gid_of(s: &str) -> Result<u32, String> {
    s.parse()
        .ok()
        .or_else(|| crate::users::gid_by_name(s))
        .ok_or_else(|| format!("group {s:?} does not exist"))
}

/// The next argument, the value of option `opt`.
fn value<'a>(opt: &str, it: &mut std::slice::Iter<'a, OsString>) -> Result<&'a OsString, String> {
    it.next()
        .ok_or_else(|| format!("option {opt} needs a value"))
}

fn value_str<'a>(opt: &str, it: &mut std::slice::Iter<'a, OsString>) -> Result<&'a str, String> {
    text(value(opt, it)?).ok_or_else(|| format!("option {opt}: the value is not UTF-8"))
}
