#![no_main]
//! See sqfuse::fuzz::table for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sqfuse::fuzz::table(data));
