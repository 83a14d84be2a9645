//! Errors across Thrift: what a server answers for a failed call, and the kind of a failure a
//! client sees.

use std::error::Error as StdError;

use thrift::{ApplicationError, ApplicationErrorKind, TransportErrorKind};

use crate::error::{Classify, ErrorKind};

/// The exception a handler answers a failed call of `method` with: `INTERNAL_ERROR` and
/// `Internal error processing <method>: <error>`, as Go's generated processors answer an error
/// that is not a declared exception. (Thrift's exception kinds are about the protocol, not about
/// the failure; the message says what it was.)
pub fn application_error(method: &str, error: &(dyn StdError + 'static)) -> thrift::Error {
    thrift::Error::Application(ApplicationError::new(
        ApplicationErrorKind::InternalError,
        format!("Internal error processing {method}: {error}"),
    ))
}

/// A Thrift error, as a client sees it: a connection that failed or timed out is
/// [`Unavailable`](ErrorKind::Unavailable) or [`DeadlineExceeded`](ErrorKind::DeadlineExceeded);
/// bytes that are not the protocol are [`Internal`](ErrorKind::Internal); an exception the
/// server answered is [`Unimplemented`](ErrorKind::Unimplemented) for an unknown method and
/// [`Unavailable`](ErrorKind::Unavailable) otherwise: the server could not answer.
impl Classify for thrift::Error {
    fn kind(&self) -> ErrorKind {
        match self {
            thrift::Error::Transport(e) if e.kind == TransportErrorKind::TimedOut => {
                ErrorKind::DeadlineExceeded
            }
            thrift::Error::Transport(_) => ErrorKind::Unavailable,
            thrift::Error::Protocol(_) => ErrorKind::Internal,
            thrift::Error::Application(e) if e.kind == ApplicationErrorKind::UnknownMethod => {
                ErrorKind::Unimplemented
            }
            thrift::Error::Application(_) => ErrorKind::Unavailable,
            thrift::Error::User(_) => ErrorKind::Unknown,
        }
    }
}
