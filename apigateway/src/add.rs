//! `/addsvc/sum` and `/addsvc/concat`: addsvc's own HTTP JSON API, answered by addsvc's
//! instances over gRPC.

use axum::Router;
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use kit_core::sd::Instancer;

use crate::{Options, observed};

// ANCHOR: routes
/// addsvc's HTTP transport (the same request and answer shapes, the same status for each
/// error) over a [`Set`](addsvc::endpoint::Set) made by addsvc's client package: each
/// instance's gRPC client behind its limiter and breaker, balanced round robin with retries.
///
/// A business error comes back inside the gRPC reply, so it is not retried, and addsvc's
/// transport answers it 400 with its message; a failed call (unreachable, refused, limited) is
/// tried again on the next instance.
pub fn routes(
    instancer: &impl Instancer,
    options: &Options,
    logger: &Logger,
    registry: &Registry,
) -> Router {
    let client = addsvc::client::Options {
        rate: options.rate,
        burst: options.burst,
        timeout: options.attempt_timeout(),
        breaker: options.breaker.clone(),
    };
    let set = addsvc::client::balanced(
        instancer,
        move |instance: &str| addsvc::client::grpc(instance, &client),
        options.max_attempts,
        options.retry_timeout,
    );
    let set = addsvc::endpoint::Set {
        sum: observed(set.sum, "/addsvc/sum", logger, registry),
        concat: observed(set.concat, "/addsvc/concat", logger, registry),
    };
    addsvc::transport::http::routes("/addsvc", &set, logger)
}
// ANCHOR_END: routes
