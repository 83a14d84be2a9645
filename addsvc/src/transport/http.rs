//! HTTP/JSON: `/sum` and `/concat`, bodies and answers as Go kit's.

use axum::Router;
use axum::routing::{MethodRouter, get_service};
use kit_core::log::Logger;
use kit_core::transport::http::{
    Server, decode_json_request, encode_json_response_or_error, method_not_allowed, not_found,
};

use crate::endpoint::Set;

// ANCHOR: app
/// The HTTP API: `POST /sum` with `{"a":1,"b":2}` answers `{"v":3}`, `POST /concat` with
/// `{"a":"1","b":"2"}` answers `{"v":"12"}` (`GET` with a body works too, as in Go kit).
///
/// A business error is answered 400 with `{"error":"can't sum two zeroes"}`; a body that is not
/// the JSON expected, 400; over 1 MiB, 413; a refusal of the rate limiter, 429; an open circuit
/// breaker, 503. Every answer is JSON. Errors that never reach an endpoint (a bad body) are
/// logged through `logger`, as Go kit's `ServerErrorHandler` does.
pub fn app(set: &Set, logger: &Logger) -> Router {
    routes("", set, logger)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The two routes under `prefix` (`/addsvc`: `/addsvc/sum`, `/addsvc/concat`), without an
/// answer for other paths: for a gateway that serves them among its own routes. Routed at their
/// full paths rather than nested, so that what a request's span and log record is the path the
/// client asked for.
pub fn routes(prefix: &str, set: &Set, logger: &Logger) -> Router {
    let log_error = {
        let logger = logger.clone();
        move |err: &kit_core::BoxError| {
            logger.in_scope(|| tracing::warn!(transport = "HTTP", err = %err));
        }
    };
    let sum = Server::new(
        set.sum.clone(),
        decode_json_request,
        encode_json_response_or_error,
    )
    .name("sum")
    .error_handler(log_error.clone());
    let concat = Server::new(
        set.concat.clone(),
        decode_json_request,
        encode_json_response_or_error,
    )
    .name("concat")
    .error_handler(log_error);
    Router::new()
        .route(&format!("{prefix}/sum"), get_or_post(sum))
        .route(&format!("{prefix}/concat"), get_or_post(concat))
}
// ANCHOR_END: app

fn get_or_post<Req, Resp>(server: Server<Req, Resp>) -> MethodRouter
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    get_service(server.clone()).post_service(server)
}
