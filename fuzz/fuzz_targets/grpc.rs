//! libFuzzer's entry point for the `grpc` target: see [`fuzz::grpc`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::grpc::run(data));
