//! The endpoints: one per method, their request and response types, the endpoint middlewares,
//! and the [`Set`] of both endpoints, which is again the service.

use std::num::NonZeroU32;
use std::sync::Arc;

use kit_core::circuitbreaker::{CircuitBreakerLayer, Settings};
use kit_core::endpoint::{Endpoint, EndpointExt, Failer, ServiceBuilder, endpoint_fn};
use kit_core::error::Classify;
use kit_core::log::{Logger, LoggingLayer};
use kit_core::metrics::{InstrumentLayer, Registry};
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::trace::TraceLayer;
use serde::{Deserialize, Serialize};

use crate::service::{AddService, Error, ServiceError};

// ANCHOR: types
/// The request of Sum: `{"a":1,"b":2}` (keys in any case, as Go reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SumRequest {
    /// The first integer.
    pub a: i64,
    /// The second integer.
    pub b: i64,
}

/// The response of Sum: `{"v":3}`, and the business error, which each transport carries its own
/// way (an HTTP status, the gRPC reply's `err`, a JSON-RPC error object).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SumResponse {
    /// The sum; 0 when `err` is set.
    pub v: i64,
    /// The business error, if the service refused.
    #[serde(skip)]
    pub err: Option<ServiceError>,
}

/// The request of Concat: `{"a":"1","b":"2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ConcatRequest {
    /// The first string.
    pub a: String,
    /// The second string.
    pub b: String,
}

/// The response of Concat: `{"v":"12"}`, and the business error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConcatResponse {
    /// The concatenation; empty when `err` is set.
    pub v: String,
    /// The business error, if the service refused.
    #[serde(skip)]
    pub err: Option<ServiceError>,
}

impl Failer for SumResponse {
    fn failed(&self) -> Option<&(dyn Classify + Send + Sync + 'static)> {
        self.err.as_ref().map(|e| e as _)
    }
}

impl Failer for ConcatResponse {
    fn failed(&self) -> Option<&(dyn Classify + Send + Sync + 'static)> {
        self.err.as_ref().map(|e| e as _)
    }
}
// ANCHOR_END: types

// ANCHOR: endpoints
/// The Sum endpoint of `svc`. A business error travels inside the response, so that the call
/// itself succeeds and no circuit breaker counts it; a failure to reach the service fails it.
pub fn make_sum_endpoint<S>(svc: Arc<S>) -> Endpoint<SumRequest, SumResponse>
where
    S: AddService + Send + Sync + 'static,
{
    endpoint_fn(move |req: SumRequest| {
        let svc = svc.clone();
        async move {
            match svc.sum(req.a, req.b).await {
                Ok(v) => Ok(SumResponse { v, err: None }),
                Err(Error::Service(err)) => Ok(SumResponse {
                    v: 0,
                    err: Some(err),
                }),
                Err(Error::Transport(err)) => Err(err),
            }
        }
    })
}

/// The Concat endpoint of `svc`.
pub fn make_concat_endpoint<S>(svc: Arc<S>) -> Endpoint<ConcatRequest, ConcatResponse>
where
    S: AddService + Send + Sync + 'static,
{
    endpoint_fn(move |req: ConcatRequest| {
        let svc = svc.clone();
        async move {
            match svc.concat(&req.a, &req.b).await {
                Ok(v) => Ok(ConcatResponse { v, err: None }),
                Err(Error::Service(err)) => Ok(ConcatResponse {
                    v: String::new(),
                    err: Some(err),
                }),
                Err(Error::Transport(err)) => Err(err),
            }
        }
    })
}
// ANCHOR_END: endpoints

// ANCHOR: limits
/// The rate limits of the server's endpoints: tokens a second and burst, per method.
///
/// Go kit's addsvc allows Sum 1 call a second (burst 1) and Concat 1 a second (burst 100), which
/// refuses any real load; the defaults here are high enough that a benchmark does not reach
/// them, and `--sum-rate 1 --sum-burst 1` gives Go kit's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Sum calls a second.
    pub sum_rate: NonZeroU32,
    /// Sum calls at once before the rate applies.
    pub sum_burst: NonZeroU32,
    /// Concat calls a second.
    pub concat_rate: NonZeroU32,
    /// Concat calls at once before the rate applies.
    pub concat_burst: NonZeroU32,
}

/// The default rate and burst of each method: a million calls a second.
pub const DEFAULT_LIMIT: NonZeroU32 = match NonZeroU32::new(1_000_000) {
    Some(limit) => limit,
    None => NonZeroU32::MIN,
};

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sum_rate: DEFAULT_LIMIT,
            sum_burst: DEFAULT_LIMIT,
            concat_rate: DEFAULT_LIMIT,
            concat_burst: DEFAULT_LIMIT,
        }
    }
}
// ANCHOR_END: limits

// ANCHOR: set
/// Both endpoints: what every transport serves, and, because it implements [`AddService`],
/// what a client gets back as the service (Go kit's `addendpoint.Set`).
#[derive(Debug, Clone)]
pub struct Set {
    /// The Sum endpoint.
    pub sum: Endpoint<SumRequest, SumResponse>,
    /// The Concat endpoint.
    pub concat: Endpoint<ConcatRequest, ConcatResponse>,
}

