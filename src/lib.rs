//! sqfuse: read, mount and create SquashFS 4.0 images.
//!
//! Layers, bottom up:
//! - [`format`]: every on-disk structure, decoded and encoded side by side
//!   (superblock, compressors and their options, metadata blocks, inodes,
//!   directory listings and indexes, ids, lookup tables, xattrs, block
//!   words); no I/O, no threads.
//! - [`reader`]: an [`Image`] over a byte source (a file or block device
//!   read with `pread`, a memory map, a buffer) with sharded caches, path
//!   lookup through the directory index, [`reader::FileReader`] for file
//!   data and one loop-safe tree walk.
//! - [`view`]: what a mount shows, over readers: one image, or several
//!   merged as overlayfs merges read-only layers (with [`whiteout`]'s
//!   conventions).
//! - The clients of those: [`cli`] (info, ls, cat, extract, check),
//!   [`mount`] (FUSE, over a view) and [`pack`] (gathering sources, numbering, data
//!   blocks and ordering; every byte of metadata is written by `format`).
//!
//! [`fuzz`] holds the fuzz targets' entry points, shared with the tests
//! that replay their corpus.

pub mod check;
#[cfg(feature = "cli")]
pub mod cli;
pub mod error;
pub mod format;
pub mod fuzz;
#[cfg(feature = "mount")]
pub mod mount;
pub mod pack;
pub mod profile;
pub mod reader;
pub mod size;
pub mod view;
pub mod whiteout;

pub use error::{Error, ErrorKind, Result};
pub use reader::{Image, OpenOptions};
