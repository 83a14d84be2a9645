//! A toolkit for microservices on [tower]: Go kit's ideas with Rust's types.
//!
//! A service built with kit-core has three layers, each in its own module of the service's
//! crate:
//!
//! - the **service**: business logic, a plain trait and its implementation, no transport;
//! - the **endpoints**: one per method, typed request in and response out ([`endpoint`]), where
//!   cross-cutting middleware (logging, metrics, limits) wraps them;
//! - the **transports**: decoding requests and encoding responses ([`transport::http`]).
//!
//! How Go kit's pieces map onto kit-core:
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `endpoint.Endpoint` | [`Endpoint<Req, Resp>`](endpoint::Endpoint), a tower `Service` |
//! | `endpoint.Middleware`, `endpoint.Chain` | [`Middleware`](endpoint::Middleware) (a tower `Layer`), [`chain`](endpoint::chain) |
//! | `endpoint.Failer` | [`Failer`](endpoint::Failer) |
//! | `httptransport.NewServer` | [`transport::http::Server`] |
//! | `httptransport.NewClient` | [`transport::http::Client`] |
//! | `StatusCoder`, `DefaultErrorEncoder` | [`error::StatusCoder`], [`error::status_code`], [`transport::http::encode_error`] |
//! | `encoding/json` | [`json`], Go-compatible on the wire |
//! | `net.Listen("tcp", ":8080")` | [`listen::ListenAddr`] |
//! | (left to `net/http`) | [`shutdown`]: graceful shutdown with a drain deadline |
//! | `log` | [`log`]: logfmt or JSON lines from `tracing` events |
//! | `metrics`, `metrics/prometheus` | [`metrics`]: counters and histograms for Prometheus |
//! | `sd` (instancers, endpointers) | [`sd`]: instance sets, one endpoint per instance, a `tower::discover` adapter |
//! | `sd/lb` (balancers, retry) | [`lb`]: round robin, random, retry with a deadline |
//! | `circuitbreaker` | [`circuitbreaker`]: gobreaker's state machine as a tower layer |
//! | `ratelimit` | [`ratelimit`]: erroring and delaying token-bucket limiters |
//!
//! Because endpoints are tower services, tower's own middleware (timeouts, concurrency limits,
//! load shedding) applies to them unchanged.

pub mod circuitbreaker;
pub mod endpoint;
pub mod error;
pub mod json;
pub mod lb;
pub mod listen;
pub mod log;
pub mod metrics;
pub mod ratelimit;
pub mod sd;
pub mod shutdown;
pub mod transport;

pub use error::BoxError;
