//! A circuit breaker middleware: stop calling a dependency that keeps failing, and try it again
//! later (Go kit's `circuitbreaker.Gobreaker`, with the semantics of `sony/gobreaker`).
//!
//! A breaker sits in front of an endpoint, usually a client endpoint that calls another service.
//! While the calls succeed it is **closed** and lets everything through, counting outcomes. When
//! the counts say the dependency is broken ([`Settings::ready_to_trip`], by default more than 5
//! consecutive failures) it **opens**: calls fail at once with [`BreakerError::Open`], without
//! reaching the endpoint, so a dead dependency costs nothing and gets time to recover. After
//! [`Settings::timeout`] (60 seconds by default) it turns **half-open** and lets a few trial
//! calls through ([`Settings::max_requests`], 1 by default); calls beyond those fail with
//! [`BreakerError::TooManyRequests`]. If the trials all succeed, it closes again; if any fails, it
//! opens for another timeout.
//!
//! | Go kit / gobreaker | kit-core |
//! |---|---|
//! | `gobreaker.NewCircuitBreaker(gobreaker.Settings{...})` | [`CircuitBreaker::new`]`(`[`Settings`]`)` |
//! | `circuitbreaker.Gobreaker(cb)` (an `endpoint.Middleware`) | [`CircuitBreakerLayer`] |
//! | `cb.State()`, `cb.Counts()` | [`CircuitBreaker::state`], [`CircuitBreaker::counts`] |
//! | `gobreaker.ErrOpenState`, `gobreaker.ErrTooManyRequests` | [`BreakerError::Open`], [`BreakerError::TooManyRequests`] |
//!
//! The state machine is gobreaker's: every change of state starts a new *generation* with zeroed
//! [`Counts`], and the outcome of a call that started in an earlier generation is ignored, so a
//! slow call that began before the breaker opened cannot close it again. Time is read lazily,
//! when a call arrives or the state is read; no timer runs in the background. Time is tokio's
//! clock ([`tokio::time::Instant`]), so tests can pause and advance it.
//!
//! Two things have no Go counterpart, because a Rust future can be dropped half-way:
//!
//! - a call whose response future is dropped before it completes (the caller gave up, a timeout
//!   layer outside the breaker fired) counts as neither a success nor a failure, and gives its
//!   request back: in the half-open state, that frees its trial slot, so an abandoned trial cannot
//!   leave the breaker half-open with no slot left, forever;
//! - a call whose endpoint panics counts as a failure, as gobreaker counts a panic.
//!
//! All clones of a [`CircuitBreaker`], and every layer and service built from one, share a single
//! state; a [`CircuitBreakerLayer`] made with [`CircuitBreakerLayer::new`] shares its breaker with
//! every service it wraps. Reading [`state`](CircuitBreaker::state) is how tests and metrics
//! observe it.
//!
//! A [`BreakerError`] is an [`Unavailable`](crate::error::ErrorKind::Unavailable) failure: over
//! HTTP, a 503 Service Unavailable.
//!
//! The module has two parts: the state machine, [`CircuitBreaker`] with its [`Settings`] and
//! [`Counts`], which knows nothing of services; and the tower [`CircuitBreakerLayer`] that
//! consults it around each call.
//!
//! ```
//! use std::time::Duration;
//! use kit_core::circuitbreaker::{BreakerError, CircuitBreaker, Settings, State};
//! use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
//! use kit_core::error::ErrorExt;
//! use kit_core::BoxError;
//!
//! # tokio_test::block_on(async {
//! let breaker = CircuitBreaker::new(
//!     Settings::new()
//!         .timeout(Duration::from_secs(30))
//!         .ready_to_trip(|counts| counts.consecutive_failures >= 2),
//! );
//! let upstream: Endpoint<u32, u32> =
//!     endpoint_fn(|_: u32| async { Err::<u32, _>("connection refused") });
//! let guarded: Endpoint<u32, u32> = Endpoint::new(
//!     ServiceBuilder::new()
//!         .layer(breaker.layer())
//!         .service(upstream),
//! );
//!
//! for _ in 0..2 {
//!     let err = guarded.invoke(1).await.unwrap_err();
//!     assert_eq!(err.to_string(), "connection refused");
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let err: BoxError = guarded.invoke(1).await.unwrap_err();
//! assert_eq!(err.find::<BreakerError>(), Some(&BreakerError::Open));
//! # });
//! ```

mod breaker;
mod layer;

pub use breaker::{CircuitBreaker, Counts, DEFAULT_TIMEOUT, Settings, State};
pub use layer::{CircuitBreakerFuture, CircuitBreakerLayer, CircuitBreakerService};

use crate::error::{Classify, ErrorKind};

/// Why the circuit breaker refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError {
    /// The breaker is open: the endpoint failed too often recently and is not called.
    #[error("circuit breaker is open")]
    Open,
    /// The breaker is half-open and already lets its trial requests through.
    #[error("too many requests")]
    TooManyRequests,
}

impl Classify for BreakerError {
    /// The dependency is deemed down, and the caller may retry later.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

#[cfg(test)]
mod tests;
