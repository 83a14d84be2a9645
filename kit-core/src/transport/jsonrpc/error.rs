//! JSON-RPC error objects, and the codes of kit-core's kinds of failure.

use std::error::Error as StdError;

use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorExt, ErrorKind};

/// The body is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a request (not an object, no method, a bad id).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params do not decode into the method's request.
pub const INVALID_PARAMS: i64 = -32602;
/// A server-side failure: a bug.
pub const INTERNAL_ERROR: i64 = -32603;

/// The code of the range the specification reserves for server errors (-32000 to -32099) from
/// which kit-core numbers the kinds of failure: `-32000 - <gRPC code>`.
const SERVER_ERROR: i64 = -32000;

/// The error code of a failure of `kind`.
///
/// [`Internal`](ErrorKind::Internal) is the standard `-32603`; every other kind is
/// `-32000` minus its gRPC code number, in the range the specification leaves to servers:
///
/// | kind | code | | kind | code |
/// |---|---|---|---|---|
/// | `Unknown` | -32002 | | `FailedPrecondition` | -32009 |
/// | `InvalidArgument` | -32003 | | `Aborted` | -32010 |
/// | `DeadlineExceeded` | -32004 | | `OutOfRange` | -32011 |
/// | `NotFound` | -32005 | | `Unimplemented` | -32012 |
/// | `AlreadyExists` | -32006 | | `Unavailable` | -32014 |
/// | `PermissionDenied` | -32007 | | `DataLoss` | -32015 |
/// | `ResourceExhausted` | -32008 | | `Unauthenticated` | -32016 |
/// | `Canceled` | -32001 | | `Internal` | -32603 |
pub fn code_for(kind: ErrorKind) -> i64 {
    let grpc = match kind {
        ErrorKind::Canceled => 1,
        ErrorKind::InvalidArgument => 3,
        ErrorKind::DeadlineExceeded => 4,
        ErrorKind::NotFound => 5,
        ErrorKind::AlreadyExists => 6,
        ErrorKind::PermissionDenied => 7,
        ErrorKind::ResourceExhausted => 8,
        ErrorKind::FailedPrecondition => 9,
        ErrorKind::Aborted => 10,
        ErrorKind::OutOfRange => 11,
        ErrorKind::Unimplemented => 12,
        ErrorKind::Internal => return INTERNAL_ERROR,
        ErrorKind::Unavailable => 14,
        ErrorKind::DataLoss => 15,
        ErrorKind::Unauthenticated => 16,
        _ => 2,
    };
    SERVER_ERROR - grpc
}

/// The kind of failure a code describes: the inverse of [`code_for`], with the standard codes
/// read as the caller's mistakes (`-32700`, `-32600`, `-32602`: invalid argument; `-32601`:
/// unimplemented) and any other code as unknown.
pub fn kind_of_code(code: i64) -> ErrorKind {
    match code {
        PARSE_ERROR | INVALID_REQUEST | INVALID_PARAMS => ErrorKind::InvalidArgument,
        METHOD_NOT_FOUND => ErrorKind::Unimplemented,
        INTERNAL_ERROR => ErrorKind::Internal,
        -32001 => ErrorKind::Canceled,
        -32003 => ErrorKind::InvalidArgument,
        -32004 => ErrorKind::DeadlineExceeded,
        -32005 => ErrorKind::NotFound,
        -32006 => ErrorKind::AlreadyExists,
        -32007 => ErrorKind::PermissionDenied,
        -32008 => ErrorKind::ResourceExhausted,
        -32009 => ErrorKind::FailedPrecondition,
        -32010 => ErrorKind::Aborted,
        -32011 => ErrorKind::OutOfRange,
        -32012 => ErrorKind::Unimplemented,
        -32014 => ErrorKind::Unavailable,
        -32015 => ErrorKind::DataLoss,
        -32016 => ErrorKind::Unauthenticated,
        _ => ErrorKind::Unknown,
    }
}

/// A JSON-RPC error object: `{"code":-32601,"message":"..."}`, what a server answers and what a
/// client receives. As an error, it displays as its message and its kind is its code's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorObject {
    /// The error code.
    pub code: i64,
    /// A short description.
    pub message: String,
    /// More about the error, if the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl ErrorObject {
    /// An error object with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The error object of `error`: the code of its kind, its message.
    pub fn from_error(error: &(dyn StdError + 'static)) -> Self {
        ErrorObject::new(code_for(error.kind()), error.to_string())
    }
}

impl Classify for ErrorObject {
    fn kind(&self) -> ErrorKind {
        kind_of_code(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_code_that_reads_back() {
        for kind in [
            ErrorKind::InvalidArgument,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Unauthenticated,
            ErrorKind::PermissionDenied,
            ErrorKind::ResourceExhausted,
            ErrorKind::FailedPrecondition,
            ErrorKind::Aborted,
            ErrorKind::OutOfRange,
            ErrorKind::Unimplemented,
            ErrorKind::Internal,
            ErrorKind::Unavailable,
            ErrorKind::DeadlineExceeded,
            ErrorKind::Canceled,
            ErrorKind::DataLoss,
            ErrorKind::Unknown,
        ] {
            let code = code_for(kind);
            assert!(
                (-32099..=-32000).contains(&code) || code == INTERNAL_ERROR,
                "{kind}"
            );
            assert_eq!(kind_of_code(code), kind);
        }
        assert_eq!(code_for(ErrorKind::ResourceExhausted), -32008);
        assert_eq!(kind_of_code(METHOD_NOT_FOUND), ErrorKind::Unimplemented);
        assert_eq!(kind_of_code(7), ErrorKind::Unknown);
    }
}
