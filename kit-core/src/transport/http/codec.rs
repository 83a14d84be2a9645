//! The default JSON codecs of the HTTP server, and its error encoder.

use std::error::Error as StdError;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Request, Response};
use crate::BoxError;
use crate::endpoint::Failer;
use crate::error::status_code;
use crate::json;

/// The request body limit of a [`Server`](super::Server), as the server put it in the request's
/// extensions; decoders read it to say what the limit was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Why a request could not be decoded: answered with 400 Bad Request, 413 when the body is too
/// large, 408 when it is too slow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is larger than the server accepts.
    #[error("request body is too large: the limit is {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body did not arrive, or could not be decoded, within the server's read timeout.
    #[error("request body was not received within {}s", timeout.as_secs_f64())]
    Timeout {
        /// The read timeout.
        timeout: std::time::Duration,
    },
    /// The body could not be read from the connection.
    #[error("cannot read request body: {0}")]
    Read(#[source] BoxError),
    /// The body is not the JSON the endpoint expects.
    #[error("invalid request body: {0}")]
    Json(#[from] json::Error),
}

impl DecodeError {
    /// 413 for a body over the limit, 408 for a body too slow to arrive, 400 for everything
    /// else.
    pub fn status_code(&self) -> StatusCode {
        match self {
            DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            DecodeError::Read(_) | DecodeError::Json(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads the whole request body, within the server's [`BodyLimit`].
pub async fn read_body(request: Request) -> Result<Bytes, DecodeError> {
    let limit = request.extensions().get::<BodyLimit>().copied();
    match request.into_body().collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            let err = err.into_inner();
            let mut cause: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
            let mut too_large = false;
            while let Some(error) = cause {
                too_large |= error.is::<http_body_util::LengthLimitError>();
                cause = error.source();
            }
            match (too_large, limit) {
                (true, Some(BodyLimit(limit))) => Err(DecodeError::TooLarge { limit }),
                _ => Err(DecodeError::Read(err)),
            }
        }
    }
}

/// Decodes a JSON request body into `T` (Go kit's JSON request decoders).
///
/// The body's `Content-Type` is not checked, as in Go kit, so `curl -d` works as is. Field names
/// match case-insensitively and `null` is a zero value (see [`json`](crate::json)); an empty body,
/// malformed JSON, a wrong type or invalid UTF-8 is a [`DecodeError`] that names the problem.
pub async fn decode_json_request<T: DeserializeOwned>(request: Request) -> Result<T, BoxError> {
    let body = read_body(request).await?;
    Ok(json::from_slice(&body).map_err(DecodeError::from)?)
}

/// Encodes a response as JSON with status 200 (Go kit's `EncodeJSONResponse`).
///
/// The body ends with a newline, as Go's `json.Encoder` writes it, and `Content-Type` is
/// `application/json`.
pub fn encode_json_response<T: Serialize>(response: T) -> Result<Response, BoxError> {
    Ok(json_response(StatusCode::OK, &response)?)
}

/// Like [`encode_json_response`], but a response that [failed](Failer) is answered as that
/// error: with its [`failure_status`](Failer::failure_status) and the [`encode_error`] body
/// (Go kit's addsvc pattern).
pub fn encode_json_response_or_error<T: Serialize + Failer>(
    response: T,
) -> Result<Response, BoxError> {
    match response.failed() {
        Some(error) => Ok(error_response(response.failure_status(), error)),
        None => encode_json_response(response),
    }
}

/// The default error encoder: `{"error":"<message>"}` with the status the error declares.
///
/// The status comes from [`status_code`], 500 for errors kit-core does not know.
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
