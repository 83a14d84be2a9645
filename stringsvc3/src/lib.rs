//! The third stage of the Go kit tutorial: one string service calling others.
//!
//! Run three instances and a proxy in front of them:
//!
//! ```text
//! cargo run -p stringsvc3 -- -listen=:8001 &
//! cargo run -p stringsvc3 -- -listen=:8002 &
//! cargo run -p stringsvc3 -- -listen=:8003 &
//! cargo run -p stringsvc3 -- -listen=:8080 -proxy=localhost:8001,localhost:8002,localhost:8003
//! ```
//!
//! (or `scripts/stringsvc3-fleet`, which does the same). The proxy sends `uppercase` to the
//! instances in turn and answers `count` itself.
//!
//! This crate adds one service middleware to stringsvc2's, in [`proxying`]: a `StringService`
//! whose `uppercase` calls the other instances through client endpoints, each behind a rate
//! limiter and a circuit breaker, balanced round robin, with retries. [`transport`] reports a
//! call the instances could not answer; [`app`] wires both into stringsvc2's app.

pub mod proxying;
pub mod transport;

use axum::Router;
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use kit_core::transport::http::metrics_router;
use stringsvc1::service::BasicStringService;
use stringsvc1::transport::{count_server, routes, uppercase_server};

use crate::proxying::{InstanceError, ProxyOptions, proxying_middleware};
use crate::transport::encode_uppercase_failure;

// ANCHOR: app
/// The HTTP API of an instance that proxies `uppercase` to `instances` (none: it answers
/// itself): stringsvc2's middlewares around the proxying middleware, stringsvc1's routes, this
/// stage's failure answers, and `/metrics`.
pub fn app(
    instances: &[String],
    options: &ProxyOptions,
    logger: &Logger,
    registry: &Registry,
) -> Result<Router, InstanceError> {
    let proxying = proxying_middleware(instances, options, logger)?;
    let svc = stringsvc2::service(proxying(BasicStringService), logger, registry);
    let uppercase = uppercase_server(svc.clone()).error_encoder(encode_uppercase_failure);
    Ok(routes(uppercase, count_server(svc)).merge(metrics_router(registry)))
}
// ANCHOR_END: app
