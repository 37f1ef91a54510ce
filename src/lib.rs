#![warn(missing_docs)]
//! sqfuse: read, mount and create SquashFS 4.0 images, exactly as the Linux
//! kernel and squashfs-tools read and write them.
//!
//! The library is the format, the reader, the layered view, the packer, the
//! checker and dm-verity; with default features off it pulls in no command
//! line, FUSE, async, HTTP or progress-bar crates.
//!
//! ```no_run
//! use sqfuse::pack::{pack, PackOptions};
//! use sqfuse::reader::Step;
//! use sqfuse::{Image, OpenOptions};
//!
//! // A directory into an image (zstd, 128 KiB blocks, every core; the same
//! // bytes for any thread count).
//! pack(&["site".into()], "site.sqfs".as_ref(), &PackOptions::default())?;
//!
//! // Open it (a file, a block device; `OpenOptions::offset` finds an image
//! // inside an AppImage or SIF file), list it, read a file.
//! let img = Image::open("site.sqfs".as_ref(), &OpenOptions::default())?;
//! for step in img.walk(&img.root()?, img.root_ref())? {
//!     if let Step::Entry(e) = step? {
//!         println!("{}", String::from_utf8_lossy(&e.path));
//!     }
//! }
//! let (inode, _) = img.lookup_path("index.html")?;
//! let file = img.open_file(&inode)?;
//! let (head, _) = img.read_vec(&file, 0, 512)?;
//! # let _ = head;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layers, bottom up:
//! - [`mod@format`]: every on-disk structure, decoded and encoded side by
//!   side (superblock, compressors and their options, metadata blocks,
//!   inodes, directory listings and indexes, ids, lookup tables, xattrs,
//!   block words, the dm-verity superblock); no I/O, no threads.
//! - [`reader`]: an [`Image`] over a byte source (a file or block device
//!   read with `pread`, a memory map, a buffer, any
//!   [`format::ByteSource`]; http(s) and s3 URLs with the `remote`
//!   feature) with sharded caches, path lookup through the directory
//!   index, [`reader::FileReader`] for file data, one loop-safe tree walk,
//!   and block-by-block dm-verity checks ([`reader::verity`]).
//! - [`view`]: what a mount shows, over readers: one image, or several
//!   merged as overlayfs merges read-only layers (with [`whiteout`]'s
//!   conventions).
//! - [`pack`]: directories, tar streams and OCI images into an image
//!   ([`pack::pack`], [`pack::pack_source`]); [`check`] reads everything an
//!   image holds and reports each problem.
//!
//! With the `mount` feature, `sqfuse::mount` serves a view through FUSE;
//! with `cli`, `sqfuse::cli` holds the commands the `sqfuse` binary runs.
//! [`fuzz`] holds the fuzz targets' entry points, shared with the tests
//! that replay their corpus.

pub mod check;
// The binary's commands and personalities: public for the binary and the
// tests, not library API.
// Its doc comments are clap's help texts (`[:TAG]` is not a link).
#[cfg(feature = "cli")]
#[doc(hidden)]
#[allow(missing_docs, rustdoc::broken_intra_doc_links)]
pub mod cli;
pub mod error;
pub mod format;
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "mount")]
pub mod mount;
pub(crate) mod oci_spec;
pub mod open;
pub mod pack;
pub mod pattern;
pub mod profile;
pub mod reader;
#[cfg(feature = "registry")]
pub mod registry;
pub mod size;
pub mod users;
pub mod view;
pub mod whiteout;

pub use error::{Error, ErrorKind, Result};
pub use reader::{Image, OpenOptions};
