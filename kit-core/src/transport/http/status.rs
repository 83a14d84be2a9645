//! The HTTP status for a failure: kit-core's kinds of failure as HTTP sees them, refined by the
//! HTTP transport's own errors.

use std::error::Error as StdError;

use http::StatusCode;

#[cfg(feature = "http-server")]
use super::decode::DecodeError;
use crate::error::{Error, ErrorExt, ErrorKind, chain};

/// The status that describes a failure of `kind`.
///
/// | kind | status |
/// |---|---|
/// | [`InvalidArgument`](ErrorKind::InvalidArgument), [`FailedPrecondition`](ErrorKind::FailedPrecondition), [`OutOfRange`](ErrorKind::OutOfRange) | 400 Bad Request |
/// | [`Unauthenticated`](ErrorKind::Unauthenticated) | 401 Unauthorized |
/// | [`PermissionDenied`](ErrorKind::PermissionDenied) | 403 Forbidden |
/// | [`NotFound`](ErrorKind::NotFound) | 404 Not Found |
/// | [`AlreadyExists`](ErrorKind::AlreadyExists), [`Aborted`](ErrorKind::Aborted) | 409 Conflict |
/// | [`ResourceExhausted`](ErrorKind::ResourceExhausted) | 429 Too Many Requests |
/// | [`Canceled`](ErrorKind::Canceled) | 499 (the client closed the request, as nginx and Google's APIs say) |
/// | [`Unimplemented`](ErrorKind::Unimplemented) | 501 Not Implemented |
/// | [`Unavailable`](ErrorKind::Unavailable) | 503 Service Unavailable |
/// | [`DeadlineExceeded`](ErrorKind::DeadlineExceeded) | 504 Gateway Timeout |
/// | [`Internal`](ErrorKind::Internal), [`DataLoss`](ErrorKind::DataLoss), [`Unknown`](ErrorKind::Unknown) | 500 Internal Server Error |
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition | ErrorKind::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Aborted => StatusCode::CONFLICT,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        ErrorKind::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal | ErrorKind::DataLoss | ErrorKind::Unknown => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        // A kind added later is a server-side failure until it has its own status.
        #[allow(unreachable_patterns)]
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status to answer a failed request with: [`status_for`] the error's
/// [kind](crate::error::ErrorExt::kind), except where the HTTP transport's own errors say more
/// than their kind:
///
/// | error | status |
/// |---|---|
/// | [`DecodeError::TooLarge`], or a body over the server's limit | 413 Payload Too Large |
/// | [`DecodeError::Timeout`]: the body did not arrive in time | 408 Request Timeout |
/// | `ClientError::Timeout`: a call to another service timed out | 504 Gateway Timeout |
/// | `ClientError::Encode`, `ClientError::Setup`: our side of such a call failed | 500 |
/// | any other `ClientError`: the other service failed | 502 Bad Gateway |
///
/// A request that could not be read (a [`DecodeError`], a body over the limit) is answered as
/// such wherever it sits in the error's [`source`](StdError::source) chain; otherwise the first
/// error in the chain that says decides, so an error that wraps one of these keeps its status.
pub fn status_code(error: &(dyn StdError + 'static)) -> StatusCode {
    if let Some(status) = chain(error).find_map(request_status) {
        return status;
    }
    for node in chain(error) {
        #[cfg(feature = "http-client")]
        if let Some(error) = node.downcast_ref::<super::ClientError>() {
            return error.status_code();
        }
        if let Some(error) = node.downcast_ref::<Error>() {
            #[cfg(feature = "http-client")]
            if let Some(client) = error.downcast_ref::<super::ClientError>() {
                return client.status_code();
            }
            return status_for(error.kind());
        }
    }
    status_for(error.kind())
}

/// The status of an error that says the request itself could not be read.
fn request_status(error: &(dyn StdError + 'static)) -> Option<StatusCode> {
    #[cfg(feature = "http-server")]
    if let Some(error) = error.downcast_ref::<DecodeError>() {
        return Some(error.status_code());
    }
    error
        .is::<http_body_util::LengthLimitError>()
        .then_some(StatusCode::PAYLOAD_TOO_LARGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BoxError, Classify};

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] BoxError);

    #[derive(Debug, thiserror::Error)]
    #[error("taken")]
    struct Taken;

    impl Classify for Taken {
        fn kind(&self) -> ErrorKind {
            ErrorKind::AlreadyExists
        }
    }

    #[test]
    fn errors_get_the_status_of_their_kind() {
        let unknown: BoxError = "something broke".into();
        assert_eq!(
            status_code(unknown.as_ref()),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let taken: BoxError = Error::from(Taken).into();
        assert_eq!(status_code(taken.as_ref()), StatusCode::CONFLICT);
        let wrapped = Outer(taken);
        assert_eq!(status_code(&wrapped), StatusCode::CONFLICT);
        let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
        assert_eq!(status_code(elapsed.as_ref()), StatusCode::GATEWAY_TIMEOUT);
        let shed: BoxError = tower::load_shed::error::Overloaded::new().into();
        assert_eq!(status_code(shed.as_ref()), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_however_deep_it_is() {
        use http_body_util::BodyExt;
        let body = http_body_util::Limited::new(http_body_util::Full::new(&b"too long"[..]), 3);
        let too_long = body.collect().await.expect_err("over the limit");
        let deep: BoxError = Error::new(ErrorKind::InvalidArgument, Outer(too_long)).into();
        assert_eq!(status_code(deep.as_ref()), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[cfg(feature = "http-server")]
    #[test]
    fn decode_errors_say_more_than_their_kind() {
        let too_large: BoxError = Error::from(DecodeError::TooLarge { limit: 10 }).into();
        assert_eq!(
            status_code(too_large.as_ref()),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let slow: BoxError = Error::from(DecodeError::Timeout {
            timeout: std::time::Duration::from_secs(1),
        })
        .into();
        assert_eq!(status_code(slow.as_ref()), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(slow.kind(), ErrorKind::DeadlineExceeded);
    }

    #[test]
    fn every_kind_has_a_status() {
        for (kind, status) in [
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 409),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::PermissionDenied, 403),
            (ErrorKind::ResourceExhausted, 429),
            (ErrorKind::FailedPrecondition, 400),
            (ErrorKind::Aborted, 409),
            (ErrorKind::OutOfRange, 400),
            (ErrorKind::Unimplemented, 501),
            (ErrorKind::Internal, 500),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::DeadlineExceeded, 504),
            (ErrorKind::Canceled, 499),
            (ErrorKind::DataLoss, 500),
            (ErrorKind::Unknown, 500),
        ] {
            assert_eq!(status_for(kind).as_u16(), status, "{kind}");
        }
    }
}
