//! The business logic: two methods, Go kit's rules and messages, no transport.

use std::future::Future;

use kit_core::error::{Classify, ErrorKind};

// ANCHOR: trait
/// Adds integers and strings (Go kit's `addservice.Service`).
///
/// One trait for every implementation: the plain one below, the middlewares that wrap it, the
/// endpoint [`Set`](crate::endpoint::Set) and the clients of every transport. So its error is
/// one type, [`Error`]: a business error of the service, or the failure of the call that should
/// have reached it.
pub trait AddService {
    /// `a + b`; refuses two zeroes and results beyond Go kit's bounds.
    fn sum(&self, a: i64, b: i64) -> impl Future<Output = Result<i64, Error>> + Send;

    /// `a` followed by `b`; refuses results longer than 10 bytes.
    fn concat(&self, a: &str, b: &str) -> impl Future<Output = Result<String, Error>> + Send;
}
// ANCHOR_END: trait

// ANCHOR: errors
/// The service's business errors, with Go kit's messages, which are also what travels on the
/// wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Sum was asked for `0 + 0` (Go kit's `ErrTwoZeroes`).
    #[error("can't sum two zeroes")]
    TwoZeroes,
    /// Sum's result would leave Go kit's bounds (`ErrIntOverflow`).
    #[error("integer overflow")]
    IntOverflow,
    /// Concat's result would be longer than 10 bytes (`ErrMaxSizeExceeded`).
    #[error("result exceeds maximum size")]
    MaxSizeExceeded,
    /// A business error that another implementation of the service reported and this one does
    /// not know, in its own words.
    #[error("{0}")]
    Other(String),
}

impl ServiceError {
    /// The error a remote reported as `message`: one of ours when it is our message, else
    /// [`Other`](Self::Other). How the clients give business errors back as values.
    pub fn from_message(message: &str) -> Self {
        match message {
            "can't sum two zeroes" => ServiceError::TwoZeroes,
            "integer overflow" => ServiceError::IntOverflow,
            "result exceeds maximum size" => ServiceError::MaxSizeExceeded,
            other => ServiceError::Other(other.to_owned()),
        }
    }
}

impl Classify for ServiceError {
    /// Two zeroes are a wrong request; the other two are values out of range. Over HTTP all are
    /// 400, as in Go kit.
    fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::TwoZeroes | ServiceError::Other(_) => ErrorKind::InvalidArgument,
            ServiceError::IntOverflow | ServiceError::MaxSizeExceeded => ErrorKind::OutOfRange,
        }
    }
}

/// What a call of the service can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service refused: a business error, the caller's to fix.
    #[error(transparent)]
    Service(ServiceError),
    /// The call did not reach the service or did not come back: a rate limit, an open circuit
    /// breaker, a network failure, a deadline. Its kind says which.
    #[error(transparent)]
    Transport(kit_core::Error),
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Service(error) => error.kind(),
            Error::Transport(error) => error.kind(),
        }
    }
}

impl From<ServiceError> for Error {
    fn from(error: ServiceError) -> Self {
        Error::Service(error)
    }
}

impl PartialEq<ServiceError> for Error {
    fn eq(&self, other: &ServiceError) -> bool {
        matches!(self, Error::Service(error) if error == other)
    }
}
// ANCHOR_END: errors

// ANCHOR: impl
/// Go kit's bounds on Sum: its `intMax` and `intMin`, those of a 32-bit integer, although the
/// values are 64-bit.
const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;

/// Concat's results may be this long, in bytes.
const MAX_LEN: usize = 10;

/// The plain implementation of [`AddService`] (Go kit's `basicService`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicService;

impl AddService for BasicService {
    async fn sum(&self, a: i64, b: i64) -> Result<i64, Error> {
        if a == 0 && b == 0 {
            return Err(ServiceError::TwoZeroes.into());
        }
        // Go kit's check, exactly: a bound on `a` given `b`, not a range check of the result,
        // so 3000000000 + 0 is allowed and 3000000000 + 1 is not.
        if (b > 0 && a > INT_MAX - b) || (b < 0 && a < INT_MIN - b) {
            return Err(ServiceError::IntOverflow.into());
        }
        // The check above leaves no overflow of i64; this keeps that true by construction.
        a.checked_add(b)
            .ok_or_else(|| ServiceError::IntOverflow.into())
    }

    async fn concat(&self, a: &str, b: &str) -> Result<String, Error> {
        if a.len() + b.len() > MAX_LEN {
            return Err(ServiceError::MaxSizeExceeded.into());
        }
        Ok(format!("{a}{b}"))
    }
}
// ANCHOR_END: impl

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sum_follows_go_kit_rules() {
        let svc = BasicService;
        assert_eq!(svc.sum(1, 2).await.ok(), Some(3));
        assert_eq!(svc.sum(-5, 2).await.ok(), Some(-3));
        assert!(svc.sum(0, 0).await.expect_err("zeroes") == ServiceError::TwoZeroes);
        assert_eq!(svc.sum(3_000_000_000, 0).await.ok(), Some(3_000_000_000));
        assert!(svc.sum(3_000_000_000, 1).await.expect_err("over") == ServiceError::IntOverflow);
        assert_eq!(svc.sum(2_147_483_646, 1).await.ok(), Some(2_147_483_647));
        assert!(svc.sum(2_147_483_647, 1).await.expect_err("over") == ServiceError::IntOverflow);
        assert_eq!(svc.sum(-2_147_483_647, -1).await.ok(), Some(-2_147_483_648));
        assert!(svc.sum(-2_147_483_648, -1).await.expect_err("under") == ServiceError::IntOverflow);
        assert_eq!(svc.sum(i64::MIN, 0).await.ok(), Some(i64::MIN));
        assert!(svc.sum(i64::MAX, 1).await.is_err());
        assert!(svc.sum(i64::MIN, -1).await.is_err());
    }

    #[tokio::test]
    async fn concat_allows_ten_bytes() {
        let svc = BasicService;
        assert_eq!(
            svc.concat("hello", "world").await.ok().as_deref(),
            Some("helloworld")
        );
        assert!(
            svc.concat("hello", "world!").await.expect_err("11 bytes")
                == ServiceError::MaxSizeExceeded
        );
        // Bytes, not characters: "é" is two.
        assert!(svc.concat("ééééé", "x").await.is_err());
    }

    #[test]
    fn messages_come_back_as_values() {
        for error in [
            ServiceError::TwoZeroes,
            ServiceError::IntOverflow,
            ServiceError::MaxSizeExceeded,
        ] {
            assert_eq!(ServiceError::from_message(&error.to_string()), error);
        }
        assert_eq!(
            ServiceError::from_message("empty string"),
            ServiceError::Other("empty string".into())
        );
    }
}
