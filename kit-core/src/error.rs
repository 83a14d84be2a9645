//! Errors, and the kinds of failure every transport understands.
//!
//! Endpoints fail with a [`BoxError`], because the errors of a call come from everywhere: the
//! business logic, a timeout layer, a load shedder, an HTTP client. A transport still has to tell
//! its caller what kind of failure it was: an HTTP status, a gRPC code, a JSON-RPC error code. So
//! kit-core names the kinds of failure once, in [`ErrorKind`] (after gRPC's status codes, which
//! every RPC system can express), and each transport maps them to its own codes in its own
//! module; nothing here knows HTTP.
//!
//! An error declares its kind by implementing [`Classify`]. Kit-core's own errors do (a
//! circuit breaker that is open is [`Unavailable`](ErrorKind::Unavailable), a rate limiter that
//! refuses is [`ResourceExhausted`](ErrorKind::ResourceExhausted)), and so do a service's:
//!
//! ```
//! use kit_core::error::{Classify, Error, ErrorExt, ErrorKind};
//! use kit_core::BoxError;
//!
//! #[derive(Debug, thiserror::Error)]
//! enum ProfileError {
//!     #[error("no such profile")]
//!     NotFound,
//!     #[error("profile already exists")]
//!     Exists,
//! }
//!
//! impl Classify for ProfileError {
//!     fn kind(&self) -> ErrorKind {
//!         match self {
//!             ProfileError::NotFound => ErrorKind::NotFound,
//!             ProfileError::Exists => ErrorKind::AlreadyExists,
//!         }
//!     }
//! }
//!
//! // Boxing forgets the type, and with it the `Classify` implementation; an [`Error`] keeps
//! // the kind, and `?` makes one from any error that classifies itself.
//! fn find(id: &str) -> Result<String, Error> {
//!     Err(ProfileError::NotFound)?
//! }
//! let boxed: BoxError = find("42").unwrap_err().into();
//! assert_eq!(boxed.kind(), ErrorKind::NotFound);
//! assert_eq!(boxed.to_string(), "no such profile");
//! assert!(matches!(boxed.find::<ProfileError>(), Some(ProfileError::NotFound)));
//! ```
//!
//! # Why a wrapper
//!
//! Rust cannot ask a `dyn Error` whether its concrete type implements some other trait, so a
//! kind declared by a trait would be lost the moment an error is boxed, which every tower layer
//! does. An [`Error`] is the box that remembers: like [`std::io::Error`], it is a kind together
//! with the error it describes. [`endpoint_fn`](crate::endpoint::endpoint_fn) makes one of every
//! error an endpoint returns, kit-core's middlewares fail with one, and a kind found once
//! survives any wrapping that keeps the error as a [`source`](StdError::source): retries,
//! timeouts, buffers, a service's own wrapper types. Like `std::io::Error`, it is transparent:
//! it displays as the error it wraps.
//!
//! [`ErrorExt::kind`] reads the kind of any error: the first [`Error`] in its source chain
//! decides, and tower's own errors, which cannot implement a kit-core trait, are recognised by
//! type. [`ErrorExt::find`] looks for a concrete error anywhere in the chain, through every
//! [`Error`] wrapper, which is how to test for one (`err.find::<BreakerError>()`).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

/// A type-erased error: what endpoints and middleware fail with (tower's `BoxError`).
pub use tower::BoxError;

