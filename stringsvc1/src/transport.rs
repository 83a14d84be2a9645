//! The HTTP transport: which routes reach which endpoint, and how bodies are read and written.

use axum::Router;
use axum::routing::{MethodRouter, get_service};
use kit_core::error::StatusCoder;
use kit_core::transport::http::{
    Response, Server, decode_json_request, encode_error, encode_json_response, json_response,
    method_not_allowed, not_found,
};

use crate::endpoint::{UppercaseResponse, make_count_endpoint, make_uppercase_endpoint};
use crate::service::{ServiceError, StringService};

// ANCHOR: app
/// The service's HTTP API: `POST /uppercase` and `POST /count`, with JSON bodies.
///
/// `GET` with a JSON body works too, because that is how Go kit's own proxy (the tutorial's third
/// stage) calls an instance; any other method gets 405, and an unknown path 404, both with a JSON
/// error.
pub fn app<S>(svc: S) -> Router
where
    S: StringService + Clone + Send + Sync + 'static,
{
    let uppercase = Server::new(
        make_uppercase_endpoint(svc.clone()),
        decode_json_request,
        encode_json_response,
    )
    .error_encoder(encode_uppercase_error);
    let count = Server::new(
        make_count_endpoint(svc),
        decode_json_request,
        encode_json_response,
    );
    Router::new()
        .route("/uppercase", get_or_post(uppercase))
        .route("/count", get_or_post(count))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
// ANCHOR_END: app

/// Answers a failed `uppercase` call. A service error (a proxy whose instances could not
/// answer) keeps the response's shape, `{"v":"","err":"<why>"}`, so that clients that read `err`
/// see why, with the error's status (503, or 504 for a deadline); anything else, such as a body
/// that is not JSON, gets kit-core's `{"error":"<why>"}`.
pub fn encode_uppercase_error(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Response {
    match error.downcast_ref::<ServiceError>() {
        Some(err) => {
            let body = UppercaseResponse {
                v: String::new(),
                err: Some(err.to_string()),
            };
            json_response(err.status_code(), &body).unwrap_or_else(|_| encode_error(error))
        }
        None => encode_error(error),
    }
}

/// Routes `GET` (and so `HEAD`) and `POST` to `server`.
fn get_or_post<Req, Resp>(server: Server<Req, Resp>) -> MethodRouter
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    get_service(server.clone()).post_service(server)
}
