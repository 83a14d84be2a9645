//! JSON answers for requests that match no endpoint.
//!
//! axum answers an unknown path with an empty 404 and a known path with the wrong method with an
//! empty 405. A client of a JSON API should get JSON either way, so these handlers answer as the
//! endpoints' errors do, with `{"error":"<message>"}`:
//!
//! ```
//! use axum::{Router, routing::post};
//! use kit_core::transport::http::{method_not_allowed, not_found};
//!
//! let app: Router = Router::new()
//!     .route("/ping", post(|| async { "pong" }))
//!     .fallback(not_found)
//!     .method_not_allowed_fallback(method_not_allowed);
//! ```
//!
//! axum still sets the `Allow` header on a 405.

use super::Response;
use super::encode::error_response;
use http::{Method, StatusCode, Uri};

/// Answers 404 with `{"error":"no route for <METHOD> <path>"}`; use it as the router's fallback.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format_args!("no route for {method} {}", uri.path()),
    )
}

/// Answers 405 with `{"error":"method <METHOD> is not allowed on <path>"}`; use it as the
/// router's method-not-allowed fallback.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &format_args!("method {method} is not allowed on {}", uri.path()),
    )
}
