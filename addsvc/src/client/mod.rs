//! The client package: addsvc over any of its transports, handed to the caller as the service
//! itself (Go kit's `addtransport.New*Client`, the "client library pattern").
//!
//! Each constructor takes one instance's address and returns a [`Set`], which implements
//! [`AddService`](crate::service::AddService): the caller writes `svc.sum(1, 2).await` whatever
//! the transport. Every call goes through the instance's rate limiter, its circuit breaker and
//! a timeout ([`Options`]), and business errors come back as the service's own values
//! ([`ServiceError`](crate::service::ServiceError)) on every transport, where Go kit's HTTP,
//! JSON-RPC and Thrift clients lose them. Several instances behind discovery, balancing and
//! retries are one [`Set`] too: see [`balanced`].

mod grpc;
mod http;
mod jsonrpc;
mod thrift;

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use kit_core::circuitbreaker::{CircuitBreakerLayer, Settings};
use kit_core::context::DeadlineLayer;
use kit_core::endpoint::{Endpoint, ServiceBuilder};
use kit_core::lb::{RoundRobin, retry};
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::sd::{Endpointer, Instancer};

pub use self::grpc::grpc;
pub use self::http::http;
pub use self::jsonrpc::jsonrpc;
pub use self::thrift::thrift;
use crate::endpoint::Set;

// ANCHOR: options
/// What each instance's client is wrapped in.
#[derive(Debug, Clone)]
pub struct Options {
    /// Calls a second to the instance, both methods together, before the client refuses them
    /// itself (`rate limit exceeded`).
    pub rate: NonZeroU32,
    /// Calls at once before the rate applies.
    pub burst: NonZeroU32,
    /// How long one call may take, connecting included.
    pub timeout: Duration,
    /// Each method's circuit breaker (gobreaker's defaults: open after more than 5 failures in
    /// a row, for 60 seconds).
    pub breaker: Settings,
}

impl Default for Options {
    /// 100 calls a second with a burst of 100, 5 seconds a call, gobreaker's breaker.
    fn default() -> Self {
        let hundred = NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN);
        Options {
            rate: hundred,
            burst: hundred,
            timeout: Duration::from_secs(5),
            breaker: Settings::default(),
        }
    }
}
// ANCHOR_END: options

/// An instance address the clients cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instance {instance:?}: {reason}")]
pub struct InstanceError {
    /// The address as given.
    pub instance: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InstanceError {
    fn new(instance: &str, reason: impl fmt::Display) -> Self {
        InstanceError {
            instance: instance.to_owned(),
            reason: reason.to_string(),
        }
    }
}

// ANCHOR: instance
/// One instance's endpoints, each wrapped, outermost first, in the instance's rate limiter
/// (shared by both methods, as in Go kit), its own circuit breaker and the call's timeout. The
/// limiter is outside the breaker, so that its refusals do not count as the instance's
/// failures; business errors come back inside responses, so they do not either.
pub fn instance(set: Set, options: &Options) -> Set {
    let limiter = Limiter::new(options.rate, options.burst);
    Set {
        sum: wrap(set.sum, &limiter, options),
        concat: wrap(set.concat, &limiter, options),
    }
}

fn wrap<Req, Resp>(
    client: Endpoint<Req, Resp>,
    limiter: &Limiter,
    options: &Options,
) -> Endpoint<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    Endpoint::new(
        ServiceBuilder::new()
            .layer(ErroringLimiterLayer::new(limiter.clone()))
            .layer(CircuitBreakerLayer::new(options.breaker.clone()))
            .layer(DeadlineLayer::new(options.timeout))
            .service(client),
    )
}
// ANCHOR_END: instance

// ANCHOR: balanced
/// The instances `instancer` lists, each made into a client by `make` (one of this module's
/// constructors), as one [`Set`]: each call goes to the next instance round robin and is tried
/// again on the next, up to `max_attempts` times within `timeout` (kit-core's `sd`, `lb` and
/// `retry`, Go kit's `sd.NewEndpointer`, `lb.NewRoundRobin` and `lb.Retry`).
///
/// An instance's client is made once and kept while the instance is listed, breakers and
/// limiters included; an instance `make` refuses is left out (and reported by the endpointer).
pub fn balanced<F>(
    instancer: &impl Instancer,
    make: F,
    max_attempts: usize,
    timeout: Duration,
) -> Set
where
    F: Fn(&str) -> Result<Set, InstanceError> + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let sets = {
        let make = make.clone();
        Endpointer::new(instancer, move |instance: &str| {
            make(instance).map(|set| set.sum)
        })
    };
    let concats = Endpointer::new(instancer, move |instance: &str| {
        make(instance).map(|set| set.concat)
    });
    Set {
        sum: retry(max_attempts, timeout, RoundRobin::new(sets)),
        concat: retry(max_attempts, timeout, RoundRobin::new(concats)),
    }
}
// ANCHOR_END: balanced
