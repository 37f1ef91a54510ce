//! The registry client's one error type: what it concerns (a reference or
//! a local file) and what went wrong, the OS error kept as the source.

use crate::error::shown_path;
use std::path::{Path, PathBuf};

/// Why a pull, push or registry mount failed.
#[derive(Debug)]
pub enum RegistryError {
    /// About a reference, the registry's answers or an image to push:
    /// `name: what`.
    At {
        /// The reference as the user wrote it, or a file's path.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// A local file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done: "open", "read", "write", ...
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// An image to push that cannot be read as one.
    Image(crate::Error),
    /// Bad arguments.
    Usage(String),
}

impl RegistryError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::At { name, what } => write!(f, "{name}: {what}"),
            RegistryError::Io { path, action, .. } => {
                write!(f, "cannot {action} {}", shown_path(path))
            }
            RegistryError::Image(e) => e.fmt(f),
            RegistryError::Usage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Io { source, .. } => Some(source),
            RegistryError::Image(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}
