//! JSON-RPC 2.0 over HTTP: methods `sum` and `concat`, params by name.

use axum::Router;
use kit_core::log::Logger;
use kit_core::transport::jsonrpc::{ErrorObject, Server, decode_params, encode_result_or_error};

use crate::endpoint::Set;

// ANCHOR: app
/// The JSON-RPC API, on every path as in Go kit: `{"jsonrpc":"2.0","method":"sum",
/// "params":{"a":1,"b":2},"id":1}` answers `{"jsonrpc":"2.0","result":{"v":3},"id":1}`.
///
/// A business error is an error object with its message (Go kit answers a result of zero and
/// loses it): `{"code":-32003,"message":"can't sum two zeroes"}`, the code saying its kind
/// (`-32011` for out of range); a rate limiter's refusal is `-32008`, an open breaker `-32014`.
pub fn app(set: &Set, logger: &Logger) -> Router {
    let logger = logger.clone();
    Server::new()
        .method(
            "sum",
            set.sum.clone(),
            decode_params,
            encode_result_or_error,
        )
        .method(
            "concat",
            set.concat.clone(),
            decode_params,
            encode_result_or_error,
        )
        .error_handler(move |error: &ErrorObject| {
            logger.in_scope(
                || tracing::warn!(transport = "JSONRPC", code = error.code, err = %error),
            );
        })
        .router()
}
// ANCHOR_END: app