/// The namespace of the endpoint metrics: `example_addsvc_requests_total` and
/// `example_addsvc_request_duration_seconds`, Go kit's namespace and subsystem.
pub const METRICS_NAMESPACE: &str = "example_addsvc";

impl Set {
    /// The endpoints of `svc`, each wrapped, outermost first, in instrumenting, logging,
    /// tracing (a span named by the method, when tracing is on), its rate limiter and its
    /// circuit breaker (Go kit's `addendpoint.New`). The limiter is outside the breaker, so that
    /// its refusals do not open the breaker (in Go kit, 6 calls over the limit open it for a
    /// minute).
    pub fn new<S>(svc: S, limits: &Limits, logger: &Logger, registry: &Registry) -> Self
    where
        S: AddService + Send + Sync + 'static,
    {
        let svc = Arc::new(svc);
        let sum = ServiceBuilder::new()
            .layer(InstrumentLayer::new(registry, METRICS_NAMESPACE, "Sum"))
            .layer(LoggingLayer::new(logger.clone(), "Sum"))
            .layer(TraceLayer::new("Sum"))
            .layer(ErroringLimiterLayer::new(Limiter::new(
                limits.sum_rate,
                limits.sum_burst,
            )))
            .layer(CircuitBreakerLayer::new(Settings::default()))
            .service(make_sum_endpoint(svc.clone()));
        let concat = ServiceBuilder::new()
            .layer(InstrumentLayer::new(registry, METRICS_NAMESPACE, "Concat"))
            .layer(LoggingLayer::new(logger.clone(), "Concat"))
            .layer(TraceLayer::new("Concat"))
            .layer(ErroringLimiterLayer::new(Limiter::new(
                limits.concat_rate,
                limits.concat_burst,
            )))
            .layer(CircuitBreakerLayer::new(Settings::default()))
            .service(make_concat_endpoint(svc));
        Set {
            sum: Endpoint::new(sum),
            concat: Endpoint::new(concat),
        }
    }
}

/// The endpoints as the service: a failed call is a transport error, a response that carries a
/// business error is that error.
impl AddService for Set {
    async fn sum(&self, a: i64, b: i64) -> Result<i64, Error> {
        let response = self
            .sum
            .invoke(SumRequest { a, b })
            .await
            .map_err(|e| Error::Transport(e.into()))?;
        match response.err {
            Some(err) => Err(Error::Service(err)),
            None => Ok(response.v),
        }
    }

    async fn concat(&self, a: &str, b: &str) -> Result<String, Error> {
        let request = ConcatRequest {
            a: a.to_owned(),
            b: b.to_owned(),
        };
        let response = self
            .concat
            .invoke(request)
            .await
            .map_err(|e| Error::Transport(e.into()))?;
        match response.err {
            Some(err) => Err(Error::Service(err)),
            None => Ok(response.v),
        }
    }
}
// ANCHOR_END: set

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BasicService;
    use std::time::Duration;

    /// A service whose every call fails to reach its backend.
    struct Broken;

    impl AddService for Broken {
        async fn sum(&self, _: i64, _: i64) -> Result<i64, Error> {
            Err(Error::Transport(kit_core::Error::new(
                kit_core::error::ErrorKind::Unavailable,
                "backend down",
            )))
        }

        async fn concat(&self, _: &str, _: &str) -> Result<String, Error> {
            Ok(String::new())
        }
    }

    fn one() -> NonZeroU32 {
        NonZeroU32::MIN
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_of_the_limiter_do_not_open_the_breaker() {
        let limits = Limits {
            sum_rate: one(),
            sum_burst: one(),
            ..Limits::default()
        };
        let set = Set::new(BasicService, &limits, &Logger::discard(), &Registry::new());
        assert_eq!(set.sum(1, 2).await.ok(), Some(3));
        for _ in 0..10 {
            let err = set.sum(1, 2).await.expect_err("limited");
            assert_eq!(err.to_string(), "rate limit exceeded");
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        // Go kit's breaker would be open for a minute by now.
        assert_eq!(set.sum(1, 2).await.ok(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_open_the_breaker_and_business_errors_do_not() {
        let set = Set::new(
            BasicService,
            &Limits::default(),
            &Logger::discard(),
            &Registry::new(),
        );
        for _ in 0..10 {
            assert!(set.sum(0, 0).await.expect_err("zeroes") == ServiceError::TwoZeroes);
        }
        assert_eq!(set.sum(1, 2).await.ok(), Some(3));

        let broken = Set::new(
            Broken,
            &Limits::default(),
            &Logger::discard(),
            &Registry::new(),
        );
        for _ in 0..6 {
            let err = broken.sum(1, 2).await.expect_err("down");
            assert_eq!(err.to_string(), "backend down");
        }
        let open = broken.sum(1, 2).await.expect_err("open");
        assert_eq!(open.to_string(), "circuit breaker is open");
        assert!(
            matches!(open, Error::Transport(e) if e.kind() == kit_core::error::ErrorKind::Unavailable)
        );
        // Concat's breaker is its own.
        assert!(broken.concat("a", "b").await.is_ok());
        tokio::time::advance(Duration::from_secs(61)).await;
        let trial = broken.sum(1, 2).await.expect_err("still down");
        assert_eq!(trial.to_string(), "backend down");
    }
}
