//! Go kit's API gateway: one public HTTP address in front of addsvc and stringsvc, routing each
//! call to an instance of the service behind it, found through service discovery.
//!
//! | route | upstream |
//! |---|---|
//! | `/addsvc/sum`, `/addsvc/concat` | addsvc's HTTP JSON in, gRPC to an addsvc instance ([`add`]) |
//! | `/stringsvc/uppercase`, `/stringsvc/count` | the same JSON over HTTP to a stringsvc instance ([`strings`]) |
//! | `/metrics` | the gateway's own metrics, per route |
//!
//! Each route has its own view of the instances (an `Endpointer` over the discovery
//! `Instancer`), with one client per instance behind that instance's rate limiter and circuit
//! breaker, taken round robin, with retries on the next instance within one deadline
//! ([`Options`]). What the instances answer keeps its meaning through the gateway:
//!
//! - a business error is the caller's mistake, the same on every instance: it is not tried
//!   again, and is answered 400 with the service's own message;
//! - an instance that cannot be reached, refuses (its limiter, its breaker) or fails is tried
//!   again on the next instance;
//! - when no attempt succeeded the gateway answers 503, and 504 when the deadline passed, in
//!   JSON, with every attempt's error.
//!
//! Where Go kit's gateway answers business errors 500 and does not retry gRPC failures, this one
//! does what its documentation promises (see the book's differences page).

pub mod add;
pub mod cli;
pub mod strings;

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use kit_core::circuitbreaker::Settings;
use kit_core::endpoint::{Endpoint, ServiceBuilder};
use kit_core::log::{Logger, LoggingLayer};
use kit_core::metrics::{InstrumentLayer, Registry};
use kit_core::sd::Instancer;
use kit_core::transport::http::{method_not_allowed, metrics_router, not_found};

/// How the gateway calls the instances.
#[derive(Debug, Clone)]
pub struct Options {
    /// Attempts per call, each on another instance while there are others, the first included
    /// (Go kit's `-retry.max`).
    pub max_attempts: usize,
    /// How long all the attempts of one call may take together (Go kit's `-retry.timeout`).
    pub retry_timeout: Duration,
    /// Calls a second each instance may receive on each route before the gateway refuses them
    /// itself, and moves on to the next instance.
    pub rate: NonZeroU32,
    /// Calls each instance may receive at once on each route before the rate applies.
    pub burst: NonZeroU32,
    /// Each instance's circuit breaker, per route.
    pub breaker: Settings,
}

impl Options {
    /// How long one attempt may take: the retry timeout shared out between the attempts (at
    /// least a millisecond), so that an instance that hangs leaves time for the next.
    pub fn attempt_timeout(&self) -> Duration {
        let attempts = u32::try_from(self.max_attempts.max(1)).unwrap_or(u32::MAX);
        (self.retry_timeout / attempts).max(Duration::from_millis(1))
    }
}

impl Default for Options {
    /// Go kit's 3 attempts within 500 ms; 1000 calls a second per instance and route with a
    /// burst of 100; gobreaker's breaker, open for 30 s as in Go kit's addsvc client.
    fn default() -> Self {
        Options {
            max_attempts: 3,
            retry_timeout: Duration::from_millis(500),
            rate: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            burst: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            breaker: Settings::new().timeout(Duration::from_secs(30)),
        }
    }
}

// ANCHOR: app
/// The gateway's HTTP API: addsvc's instances from `addsvc`, stringsvc's from `stringsvc`,
/// each route counted and timed in `registry` and logged through `logger`.
pub fn app(
    addsvc: &impl Instancer,
    stringsvc: &impl Instancer,
    options: &Options,
    logger: &Logger,
    registry: &Registry,
) -> Router {
    // Every route at its full path (merged, not nested), so that spans and logs show the path
    // the client asked for.
    add::routes(addsvc, options, logger, registry)
        .merge(strings::routes(stringsvc, options, logger, registry))
        .merge(metrics_router(registry))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
// ANCHOR_END: app

/// A route's endpoint, counted and timed as `apigateway_requests_total{method=<route>}` and
/// `apigateway_request_duration_seconds`, and logged, one line per call.
fn observed<Req, Resp>(
    endpoint: Endpoint<Req, Resp>,
    route: &str,
    logger: &Logger,
    registry: &Registry,
) -> Endpoint<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    Endpoint::new(
        ServiceBuilder::new()
            .layer(InstrumentLayer::new(registry, "apigateway", route))
            .layer(LoggingLayer::new(logger.clone(), route))
            .service(endpoint),
    )
}
