//! Transports: how endpoints are reached from outside the process.
//!
//! A transport only encodes and decodes; the business logic sits behind the endpoint and the
//! cross-cutting concerns in middleware, so the same endpoint can be served over several
//! transports at once.

#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(any(feature = "http-server", feature = "http-client"))]
pub mod http;
#[cfg(all(
    feature = "jsonrpc",
    any(feature = "http-server", feature = "http-client")
))]
pub mod jsonrpc;
#[cfg(feature = "thrift")]
pub mod thrift;
