//! Endpoints over JSON-RPC 2.0 on HTTP: a [`Server`] that answers named methods with endpoints,
//! and a [`Client`] that calls one as an endpoint (Go kit's `transport/http/jsonrpc`).
//!
//! A call is an HTTP `POST` of `{"jsonrpc":"2.0","method":"sum","params":{"a":1,"b":2},"id":1}`,
//! answered `{"jsonrpc":"2.0","result":{"v":3},"id":1}`. Unlike Go kit's server, this one
//! follows the [specification](https://www.jsonrpc.org/specification) throughout:
//!
//! - the request's `id` is echoed on errors too (Go kit v0.10 answers `"id":null`);
//! - a body that is not JSON is `-32700`, a request that is not a request `-32600`, an unknown
//!   method `-32601`, params that do not decode `-32602` (Go kit: `-32000`);
//! - an endpoint's failure, and a business error a response carries ([`Failer`]), is an error
//!   object with its message and a code for its [kind](crate::error::ErrorKind) ([`code_for`]),
//!   where Go kit loses the business error and answers a result;
//! - batches (an array of calls, answered by an array) and notifications (calls without an `id`,
//!   not answered) work.
//!
//! For Go kit's clients, a missing or empty `jsonrpc` member is accepted (Go kit v0.10's client
//! sends `"jsonrpc":""`), parameter names match case-insensitively, and every answer is HTTP
//! 200 except those the HTTP layer owns: 405 for a method other than `POST`, 413 for a body over
//! the limit, 204 when only notifications were sent.
//!
//! [`Failer`]: crate::endpoint::Failer

#![cfg_attr(
    not(all(feature = "http-server", feature = "http-client")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "http-client")]
mod client;
mod error;
#[cfg(feature = "http-server")]
mod server;

#[cfg(feature = "http-client")]
pub use client::{Client, ClientError, decode_result};
pub use error::{
    ErrorObject, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    code_for, kind_of_code,
};
#[cfg(feature = "http-server")]
pub use server::{DEFAULT_MAX_BATCH, Server, decode_params, encode_result, encode_result_or_error};
