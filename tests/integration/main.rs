//! Integration tests: the library and the `sqfuse` binary against real
//! images (the shared corpora and images mksquashfs builds here).

mod build_lines; // build systems' mksquashfs lines (OpenWrt, NixOS, Guix appends, snapd deltas...) against squashfs-tools 4.7.5
mod cli; // command-line errors and output of each inspection command
mod corpus; // every image in tests/corpora/images reads and matches its expectations
mod fuzz_corpus; // the fuzz targets' seeds and past crash inputs, replayed without a fuzzer
mod hostile_input; // tar, OCI, directory and argument input that crashed or grew without bound: clean errors, bounded memory
mod malformed; // hostile images: clean errors, no panic, no writes outside DEST
mod messages; // first-hour messages by exact text: one line, said once, with what to do; summaries; the progress display
mod mksquashfs; // the fixture tree through mksquashfs with every option, back out, compared
mod mutation; // thousands of corrupted copies of valid images: zero panics, no hangs
mod oci_import; // pack oci: against umoci unpack, every layer compression, tampered blobs, --whiteouts
mod order; // pack --order and the -sort personality: data laid out by profile or priority, as mksquashfs -sort does
mod pack; // sqfuse pack against the kernel, unsquashfs and our reader; determinism; errors
mod personality;
mod push; // sqfuse push to a real registry: skopeo reads back the same bytes, order, media type and verity annotations; blobs not sent twice; token auth // sqfuse as mksquashfs/unsquashfs vs the real squashfs-tools, same command lines
mod remote; // images over HTTP(S) from a real nginx: same answers, bounded transfer, offline cache, TLS, no-Range servers, changed objects
mod verity; // dm-verity trees against veritysetup's, at offsets, and tampering refused where it lands

#[path = "../common/mod.rs"]
mod common;
pub use common::*;
