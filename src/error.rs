//! The library's one error type: what went wrong, where in the image, and
//! a sentence saying what was found.

use std::fmt;

/// Broad classes of failure, for callers that map errors to exit codes or
/// errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading the image file itself failed.
    Io,
    /// The bytes on disk break the format's rules.
    Corrupt,
    /// Valid SquashFS, but something this build cannot read.
    Unsupported,
    /// A path or name asked for does not exist.
    NotFound,
    /// The caller asked for something that does not fit the object
    /// (a file read on a directory, say).
    Invalid,
}

/// An error with the byte offset in the image (relative to the start of the
/// SquashFS superblock) where it was found, when there is one.
#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub offset: Option<u64>,
    /// The path inside the image the error concerns, when known.
    pub path: Option<String>,
    pub what: String,
    pub source: Option<std::io::Error>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Corrupt,
            offset: Some(offset),
            path: None,
            what: what.into(),
            source: None,
        }
    }
    pub fn unsupported(offset: Option<u64>, what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Unsupported,
            offset,
            path: None,
            what: what.into(),
            source: None,
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::NotFound,
            offset: None,
            path: None,
            what: what.into(),
            source: None,
        }
    }
    pub fn invalid(what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Invalid,
            offset: None,
            path: None,
            what: what.into(),
            source: None,
        }
    }
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            offset: None,
            path: None,
            what: what.into(),
            source: Some(source),
        }
    }
    /// The error, saying which path inside the image it concerns (kept if
    /// one was named already).
    pub fn at_path(self, path: impl Into<String>) -> Self {
        Error {
            path: self.path.or_else(|| Some(path.into())),
            ..self
        }
    }

    /// The errno a filesystem request that hit this error should fail with.
    pub fn errno(&self) -> i32 {
        match self.kind {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::Invalid => libc::EINVAL,
            ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Unsupported => libc::EIO,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Corrupt => write!(f, "corrupt image")?,
            ErrorKind::Unsupported => write!(f, "unsupported image")?,
            ErrorKind::Io => write!(f, "I/O error")?,
            ErrorKind::NotFound => write!(f, "not found")?,
            ErrorKind::Invalid => write!(f, "invalid request")?,
        }
        if let Some(off) = self.offset {
            write!(f, " at offset {off} (0x{off:x})")?;
        }
        if let Some(p) = &self.path {
            write!(f, ": {p}")?;
        }
        // The source is not repeated here: it is the error's source(), and
        // whoever prints the error prints the chain once (see [`Report`]).
        write!(f, ": {}", self.what)
    }
}

/// An error and every source below it, joined by ": " (what anyhow's
/// `{:#}` prints), for printing an error outside `main`.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// An error and its sources on one line, each source added unless the
/// text already quotes it (HTTP clients nest the same message).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let c_s = c.to_string();
        if !s.contains(&c_s) {
            s.push_str(": ");
            s.push_str(&c_s);
        }
        cur = c.source();
    }
    s
}