/// What kind of failure an error is: the transport-neutral vocabulary that each transport
/// translates into its own codes.
///
/// The kinds are gRPC's status codes, whose meanings are documented well and are understood
/// across RPC systems. The HTTP statuses in the table are what kit-core's HTTP transport answers
/// (see `transport::http::status_for`).
///
/// | kind | meaning | HTTP |
/// |---|---|---|
/// | [`InvalidArgument`](Self::InvalidArgument) | the caller's request is wrong, whatever the system's state | 400 |
/// | [`NotFound`](Self::NotFound) | what the request names does not exist | 404 |
/// | [`AlreadyExists`](Self::AlreadyExists) | what the request would create exists already | 409 |
/// | [`Unauthenticated`](Self::Unauthenticated) | the caller did not say, or prove, who it is | 401 |
/// | [`PermissionDenied`](Self::PermissionDenied) | the caller may not do this | 403 |
/// | [`ResourceExhausted`](Self::ResourceExhausted) | a quota or limit ran out: a rate limit, a size limit | 429 |
/// | [`FailedPrecondition`](Self::FailedPrecondition) | the system is not in the state the request needs | 400 |
/// | [`Aborted`](Self::Aborted) | a conflict with another request, such as a concurrent update | 409 |
/// | [`OutOfRange`](Self::OutOfRange) | a value past the end of a valid range | 400 |
/// | [`Unimplemented`](Self::Unimplemented) | the operation is not supported | 501 |
/// | [`Internal`](Self::Internal) | a broken invariant: a bug | 500 |
/// | [`Unavailable`](Self::Unavailable) | the service, or one it depends on, cannot answer now; retrying may help | 503 |
/// | [`DeadlineExceeded`](Self::DeadlineExceeded) | the answer did not come in time | 504 |
/// | [`Canceled`](Self::Canceled) | the caller gave up | 499 |
/// | [`DataLoss`](Self::DataLoss) | data was lost or corrupted | 500 |
/// | [`Unknown`](Self::Unknown) | an error that did not say; the default | 500 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong whatever the state of the system: a malformed body, a missing or
    /// invalid value.
    InvalidArgument,
    /// Something the request names does not exist.
    NotFound,
    /// Something the request would create exists already.
    AlreadyExists,
    /// The caller did not say, or could not prove, who it is.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// A quota or limit ran out: the caller sent too much, too fast or too large.
    ResourceExhausted,
    /// The system is not in the state the request needs.
    FailedPrecondition,
    /// The request conflicted with another, such as a concurrent update.
    Aborted,
    /// A value lies past the end of its valid range.
    OutOfRange,
    /// The operation is not implemented or not supported.
    Unimplemented,
    /// An invariant the service relies on is broken: a bug.
    Internal,
    /// The service, or one it depends on, cannot answer now; a retry may succeed.
    Unavailable,
    /// The answer did not come before the deadline.
    DeadlineExceeded,
    /// The caller gave up on the request.
    Canceled,
    /// Data was lost or corrupted beyond recovery.
    DataLoss,
    /// The error did not say what kind it is.
    Unknown,
}

impl ErrorKind {
    /// The kind's name in snake case, as gRPC spells its codes in lower case: `not_found`,
    /// `deadline_exceeded`. For logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Aborted => "aborted",
            ErrorKind::OutOfRange => "out_of_range",
            ErrorKind::Unimplemented => "unimplemented",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Canceled => "canceled",
            ErrorKind::DataLoss => "data_loss",
            ErrorKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that knows what kind of failure it is.
///
/// Implement it for a service's error type to say, once, how every transport should report each
/// of its errors. To keep the kind once the error is boxed, turn it into an [`Error`] (`?` in a
/// function returning `Result<_, Error>` does; see the [module docs](self)).
pub trait Classify: StdError {
    /// The kind of this failure.
    fn kind(&self) -> ErrorKind;
}

/// An error together with its kind: what kit-core boxes so that the kind survives (see the
/// [module docs](self)).
///
/// Like [`std::io::Error`] with a custom error, it is transparent: it displays as the error it
/// wraps and returns that error's [`source`](StdError::source), so that a chain of causes,
/// printed, does not say the same thing twice. [`chain`] and [`ErrorExt::find`] step inside it.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    inner: BoxError,
}

