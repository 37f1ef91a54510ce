#![no_main]
//! See sqfuse::fuzz::inode for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sqfuse::fuzz::inode(data));
