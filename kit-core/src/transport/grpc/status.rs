//! The gRPC status for a failure: kit-core's kinds of failure are gRPC's codes, one to one.

use std::error::Error as StdError;

use tonic::{Code, Status};

use crate::error::{Classify, ErrorExt, ErrorKind};

/// The gRPC code of a failure of `kind`: the code of the same name.
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::OutOfRange => Code::OutOfRange,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Canceled => Code::Cancelled,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::Unknown => Code::Unknown,
        // A kind added later is unknown to gRPC until it has its own code.
        #[allow(unreachable_patterns)]
        _ => Code::Unknown,
    }
}

/// The kind of failure a gRPC code describes: the inverse of [`code_for`] (`Ok` is no failure
/// and reads as [`Unknown`](ErrorKind::Unknown)).
pub fn kind_of_code(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Aborted => ErrorKind::Aborted,
        Code::OutOfRange => ErrorKind::OutOfRange,
        Code::Unimplemented => ErrorKind::Unimplemented,
        Code::Internal => ErrorKind::Internal,
        Code::Unavailable => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::Cancelled => ErrorKind::Canceled,
        Code::DataLoss => ErrorKind::DataLoss,
        Code::Ok | Code::Unknown => ErrorKind::Unknown,
    }
}

/// The status to answer a failed call with: the code of the error's
/// [kind](crate::error::ErrorExt::kind), and its message.
pub fn status(error: &(dyn StdError + 'static)) -> Status {
    Status::new(code_for(error.kind()), error.to_string())
}

/// A status received from a remote is the kind of failure its code says.
impl Classify for Status {
    fn kind(&self) -> ErrorKind {
        kind_of_code(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{BoxError, Error};

    #[test]
    fn kinds_and_codes_map_both_ways() {
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
            assert_eq!(kind_of_code(code_for(kind)), kind, "{kind}");
            assert_eq!(
                format!("{:?}", code_for(kind)).to_lowercase(),
                kind.as_str()
                    .replace('_', "")
                    .replace("canceled", "cancelled"),
            );
        }
    }

    #[test]
    fn an_error_becomes_the_status_of_its_kind() {
        let limited: BoxError =
            Error::new(ErrorKind::ResourceExhausted, "rate limit exceeded").into();
        let status = status(limited.as_ref());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "rate limit exceeded");
        let plain: BoxError = "who knows".into();
        assert_eq!(super::status(plain.as_ref()).code(), Code::Unknown);
        assert_eq!(
            Error::from(Status::unavailable("down")).kind(),
            ErrorKind::Unavailable
        );
    }
}
