//! libFuzzer's entry point for the `json` target: see [`fuzz::json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::json::run(data));