impl Error {
    /// Wraps `error` as a failure of `kind`.
    ///
    /// ```
    /// use kit_core::error::{Error, ErrorKind};
    ///
    /// let err = Error::new(ErrorKind::NotFound, "no profile with id 42");
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// assert_eq!(err.to_string(), "no profile with id 42");
    /// ```
    pub fn new(kind: ErrorKind, error: impl Into<BoxError>) -> Self {
        Error {
            kind,
            inner: error.into(),
        }
    }

    /// The kind of this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The wrapped error.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.inner.as_ref()
    }

    /// The wrapped error, if it is a `T`.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }

    /// Unwraps the error.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

impl<E> From<E> for Error
where
    E: Classify + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Error::new(error.kind(), error)
    }
}

/// An error already boxed keeps the kind it has (see [`ErrorExt::kind`]); an [`Error`] in the
/// box is taken out rather than wrapped twice.
impl From<BoxError> for Error {
    fn from(error: BoxError) -> Self {
        match error.downcast::<Error>() {
            Ok(error) => *error,
            Err(error) => Error::new(error.kind(), error),
        }
    }
}

/// A message is an error of unknown kind, as with `BoxError::from("...")`.
impl From<&'static str> for Error {
    fn from(message: &'static str) -> Self {
        Error::new(ErrorKind::Unknown, message)
    }
}

/// A message is an error of unknown kind, as with `BoxError::from(String)`.
impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(ErrorKind::Unknown, message)
    }
}

impl From<Cow<'static, str>> for Error {
    fn from(message: Cow<'static, str>) -> Self {
        Error::from(message.into_owned())
    }
}

/// An endpoint that cannot fail has `Infallible` errors; this lets it be built like any other.
impl Classify for std::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// I/O errors that say a peer is gone or too slow are [`Unavailable`](ErrorKind::Unavailable)
/// or [`DeadlineExceeded`](ErrorKind::DeadlineExceeded); the rest are
/// [`Unknown`](ErrorKind::Unknown), since a file that is missing on the server is not the
/// caller's "not found".
impl Classify for std::io::Error {
    fn kind(&self) -> ErrorKind {
        io_kind(self)
    }
}

fn io_kind(error: &std::io::Error) -> ErrorKind {
    use std::io::ErrorKind as Io;
    match error.kind() {
        Io::TimedOut => ErrorKind::DeadlineExceeded,
        Io::ConnectionRefused
        | Io::ConnectionReset
        | Io::ConnectionAborted
        | Io::NotConnected
        | Io::BrokenPipe
        | Io::AddrNotAvailable
        | Io::UnexpectedEof => ErrorKind::Unavailable,
        _ => ErrorKind::Unknown,
    }
}

/// Questions to ask of any error, boxed or not: what kind of failure it is, and whether a given
/// error caused it.
pub trait ErrorExt {
    /// The kind of failure: the first error in the [`source`](StdError::source) chain that
    /// knows its kind decides ([`Error`], tower's timeout and load-shedding errors, I/O errors),
    /// and an error that never says is [`Unknown`](ErrorKind::Unknown).
    fn kind(&self) -> ErrorKind;

    /// The first `T` in the source chain, looking inside every [`Error`]; this is how to test
    /// whether a boxed error is, or was caused by, a `T`.
    fn find<T: StdError + 'static>(&self) -> Option<&T>;
}

impl ErrorExt for dyn StdError + 'static {
    fn kind(&self) -> ErrorKind {
        kind_of(self)
    }

    fn find<T: StdError + 'static>(&self) -> Option<&T> {
        chain(self).find_map(|error| error.downcast_ref::<T>())
    }
}

impl ErrorExt for dyn StdError + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind {
        kind_of(self)
    }

    fn find<T: StdError + 'static>(&self) -> Option<&T> {
        chain(self).find_map(|error| error.downcast_ref::<T>())
    }
}

/// `error` and its causes, outermost first: its [`source`](StdError::source) chain, in which
/// each [`Error`] is followed by the error it wraps.
pub fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&error| match error.downcast_ref::<Error>() {
        Some(wrapper) => Some(wrapper.get_ref() as &(dyn StdError + 'static)),
        None => error.source(),
    })
}

