//! The transports: the same [`Set`](crate::endpoint::Set) of endpoints served over HTTP/JSON,
//! gRPC, JSON-RPC and Thrift, each on its own listener. Each module only encodes and decodes;
//! the clients of the same transports are in the client package.

pub mod grpc;
pub mod http;
pub mod jsonrpc;
pub mod thrift;
