//! Rate limiting middlewares on a shared token bucket (Go kit's `ratelimit` package).
//!
//! A [`Limiter`] is a token bucket: it holds at most `burst` tokens, starts full, and gains one
//! token every replenish interval. Each call takes one token. Two middlewares spend them:
//!
//! - [`ErroringLimiterLayer`] refuses a call at once with [`RateLimited`] when the bucket is
//!   empty, without calling the endpoint (Go kit's `NewErroringLimiter`). That is a
//!   [`ResourceExhausted`](crate::error::ErrorKind::ResourceExhausted) failure: over HTTP, a
//!   429 Too Many Requests.
//! - [`DelayingLimiterLayer`] makes the call wait for a token instead (Go kit's
//!   `NewDelayingLimiter`), but not past the request's deadline: a call whose token would come
//!   too late fails at once with [`DeadlineExceeded`](crate::context::DeadlineExceeded), as Go's
//!   `limit.Wait(ctx)` does.
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `rate.NewLimiter(rate.Limit(100), 100)` | [`Limiter::new`]`(100, 100)`: 100 tokens a second, burst 100 |
//! | `rate.NewLimiter(rate.Every(time.Second), 100)` | [`Limiter::with_period`]`(Duration::from_secs(1), 100)` |
//! | `limit.Allow()`, `limit.Wait(ctx)` | [`Limiter::check`], [`Limiter::until_ready`] |
//! | `ratelimit.NewErroringLimiter(limit)` | [`ErroringLimiterLayer::new`]`(limiter)` |
//! | `ratelimit.NewDelayingLimiter(limit)` | [`DelayingLimiterLayer::new`]`(limiter)` |
//! | `ratelimit.ErrLimited` | [`RateLimited`] |
//!
//! (Rates and bursts are [`NonZeroU32`](std::num::NonZeroU32)s: a bucket that never fills is a configuration error
//! caught by the type.)
//!
//! Go kit's stringsvc3 tutorial limits its proxy with
//! `rate.NewLimiter(rate.Every(time.Second), qps)` and `qps = 100`: despite the name, that is a
//! burst of 100 refilled at **one token per second**, i.e.
//! `Limiter::with_period(Duration::from_secs(1), 100)`. This port's stringsvc3 defaults to what
//! the name says, 100 tokens a second with a burst of 100 (`Limiter::new(100, 100)`).
//!
//! # Shared, not per service
//!
//! The bucket lives behind an [`Arc`](std::sync::Arc): every clone of a [`Limiter`], and every layer and service
//! built from it, spends the same tokens. That matters because axum, and kit-core's
//! [`invoke`](crate::endpoint::EndpointExt::invoke), call a fresh clone of a service for every
//! request. tower's own `RateLimit` keeps its budget inside one service value and enforces it
//! in `poll_ready`: it is not `Clone`, so it cannot be an [`Endpoint`](crate::endpoint::Endpoint)
//! or be mounted in axum as is, and limiting by readiness cannot hold across per-request clones
//! anyway. The limiters here take their token in `call` (or in the response future), from the
//! shared bucket.
//!
//! The bucket is governor's GCRA, which behaves as a token bucket, driven by tokio's clock
//! ([`tokio::time::Instant`]), so tests can pause and advance time.
//!
//! ```
//! use std::num::NonZeroU32;
//! use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
//! use kit_core::error::ErrorExt;
//! use kit_core::ratelimit::{ErroringLimiterLayer, Limiter, RateLimited};
//!
//! # tokio_test::block_on(async {
//! let per_second = NonZeroU32::new(1).unwrap();
//! let burst = NonZeroU32::new(2).unwrap();
//! let limiter = Limiter::new(per_second, burst);
//! let echo: Endpoint<u32, u32> =
//!     endpoint_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n) });
//! let limited: Endpoint<u32, u32> = Endpoint::new(
//!     ServiceBuilder::new()
//!         .layer(ErroringLimiterLayer::new(limiter))
//!         .service(echo),
//! );
//!
//! assert_eq!(limited.invoke(1).await.unwrap(), 1);
//! assert_eq!(limited.invoke(2).await.unwrap(), 2);
//! let err = limited.invoke(3).await.unwrap_err();
//! assert!(err.find::<RateLimited>().is_some());
//! assert_eq!(err.to_string(), "rate limit exceeded");
//! # });

mod delaying;
mod erroring;
mod limiter;

pub use delaying::{DelayingLimiter, DelayingLimiterFuture, DelayingLimiterLayer};
pub use erroring::{ErroringLimiter, ErroringLimiterFuture, ErroringLimiterLayer};
pub use limiter::Limiter;

use crate::error::{Classify, ErrorKind};

/// The erroring limiter refused a call: no token was left (Go kit's `ratelimit.ErrLimited`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded")]
pub struct RateLimited;

impl Classify for RateLimited {
    /// The caller sent more than the limit allows.
    fn kind(&self) -> ErrorKind {
        ErrorKind::ResourceExhausted
    }
}

#[cfg(test)]
mod tests;
