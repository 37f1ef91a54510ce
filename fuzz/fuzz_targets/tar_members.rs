#![no_main]
//! See sqfuse::fuzz (structure-aware: the input is a list of choices).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sqfuse::fuzz::run("tar_members", data);
});
