//! Writing responses: the default JSON encoders and the error encoder.

use std::error::Error as StdError;

use axum::body::Body;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use super::Response;
use super::status::{status_code, status_for};
use crate::endpoint::Failer;
use crate::error::BoxError;
use crate::json;

/// Encodes a response as JSON with status 200 (Go kit's `EncodeJSONResponse`).
///
/// The body ends with a newline, as Go's `json.Encoder` writes it, and `Content-Type` is
/// `application/json`.
pub fn encode_json_response<T: Serialize>(response: T) -> Result<Response, BoxError> {
    Ok(json_response(StatusCode::OK, &response)?)
}

/// Like [`encode_json_response`], but a response that [failed](Failer) is answered as that
/// error: with the status of its [kind](crate::error::Classify) and the [`encode_error`] body
/// (Go kit's addsvc pattern).
pub fn encode_json_response_or_error<T: Serialize + Failer>(
    response: T,
) -> Result<Response, BoxError> {
    match response.failed() {
        Some(error) => Ok(error_response(status_for(error.kind()), error)),
        None => encode_json_response(response),
    }
}

/// The default error encoder: `{"error":"<message>"}` with the status of the error's kind.
///
/// The status comes from [`status_code`]: 500 for an error that does not say its kind.
pub fn encode_error(error: &(dyn StdError + Send + Sync + 'static)) -> Response {
    error_response(status_code(error), error)
}

/// `{"error":"<message>"}` with `status`.
pub(crate) fn error_response(status: StatusCode, error: &dyn std::fmt::Display) -> Response {
    #[derive(Serialize)]
    struct ErrorBody {
        error: String,
    }
    let body = ErrorBody {
        error: error.to_string(),
    };
    json_response(status, &body).unwrap_or_else(|_| {
        // A struct holding one string always serializes; this arm only keeps the encoder total.
        let mut response = Response::new(Body::from("{\"error\":\"internal error\"}\n"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

/// A JSON response with `status`: Go-compatible bytes, a trailing newline,
/// `Content-Type: application/json`. For encoders that choose their own status.
pub fn json_response<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
) -> Result<Response, serde_json::Error> {
    let mut body = json::to_vec(value)?;
    body.push(b'\n');
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
