//! Fuzz targets for every decoder of untrusted bytes in the workspace.
//!
//! Each module is one target: a function that takes whatever bytes a fuzzer makes up, feeds
//! them to the real code the way a client (or a backend) would, and panics if the answer breaks
//! a rule that holds for every input: no panic inside, no hang, an answer in the protocol's own
//! form, never much more than was sent.
//!
//! - [`json`]: kit-core's Go-compatible JSON decoder, into flat and nested types, with a round
//!   trip through the encoder for whatever decodes;
//! - [`http`]: a whole HTTP/1.1 connection into stringsvc1, through kit-core's accept loop, over
//!   a real socket;
//! - [`jsonrpc`]: a request body into addsvc's JSON-RPC server;
//! - [`grpc`]: a request body (gRPC framing and protobuf) into addsvc's gRPC services;
//! - [`thrift`]: a connection's bytes into addsvc's Thrift processor, in each protocol and
//!   framing.
//!
//! The binaries in `fuzz_targets/` hand these functions to libFuzzer (`scripts/fuzz` builds and
//! runs them); `tests/seeds.rs` runs them on the seed inputs in `seeds/`, and on every input a
//! fuzzer ever found a fault with, in each `cargo test`.

pub mod grpc;
pub mod http;
pub mod json;
pub mod jsonrpc;
pub mod thrift;

mod fixture;

/// A fuzz target: it takes any bytes, and panics only on a fault.
pub type Target = fn(&[u8]);

/// The targets by name, as `scripts/fuzz` and the seed directories name them.
pub const TARGETS: [(&str, Target); 5] = [
    ("json", json::run),
    ("http", http::run),
    ("jsonrpc", jsonrpc::run),
    ("grpc", grpc::run),
    ("thrift", thrift::run),
];