fn kind_of(error: &(dyn StdError + 'static)) -> ErrorKind {
    chain(error)
        .find_map(known_kind)
        .unwrap_or(ErrorKind::Unknown)
}

/// The kind of this one error, if it says: an [`Error`], or one of the foreign errors that
/// cannot implement [`Classify`].
fn known_kind(error: &(dyn StdError + 'static)) -> Option<ErrorKind> {
    if let Some(error) = error.downcast_ref::<Error>() {
        Some(error.kind())
    } else if error.is::<tower::timeout::error::Elapsed>() {
        Some(ErrorKind::DeadlineExceeded)
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        Some(ErrorKind::Unavailable)
    } else if let Some(error) = error.downcast_ref::<std::io::Error>() {
        // An I/O error that carries another error is described by that one, if it says.
        match io_kind(error) {
            ErrorKind::Unknown => None,
            kind => Some(kind),
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] BoxError);

    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("already there")]
    struct Exists;

    impl Classify for Exists {
        fn kind(&self) -> ErrorKind {
            ErrorKind::AlreadyExists
        }
    }

    #[test]
    fn an_error_that_does_not_say_is_unknown() {
        let err: BoxError = "something broke".into();
        assert_eq!(err.kind(), ErrorKind::Unknown);
    }

    #[test]
    fn tower_errors_have_kinds() {
        let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
        assert_eq!(elapsed.kind(), ErrorKind::DeadlineExceeded);
        let overloaded: BoxError = tower::load_shed::error::Overloaded::new().into();
        assert_eq!(overloaded.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn the_kind_survives_boxing_and_wrapping() {
        let boxed: BoxError = Error::from(Exists).into();
        assert_eq!(boxed.kind(), ErrorKind::AlreadyExists);
        let wrapped = Outer(boxed);
        let dynamic: &(dyn StdError + 'static) = &wrapped;
        assert_eq!(dynamic.kind(), ErrorKind::AlreadyExists);
        assert_eq!(dynamic.find::<Exists>(), Some(&Exists));
        assert_eq!(wrapped.to_string(), "outer: already there");
    }

    #[test]
    fn the_outermost_kind_wins() {
        let inner: BoxError = Error::from(Exists).into();
        let outer: BoxError = Error::new(ErrorKind::Unavailable, Outer(inner)).into();
        assert_eq!(outer.kind(), ErrorKind::Unavailable);
        assert!(outer.find::<Exists>().is_some());
    }

    #[test]
    fn a_boxed_error_becomes_an_error_without_a_second_wrapper() {
        let boxed: BoxError = Error::from(Exists).into();
        let error = Error::from(boxed);
        assert_eq!(error.kind(), ErrorKind::AlreadyExists);
        assert!(error.downcast_ref::<Exists>().is_some());
        let plain = Error::from(BoxError::from(tower::timeout::error::Elapsed::new()));
        assert_eq!(plain.kind(), ErrorKind::DeadlineExceeded);
        assert_eq!(Error::from("nope").kind(), ErrorKind::Unknown);
    }

    #[test]
    fn io_errors_say_when_a_peer_is_gone_or_slow() {
        use std::io;
        let refused: BoxError = io::Error::from(io::ErrorKind::ConnectionRefused).into();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        let slow = Error::from(io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(slow.kind(), ErrorKind::DeadlineExceeded);
        let missing: BoxError = io::Error::from(io::ErrorKind::NotFound).into();
        assert_eq!(missing.kind(), ErrorKind::Unknown);
    }

    #[test]
    fn kinds_are_named_in_snake_case() {
        assert_eq!(ErrorKind::DeadlineExceeded.to_string(), "deadline_exceeded");
        assert_eq!(ErrorKind::InvalidArgument.as_str(), "invalid_argument");
    }
}
