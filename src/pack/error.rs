//! The packer's one error type: what failed, on which path, and the
//! underlying error kept as the source (printed once, by whoever prints the
//! chain), as tar-rs does.

use crate::error::shown_path;
use std::path::{Path, PathBuf};

/// Why a pack failed. An error names the path concerned; the OS error is its source.
#[derive(Debug)]
pub enum PackError {
    /// Bad options or arguments.
    Usage(String),
    /// The file to write exists and [`super::PackOptions::force`] is off.
    Exists(PathBuf),
    /// An operation on a source path (or the tar stream) failed.
    Io {
        /// The source path (or the archive).
        path: PathBuf,
        /// What was being done: "read", "list", "stat", ...
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// A source entry (a file, a tar member) that cannot be stored as it is.
    Entry {
        /// The entry's path.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Writing the image failed; `path` is the IMAGE asked for (never the
    /// temporary file it is written to).
    Output {
        /// The image asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Something the format cannot hold (too many ids, say), or an
    /// internal inconsistency caught before it could be written.
    Format(crate::Error),
    /// The stop flag was raised; nothing was written.
    Interrupted,
}

impl PackError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        PackError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
    pub(crate) fn entry(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        PackError::Entry {
            path: path.into(),
            what: what.into(),
        }
    }
    pub(crate) fn internal(what: impl Into<String>) -> Self {
        PackError::Format(crate::Error::invalid(format!(
            "internal error: {}",
            what.into()
        )))
    }
}

impl From<crate::Error> for PackError {
    fn from(e: crate::Error) -> Self {
        PackError::Format(e)
    }
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackError::Usage(m) => f.write_str(m),
            PackError::Exists(p) => write!(f, "{} exists", shown_path(p)),
            PackError::Io { path, action, .. } => write!(f, "cannot {action} {}", shown_path(path)),
            PackError::Entry { path, what } => write!(f, "{}: {what}", shown_path(path)),
            PackError::Output { path, .. } => write!(f, "writing {}", shown_path(path)),
            PackError::Format(e) => e.fmt(f),
            PackError::Interrupted => f.write_str("interrupted; no image written"),
        }
    }
}

impl std::error::Error for PackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PackError::Io { source, .. } | PackError::Output { source, .. } => Some(source),
            PackError::Format(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

/// A pull's failure, as the packer reports it.
#[cfg(feature = "registry")]
impl From<crate::registry::RegistryError> for PackError {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::RegistryError;
        match e {
            RegistryError::At { name, what } => PackError::Entry {
                path: PathBuf::from(name),
                what,
            },
            RegistryError::Io {
                path,
                action,
                source,
            } => PackError::Io {
                path,
                action,
                source,
            },
            RegistryError::Image(e) => PackError::Format(e),
            RegistryError::Usage(m) => PackError::Usage(m),
        }
    }
}
