//! Go kit's profilesvc: a REST service for profiles and their addresses.
//!
//! Run with: `cargo run -p profilesvc`, then
//!
//! ```text
//! $ curl -d '{"id":"1234","name":"Go Kit"}' localhost:8080/profiles/
//! {}
//! $ curl localhost:8080/profiles/1234
//! {"profile":{"id":"1234","name":"Go Kit"}}
//! ```
//!
//! The crate has Go kit's three layers, one module each, and what this port adds:
//!
//! - [`service`](mod@service): the business rules, [`ProfileService`] and its
//!   implementation over a [`repository`] (in memory, or a SQLite file with `--db`);
//! - [`endpoint`]: one endpoint per method, gathered in [`Endpoints`];
//! - [`transport`]: the nine REST routes and their codecs; [`openapi`]: their description,
//!   served at `/openapi.json`;
//! - [`logging`] and [`instrumenting`]: service middlewares, as in stringsvc2;
//! - [`client`]: the client package, a `ProfileService` over HTTP on several instances.
//!
//! [`app`] wires them into the router that the binary serves ([`cli`]) and tests drive.

pub mod cli;
pub mod client;
pub mod endpoint;
pub mod instrumenting;
pub mod logging;
pub mod openapi;
pub mod repository;
pub mod service;
pub mod transport;

use axum::Router;
use kit_core::log::Logger;
use kit_core::metrics::Registry;

use crate::endpoint::Endpoints;
use crate::instrumenting::{InstrumentingMiddleware, Metrics};
use crate::logging::LoggingMiddleware;
use crate::repository::Repository;
use crate::service::{BasicProfileService, ProfileService};
use crate::transport::Routes;

// ANCHOR: app
/// The service over `repository`, wrapped in the middlewares: instrumenting, then logging,
/// then the service (outermost first, as in Go kit).
pub fn service<R: Repository>(
    repository: R,
    logger: &Logger,
    registry: &Registry,
) -> InstrumentingMiddleware<LoggingMiddleware<BasicProfileService<R>>> {
    InstrumentingMiddleware {
        metrics: Metrics::new(registry),
        next: LoggingMiddleware {
            logger: logger.clone(),
            next: BasicProfileService::new(repository),
        },
    }
}

/// Every route of `svc`'s HTTP API: the nine REST routes, `/metrics` for `registry` and
/// `/openapi.json`.
pub fn routes<S>(svc: S, registry: &Registry) -> Routes
where
    S: ProfileService + Send + Sync + 'static,
{
    openapi::with_operations(transport::routes(Endpoints::new(svc)), registry)
}

/// The HTTP API of profiles kept in `repository`, logging to `logger` and recording metrics
/// in `registry`.
pub fn app<R: Repository>(repository: R, logger: &Logger, registry: &Registry) -> Router {
    routes(service(repository, logger, registry), registry).into_router()
}
// ANCHOR_END: app
