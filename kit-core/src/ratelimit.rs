//! Rate limiting middlewares on a shared token bucket (Go kit's `ratelimit` package).
//!
//! A [`Limiter`] is a token bucket: it holds at most `burst` tokens, starts full, and gains one
//! token every replenish interval. Each call takes one token. Two middlewares spend them:
//!
//! - [`ErroringLimiterLayer`] refuses a call at once with [`RateLimited`] when the bucket is
//!   empty, without calling the endpoint (Go kit's `NewErroringLimiter`). Answered over HTTP, that
//!   is a 429 Too Many Requests (see [`status_code`](crate::error::status_code)).
//! - [`DelayingLimiterLayer`] makes the call wait for a token instead (Go kit's
//!   `NewDelayingLimiter`).
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
//! (Rates and bursts are [`NonZeroU32`]s: a bucket that never fills is a configuration error
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
//! The bucket lives behind an [`Arc`]: every clone of a [`Limiter`], and every layer and service
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
//! assert!(err.is::<RateLimited>());
//! assert_eq!(err.to_string(), "rate limit exceeded");
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::BoxError;
use crate::error::StatusCoder;

/// The erroring limiter refused a call: no token was left (Go kit's `ratelimit.ErrLimited`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded")]
pub struct RateLimited;

impl StatusCoder for RateLimited {
    /// 429 Too Many Requests.
    fn status_code(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }
}

/// governor's clock, read from tokio's: nanoseconds since the limiter was made.
#[derive(Debug, Clone)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        // u64 nanoseconds last 584 years; saturate rather than panic beyond.
        Nanos::new(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// A token bucket shared by all its clones (the `*rate.Limiter` Go kit's limiters take).
///
/// It starts full, with `burst` tokens, and gains one token every
/// [`replenish_interval`](Self::replenish_interval) up to `burst`.
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

struct Shared {
    gcra: Gcra,
    quota: Quota,
}

impl Limiter {
    /// A bucket that gains `per_second` tokens a second and holds at most `burst`
    /// (Go's `rate.NewLimiter(rate.Limit(per_second), burst)`).
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::from_quota(Quota::per_second(per_second).allow_burst(burst))
    }

    /// A bucket that gains one token every `replenish_one_per` and holds at most `burst`
    /// (Go's `rate.NewLimiter(rate.Every(replenish_one_per), burst)`), for rates of one a
    /// second or slower, or any rate that is not a whole number per second.
    ///
    /// `None` if `replenish_one_per` is zero.
    pub fn with_period(replenish_one_per: Duration, burst: NonZeroU32) -> Option<Self> {
        Quota::with_period(replenish_one_per)
            .map(|quota| Self::from_quota(quota.allow_burst(burst)))
    }

    fn from_quota(quota: Quota) -> Self {
        let clock = TokioClock {
            start: Instant::now(),
        };
        Limiter {
            shared: Arc::new(Shared {
                gcra: RateLimiter::direct_with_clock(quota, clock),
                quota,
            }),
        }
    }

    /// The most tokens the bucket holds.
    pub fn burst(&self) -> NonZeroU32 {
        self.shared.quota.burst_size()
    }

    /// How long the bucket takes to gain one token.
    pub fn replenish_interval(&self) -> Duration {
        self.shared.quota.replenish_interval()
    }

    /// Takes a token if there is one (Go's `limit.Allow()`).
    pub fn check(&self) -> Result<(), RateLimited> {
        self.acquire().map_err(|_| RateLimited)
    }

    /// Waits until a token is available and takes it (Go's `limit.Wait(ctx)`).
    ///
    /// The wait is a tokio sleep until the time governor says a token will be there, repeated
    /// if another caller took it first. Dropping the future stops waiting, and a dropped waiter
    /// has taken nothing. Waiters are not served in order of arrival.
    pub async fn until_ready(&self) {
        while let Err(wait) = self.acquire() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token, or says how long until one is available.
    fn acquire(&self) -> Result<(), Duration> {
        let gcra = &self.shared.gcra;
        gcra.check()
            .map_err(|not_until| not_until.wait_time_from(gcra.clock().now()))
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("burst", &self.burst())
            .field("replenish_interval", &self.replenish_interval())
            .finish()
    }
}

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
        let kind = match self.limiter.check() {
            Ok(()) => Kind::Called {
                future: self.inner.call(request),
            },
            Err(RateLimited) => Kind::Refused,
        };
        ErroringLimiterFuture { kind }
    }
}

pin_project! {
    /// The response future of [`ErroringLimiter`].
    pub struct ErroringLimiterFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Refused,
        Called { #[pin] future: F },
    }
}

