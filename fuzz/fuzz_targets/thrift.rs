//! libFuzzer's entry point for the `thrift` target: see [`fuzz::thrift`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::thrift::run(data));
