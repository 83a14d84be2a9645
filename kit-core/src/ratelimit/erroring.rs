//! The limiter that refuses a call when there is no token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{Limiter, RateLimited};
use crate::error::{BoxError, Error};

/// A tower layer that refuses calls with [`RateLimited`] when its [`Limiter`] has no token
/// (Go kit's `ratelimit.NewErroringLimiter`).
#[derive(Debug, Clone)]
pub struct ErroringLimiterLayer {
    limiter: Limiter,
}

impl ErroringLimiterLayer {
    /// Limits the services it wraps with `limiter`, which they all share.
    pub fn new(limiter: Limiter) -> Self {
        ErroringLimiterLayer { limiter }
    }
}

impl<S> Layer<S> for ErroringLimiterLayer {
    type Service = ErroringLimiter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErroringLimiter {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// The service [`ErroringLimiterLayer`] wraps around an endpoint.
///
/// Readiness is the inner service's. The token is taken in `call`, from the shared bucket; a
/// refused call fails at once without reaching the inner service, whose readiness then stays
/// reserved for the next call.
#[derive(Debug, Clone)]
pub struct ErroringLimiter<S> {
    inner: S,
    limiter: Limiter,
}

impl<S, Req> Service<Req> for ErroringLimiter<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ErroringLimiterFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let call = match self.limiter.check() {
            Ok(()) => Call::Called {
                future: self.inner.call(request),
            },
            Err(RateLimited) => Call::Refused,
        };
        ErroringLimiterFuture { call }
    }
}

pin_project! {
    /// The response future of [`ErroringLimiter`].
    pub struct ErroringLimiterFuture<F> {
        #[pin]
        call: Call<F>,
    }
}

pin_project! {
    #[project = CallProj]
    enum Call<F> {
        Refused,
        Called { #[pin] future: F },
    }
}

impl<F> fmt::Debug for ErroringLimiterFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErroringLimiterFuture")
            .field("refused", &matches!(self.call, Call::Refused))
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ErroringLimiterFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().call.project() {
            CallProj::Refused => Poll::Ready(Err(Error::from(RateLimited).into())),
            CallProj::Called { future } => future.poll(cx).map_err(Into::into),
        }
    }
}
