//! libFuzzer's entry point for the `jsonrpc` target: see [`fuzz::jsonrpc`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::jsonrpc::run(data));
