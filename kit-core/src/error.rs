//! Errors, and the one place that turns them into HTTP status codes.
//!
//! Endpoints fail with a [`BoxError`], because the errors of a call come from everywhere: the
//! business logic, a timeout layer, a load shedder, an HTTP client. A transport still has to pick
//! a status code for each, so kit-core exports its own errors as concrete types (callers can
//! `downcast_ref` them) and maps them in one function, [`status_code`]:
//!
//! | error | status |
//! |---|---|
//! | [`WithStatus`] (any error that knows its status) | the status it carries |
//! | [`DecodeError`]: malformed JSON, wrong types, invalid UTF-8, empty body | 400 Bad Request |
//! | [`DecodeError::TooLarge`], or a body over the server's limit | 413 Payload Too Large |
//! | [`DecodeError::Timeout`]: the body did not arrive in time | 408 Request Timeout |
//! | [`ClientError::Timeout`], tower's [`Elapsed`](tower::timeout::error::Elapsed) | 504 Gateway Timeout |
//! | [`ClientError`] (an upstream call failed) | 502 Bad Gateway |
//! | [`ClientError::Encode`], [`ClientError::Setup`]: our side of the call failed | 500 Internal Server Error |
//! | tower's [`Overloaded`](tower::load_shed::error::Overloaded) | 503 Service Unavailable |
//! | [`RateLimited`](crate::ratelimit::RateLimited): the erroring limiter refused the call | 429 Too Many Requests |
//! | [`BreakerError`](crate::circuitbreaker::BreakerError): the circuit breaker is open | 503 Service Unavailable |
//! | [`NoEndpoints`](crate::lb::NoEndpoints): no instance to call | 503 Service Unavailable |
//! | [`RetryError`](crate::lb::RetryError): every attempt failed | 503 Service Unavailable |
//! | [`RetryError`](crate::lb::RetryError) whose deadline passed, or whose last attempt timed out | 504 Gateway Timeout |
//! | anything else | 500 Internal Server Error |
//!
//! The mapping walks the error's [`source`](StdError::source) chain, so an error that wraps one
//! of these keeps its status.
//!
//! A service's own errors declare their status by implementing [`StatusCoder`]; wrapping one in
//! [`WithStatus`] keeps that status once the error is boxed:
//!
//! ```
//! use http::StatusCode;
//! use kit_core::error::{status_code, StatusCoder, WithStatus};
//! use kit_core::BoxError;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("no such profile")]
//! struct NotFound;
//!
//! impl StatusCoder for NotFound {
//!     fn status_code(&self) -> StatusCode {
//!         StatusCode::NOT_FOUND
//!     }
//! }
//!
//! let err: BoxError = WithStatus::from(NotFound).into();
//! assert_eq!(status_code(err.as_ref()), StatusCode::NOT_FOUND);
//! assert_eq!(err.to_string(), "no such profile");
//! ```
//!
//! [`DecodeError`]: crate::transport::http::DecodeError
//! [`DecodeError::TooLarge`]: crate::transport::http::DecodeError::TooLarge
//! [`DecodeError::Timeout`]: crate::transport::http::DecodeError::Timeout
//! [`ClientError::Encode`]: crate::transport::http::ClientError::Encode
//! [`ClientError::Setup`]: crate::transport::http::ClientError::Setup
//! [`ClientError`]: crate::transport::http::ClientError
//! [`ClientError::Timeout`]: crate::transport::http::ClientError::Timeout

use std::error::Error as StdError;
use std::fmt;

use http::StatusCode;

use crate::transport::http::{ClientError, DecodeError};

/// A type-erased error: what endpoints and middleware fail with (tower's `BoxError`).
pub use tower::BoxError;

/// An error that knows which HTTP status describes it (Go kit's `StatusCoder`).
pub trait StatusCoder {
    /// The status a transport should answer with when this error ends a request.
    fn status_code(&self) -> StatusCode;
}

/// An error together with the HTTP status it should be answered with.
///
/// Boxing an error forgets its type, and with it any [`StatusCoder`] implementation; wrapping it
/// in `WithStatus` first keeps the status. It displays as the wrapped error and returns it from
/// [`source`](StdError::source).
#[derive(Debug)]
pub struct WithStatus {
    status: StatusCode,
    error: BoxError,
}

impl WithStatus {
    /// Wraps `error` so that it is answered with `status`.
    pub fn new(status: StatusCode, error: impl Into<BoxError>) -> Self {
        Self {
            status,
            error: error.into(),
        }
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.error.as_ref()
    }

    /// Unwraps the error.
    pub fn into_inner(self) -> BoxError {
        self.error
    }
}

impl fmt::Display for WithStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl StdError for WithStatus {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.error.as_ref())
    }
}

impl<E> From<E> for WithStatus
where
    E: StatusCoder + StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self::new(error.status_code(), error)
    }
}

/// The HTTP status for an error: the first error in its source chain that kit-core knows decides,
/// and an unknown error is a 500. See the [module docs](self) for the table.
pub fn status_code(error: &(dyn StdError + 'static)) -> StatusCode {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(status) = known_status(error) {
            return status;
        }
        current = error.source();
    }
    StatusCode::INTERNAL_SERVER_ERROR
}

fn known_status(error: &(dyn StdError + 'static)) -> Option<StatusCode> {
    if let Some(error) = error.downcast_ref::<WithStatus>() {
        Some(error.status())
    } else if let Some(error) = error.downcast_ref::<DecodeError>() {
        Some(error.status_code())
    } else if let Some(error) = error.downcast_ref::<ClientError>() {
        Some(error.status_code())
    } else if error.is::<tower::timeout::error::Elapsed>() {
        Some(StatusCode::GATEWAY_TIMEOUT)
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        Some(StatusCode::SERVICE_UNAVAILABLE)
    } else if error.is::<http_body_util::LengthLimitError>() {
        Some(StatusCode::PAYLOAD_TOO_LARGE)
    } else if error.is::<crate::ratelimit::RateLimited>() {
        Some(StatusCode::TOO_MANY_REQUESTS)
    } else if error.is::<crate::circuitbreaker::BreakerError>()
        || error.is::<crate::lb::NoEndpoints>()
    {
        Some(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        error.downcast_ref::<crate::lb::RetryError>().map(|error| {
            let last_timed_out = error
                .last()
                .is_some_and(|last| status_code(last.as_ref()) == StatusCode::GATEWAY_TIMEOUT);
            if error.timed_out().is_some() || last_timed_out {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] BoxError);

    #[test]
    fn unknown_errors_are_internal() {
        let err: BoxError = "something broke".into();
        assert_eq!(status_code(err.as_ref()), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn tower_errors_have_statuses() {
        let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
        assert_eq!(status_code(elapsed.as_ref()), StatusCode::GATEWAY_TIMEOUT);
        let overloaded: BoxError = tower::load_shed::error::Overloaded::new().into();
        assert_eq!(
            status_code(overloaded.as_ref()),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_source_chain_is_searched() {
        let inner = WithStatus::new(StatusCode::CONFLICT, "already exists");
        let err = Outer(inner.into());
        assert_eq!(status_code(&err), StatusCode::CONFLICT);
        assert_eq!(err.to_string(), "outer: already exists");
    }

    #[test]
    fn with_status_is_transparent() {
        let err = WithStatus::new(StatusCode::NOT_FOUND, std::io::Error::other("gone"));
        assert_eq!(err.to_string(), "gone");
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert!(err.get_ref().is::<std::io::Error>());
        assert!(err.into_inner().is::<std::io::Error>());
    }
}
