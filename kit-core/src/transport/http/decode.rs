//! Reading requests: the body within the server's limit, the default JSON decoder, and why
//! a request could not be decoded.

use std::error::Error as StdError;

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;

use super::Request;
use super::body::{Collect, collect};
use crate::error::{BoxError, Classify, Error, ErrorKind};
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
    /// A header the server reads, such as `X-Request-Timeout`, does not say what it should.
    #[error(transparent)]
    Header(BoxError),
    /// The body is not the JSON the endpoint expects.
    #[error("invalid request body: {0}")]
    Json(#[from] json::Error),
}

impl Classify for DecodeError {
    /// A body too large is [`ResourceExhausted`](ErrorKind::ResourceExhausted), one too slow
    /// [`DeadlineExceeded`](ErrorKind::DeadlineExceeded), anything else the caller's
    /// [`InvalidArgument`](ErrorKind::InvalidArgument).
    fn kind(&self) -> ErrorKind {
        match self {
            DecodeError::TooLarge { .. } => ErrorKind::ResourceExhausted,
            DecodeError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            DecodeError::Read(_) | DecodeError::Header(_) | DecodeError::Json(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }
}

impl DecodeError {
    /// 413 for a body over the limit, 408 for a body too slow to arrive, 400 for everything
    /// else.
    pub fn status_code(&self) -> StatusCode {
        match self {
            DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DecodeError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            DecodeError::Read(_) | DecodeError::Header(_) | DecodeError::Json(_) => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// Reads the whole request body, within the server's [`BodyLimit`].
pub async fn read_body(request: Request) -> Result<Bytes, DecodeError> {
    let limit = request
        .extensions()
        .get::<BodyLimit>()
        .map(|BodyLimit(limit)| *limit);
    match collect(request.into_body(), limit).await {
        Ok(bytes) => Ok(bytes),
        // More than the limit, declared or sent.
        Err(Collect::TooLarge) => Err(DecodeError::TooLarge {
            limit: limit.unwrap_or(usize::MAX),
        }),
        // The server's own limit on the body may have stopped it first: its error is among the
        // causes.
        Err(Collect::Failed(err)) => {
            let err = err.into_inner();
            let mut cause: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
            let mut too_large = false;
            while let Some(error) = cause {
                too_large |= error.is::<http_body_util::LengthLimitError>();
                cause = error.source();
            }
            match (too_large, limit) {
                (true, Some(limit)) => Err(DecodeError::TooLarge { limit }),
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
    let body = read_body(request).await.map_err(Error::from)?;
    Ok(json::from_slice(&body).map_err(|e| Error::from(DecodeError::from(e)))?)
}
