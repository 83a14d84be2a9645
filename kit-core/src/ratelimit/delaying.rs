//! The limiter that makes a call wait for its token.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use super::Limiter;
use crate::context::{self, DeadlineExceeded};
use crate::error::{BoxError, Error};

/// A tower layer that makes calls wait for a token of its [`Limiter`] (Go kit's
/// `ratelimit.NewDelayingLimiter`).
#[derive(Debug, Clone)]
pub struct DelayingLimiterLayer {
    limiter: Limiter,
}

impl DelayingLimiterLayer {
    /// Delays the calls of the services it wraps with `limiter`, which they all share.
    pub fn new(limiter: Limiter) -> Self {
        DelayingLimiterLayer { limiter }
    }
}

impl<S> Layer<S> for DelayingLimiterLayer {
    type Service = DelayingLimiter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DelayingLimiter {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// The service [`DelayingLimiterLayer`] wraps around an endpoint.
///
/// It is always ready, and the wait happens in the response future: first for a token, then
/// for a clone of the inner service to be ready, then the call. Waiting in `poll_ready` instead,
/// as tower's `RateLimit` does, would not limit anything when axum or
/// [`invoke`](crate::endpoint::EndpointExt::invoke) calls a fresh clone per request. And as in
/// Go kit, where the limiter waits before calling `next`, nothing in the inner stack (a
/// concurrency permit, a buffer slot) is held while a call waits for its token.
///
/// Dropping the response future stops the wait; a call dropped before its token never takes
/// one. The wait is bounded by the request's [deadline](crate::context): a call whose token would
/// come after it fails at once with [`DeadlineExceeded`], as Go's `limit.Wait(ctx)` does, rather
/// than wait for a token it could not use.
#[derive(Debug, Clone)]
pub struct DelayingLimiter<S> {
    inner: S,
    limiter: Limiter,
}

impl<S, Req> Service<Req> for DelayingLimiter<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = DelayingLimiterFuture<S, Req>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        DelayingLimiterFuture {
            limiter: self.limiter.clone(),
            deadline: context::Context::current().deadline(),
            has_token: false,
            sleep: None,
            call: self.inner.clone().oneshot(request),
        }
    }
}

pin_project! {
    /// The response future of [`DelayingLimiter`]: waits for a token, then calls.
    pub struct DelayingLimiterFuture<S, Req>
    where
        S: Service<Req>,
    {
        limiter: Limiter,
        deadline: Option<Instant>,
        has_token: bool,
        #[pin]
        sleep: Option<Sleep>,
        #[pin]
        call: Oneshot<S, Req>,
    }
}

impl<S, Req> fmt::Debug for DelayingLimiterFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayingLimiterFuture")
            .field("limiter", &self.limiter)
            .field("has_token", &self.has_token)
            .finish_non_exhaustive()
    }
}

impl<S, Req> Future for DelayingLimiterFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        while !*this.has_token {
            if let Some(sleep) = this.sleep.as_mut().as_pin_mut() {
                std::task::ready!(sleep.poll(cx));
            }
            match this.limiter.acquire() {
                Ok(()) => {
                    *this.has_token = true;
                    this.sleep.set(None);
                }
                Err(wait) => {
                    let ready_at = Instant::now() + wait;
                    if this.deadline.is_some_and(|deadline| ready_at > deadline) {
                        return Poll::Ready(Err(Error::from(DeadlineExceeded).into()));
                    }
                    this.sleep.set(Some(tokio::time::sleep_until(ready_at)));
                }
            }
        }
        this.call.poll(cx).map_err(Into::into)
    }
}
