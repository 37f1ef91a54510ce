#![no_main]
//! See sqfuse::fuzz::xattr for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sqfuse::fuzz::xattr(data));