impl<F> fmt::Debug for ErroringLimiterFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErroringLimiterFuture")
            .field("refused", &matches!(self.kind, Kind::Refused))
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
        match self.project().kind.project() {
            KindProj::Refused => Poll::Ready(Err(RateLimited.into())),
            KindProj::Called { future } => future.poll(cx).map_err(Into::into),
        }
    }
}

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
/// one. There is no deadline of its own: put a timeout layer outside to bound the wait, as Go
/// kit bounds it with the context's deadline.
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
                Err(wait) => this.sleep.set(Some(tokio::time::sleep(wait))),
            }
        }
        this.call.poll(cx).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};

    fn nonzero(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    /// An endpoint that echoes, and counts its calls.
    fn counted() -> (Endpoint<u32, u32>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let endpoint = endpoint_fn(move |n: u32| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, std::convert::Infallible>(n) }
        });
        (endpoint, calls)
    }

    #[test]
    fn rate_limited_is_429() {
        assert_eq!(RateLimited.to_string(), "rate limit exceeded");
        assert_eq!(RateLimited.status_code(), StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn quotas() {
        let limiter = Limiter::new(nonzero(100), nonzero(10));
        assert_eq!(limiter.burst(), nonzero(10));
        assert_eq!(limiter.replenish_interval(), Duration::from_millis(10));
        let slow = Limiter::with_period(Duration::from_secs(2), nonzero(1)).expect("a period");
        assert_eq!(slow.replenish_interval(), Duration::from_secs(2));
        assert!(Limiter::with_period(Duration::ZERO, nonzero(1)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_burst_passes_then_calls_are_refused() {
        let limiter = Limiter::new(nonzero(1), nonzero(3));
        for n in 0..3 {
            assert_eq!(limiter.check(), Ok(()), "token {n}");
        }
        assert_eq!(limiter.check(), Err(RateLimited));
        assert_eq!(limiter.check(), Err(RateLimited));
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_come_back_at_the_rate_up_to_the_burst() {
        let limiter = Limiter::new(nonzero(2), nonzero(3));
        for _ in 0..3 {
            limiter.check().expect("the bucket starts full");
        }
        tokio::time::advance(Duration::from_millis(499)).await;
        assert_eq!(limiter.check(), Err(RateLimited));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(limiter.check(), Ok(()), "one token every 500 ms");
        assert_eq!(limiter.check(), Err(RateLimited));

        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..3 {
            limiter.check().expect("refilled");
        }
        assert_eq!(
            limiter.check(),
            Err(RateLimited),
            "never more than the burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_period_allows_rates_below_one_per_second() {
        let limiter = Limiter::with_period(Duration::from_secs(10), nonzero(2)).expect("a period");
        limiter.check().expect("first");
        limiter.check().expect("second");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(limiter.check(), Err(RateLimited));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_the_bucket() {
        let limiter = Limiter::new(nonzero(1), nonzero(2));
        let clone = limiter.clone();
        limiter.check().expect("first");
        clone.check().expect("second");
        assert_eq!(limiter.check(), Err(RateLimited));
        assert_eq!(clone.check(), Err(RateLimited));
    }

    #[tokio::test(start_paused = true)]
    async fn the_erroring_limiter_refuses_without_calling_the_endpoint() {
        let (endpoint, calls) = counted();
        let layer = ErroringLimiterLayer::new(Limiter::new(nonzero(1), nonzero(2)));
        let limited = Endpoint::new(ServiceBuilder::new().layer(layer.clone()).service(endpoint));

        assert_eq!(limited.invoke(1).await.expect("token 1"), 1);
        assert_eq!(limited.clone().invoke(2).await.expect("token 2"), 2);
        let error = limited.invoke(3).await.expect_err("no token left");
        assert!(error.is::<RateLimited>(), "{error}");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // Another service from the same layer spends the same bucket.
        let (other, other_calls) = counted();
        let other = Endpoint::new(layer.layer(other));
        assert!(other.invoke(4).await.is_err());
        assert_eq!(other_calls.load(Ordering::SeqCst), 0);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(other.invoke(5).await.expect("refilled"), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_erroring_limiter_passes_readiness_and_errors_on() {
        let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
        handle.allow(0);
        let layer = ErroringLimiterLayer::new(Limiter::new(nonzero(1), nonzero(1)));
        let mut service = task::spawn(layer.layer(mock));
        assert_pending!(service.enter(|cx, mut service| service.poll_ready(cx)));
        handle.allow(1);
        assert!(service.is_woken());
        assert_ready_ok!(service.enter(|cx, mut service| service.poll_ready(cx)));
        let mut call = task::spawn(service.call("ping"));
        let (_, respond) = handle.next_request().await.expect("the call arrives");
        respond.send_error("inner failure");
        let error = assert_ready!(call.poll()).expect_err("the inner error");
        assert_eq!(error.to_string(), "inner failure");
    }

    #[tokio::test(start_paused = true)]
    async fn until_ready_waits_exactly_until_a_token_is_due() {
        let limiter = Limiter::new(nonzero(1), nonzero(1));
        let start = Instant::now();
        limiter.until_ready().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.until_ready().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_millis(300)).await;
        limiter.until_ready().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delaying_limiter_spaces_calls_at_the_rate() {
        let (endpoint, calls) = counted();
        let limited: Endpoint<u32, u32> = Endpoint::new(
            ServiceBuilder::new()
                .layer(DelayingLimiterLayer::new(Limiter::new(
                    nonzero(2),
                    nonzero(1),
                )))
                .service(endpoint),
        );
        let start = Instant::now();
        let mut waiting = Vec::new();
        for n in 0..4 {
            let limited = limited.clone();
            waiting.push(tokio::spawn(async move {
                let answer = limited.invoke(n).await.expect("delayed, not refused");
                (answer, start.elapsed())
            }));
        }
        let mut finished = Vec::new();
        for task in waiting {
            finished.push(task.await.expect("join"));
        }
        let mut times: Vec<_> = finished.iter().map(|(_, took)| *took).collect();
        times.sort();
        assert_eq!(
            times,
            [0, 500, 1000, 1500].map(Duration::from_millis),
            "{finished:?}"
        );
        let mut answers: Vec<_> = finished.iter().map(|(answer, _)| *answer).collect();
        answers.sort();
        assert_eq!(answers, [0, 1, 2, 3]);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_call_reaches_the_endpoint_only_with_a_token() {
        let (endpoint, calls) = counted();
        let limiter = Limiter::new(nonzero(1), nonzero(1));
        limiter.check().expect("empty the bucket");
        let limited = Endpoint::new(DelayingLimiterLayer::new(limiter).layer(endpoint));
        let mut call = task::spawn(limited.invoke(7));
        assert_pending!(call.poll());
        tokio::time::advance(Duration::from_millis(999)).await;
        assert_pending!(call.poll());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(call.is_woken());
        assert_eq!(assert_ready_ok!(call.poll()), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn each_delayed_call_takes_exactly_one_token() {
        let limiter = Limiter::new(nonzero(1), nonzero(3));
        let (endpoint, _) = counted();
        let limited = Endpoint::new(DelayingLimiterLayer::new(limiter.clone()).layer(endpoint));
        limited.invoke(1).await.expect("a token is there");
        limiter.check().expect("the second token is left");
        limiter.check().expect("the third token is left");
        assert_eq!(limiter.check(), Err(RateLimited));

        let start = Instant::now();
        limited.invoke(2).await.expect("waited for a token");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(1)).await;
        limiter
            .check()
            .expect("the waiter took only the token it waited for");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_takes_no_token_and_blocks_nobody() {
        let limiter = Limiter::new(nonzero(1), nonzero(1));
        let (endpoint, calls) = counted();
        let limited = Endpoint::new(DelayingLimiterLayer::new(limiter.clone()).layer(endpoint));
        limiter.check().expect("empty the bucket");

        let mut dropped = task::spawn(limited.invoke(1));
        let mut kept = task::spawn(limited.invoke(2));
        assert_pending!(dropped.poll());
        assert_pending!(kept.poll());
        drop(dropped);

        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            assert_ready_ok!(kept.poll()),
            2,
            "the other waiter got the token"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the dropped call never ran"
        );
        assert_eq!(
            limiter.check(),
            Err(RateLimited),
            "one token was due, and it was spent"
        );

        // A waiter dropped on its own leaves the next token in the bucket.
        let mut dropped = task::spawn(limiter.until_ready());
        assert_pending!(dropped.poll());
        drop(dropped);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.check(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delaying_limiter_is_always_ready_and_waits_for_the_inner_service_after_the_token()
    {
        let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
        handle.allow(0);
        let limiter = Limiter::new(nonzero(1), nonzero(1));
        let mut service = DelayingLimiterLayer::new(limiter.clone()).layer(mock);
        let mut call = task::spawn(service.ready().await.expect("ready").call("ping"));
        assert_pending!(call.poll());
        assert_eq!(limiter.check(), Err(RateLimited), "the call took the token");
        handle.allow(1);
        assert!(call.is_woken(), "inner readiness wakes the call");
        assert_pending!(call.poll());
        let (request, respond) = handle.next_request().await.expect("the call arrives");
        assert_eq!(request, "ping");
        respond.send_response("pong");
        assert_eq!(assert_ready_ok!(call.poll()), "pong");
    }
}
