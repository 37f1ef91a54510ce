//! sqfuse: read, mount and create SquashFS 4.0 images.
//!
//! Layers, bottom up: [`format`] (on-disk structures, compressors, metadata
//! reader, tables; no threads, no FUSE), [`reader`] (a memory-mapped image
//! with caches, path lookup and file reads), and the clients built on it:
//! the inspection commands in [`cli`].

pub mod cli;
pub mod error;
pub mod format;
pub mod fuzz;
pub mod mount;
pub mod pack;
pub mod reader;

pub use error::{Error, ErrorKind, Result};
pub use reader::{Image, OpenOptions};
