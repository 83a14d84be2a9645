//! libFuzzer's entry point for the `http` target: see [`fuzz::http`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::http::run(data));
