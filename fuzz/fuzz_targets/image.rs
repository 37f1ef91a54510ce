#![no_main]
//! See sqfuse::fuzz::image for what the input means.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sqfuse::fuzz::image(data));
