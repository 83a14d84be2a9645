//! The second stage of the Go kit tutorial: stringsvc1 with logging and instrumentation.
//!
//! Run with: `cargo run -p stringsvc2`, then `curl` it as stringsvc1 and read its log lines on
//! stderr and its metrics on `localhost:8080/metrics`.
//!
//! The service, endpoints and transport are stringsvc1's, unchanged. This crate adds only
//! service middlewares, each a struct that wraps any
//! [`StringService`] and implements it again:
//!
//! - [`logging`]: one log line per call, with its input, output, error and duration;
//! - [`instrumenting`]: request counts, latencies and count results for Prometheus.
//!
//! [`service`] wraps a service in both, and [`app`] serves it with stringsvc1's routes and
//! `/metrics`; [`cli`] holds this stage's flags and the `main` that the next stage shares.

pub mod cli;
pub mod instrumenting;
pub mod logging;

use axum::Router;
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use kit_core::transport::http::metrics_router;
use stringsvc1::service::StringService;
use stringsvc1::transport;

use crate::instrumenting::{InstrumentingMiddleware, Metrics};
use crate::logging::LoggingMiddleware;

// ANCHOR: service
/// `svc` wrapped in this stage's middlewares: instrumenting, then logging, then `svc`
/// (outermost first, as in Go kit), logging to `logger` and recording in `registry`.
pub fn service<S>(
    svc: S,
    logger: &Logger,
    registry: &Registry,
) -> InstrumentingMiddleware<LoggingMiddleware<S>>
where
    S: StringService + Sync,
{
    InstrumentingMiddleware {
        metrics: Metrics::new(registry),
        next: LoggingMiddleware {
            logger: logger.clone(),
            next: svc,
        },
    }
}

/// The HTTP API: stringsvc1's routes for the wrapped service, and the metrics on `/metrics`.
pub fn app<S>(svc: S, logger: &Logger, registry: &Registry) -> Router
where
    S: StringService + Clone + Send + Sync + 'static,
{
    transport::app(service(svc, logger, registry)).merge(metrics_router(registry))
}
// ANCHOR_END: service
