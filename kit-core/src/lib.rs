//! A toolkit for microservices on [tower]: Go kit's ideas with Rust's types.
//!
//! A service built with kit-core has three layers, each in its own module of the service's
//! crate:
//!
//! - the **service**: business logic, a plain trait and its implementation, no transport;
//! - the **endpoints**: one per method, typed request in and response out ([`endpoint`]), where
//!   cross-cutting middleware (logging, metrics, limits) wraps them;
//! - the **transports**: decoding requests and encoding responses (`transport::http`).
//!
//! Beside them, kit-core has what every layer shares: the kinds of failure every transport
//! understands ([`error`]), the request's deadline and values ([`context`]), and the serving of
//! several listeners with one graceful shutdown ([`shutdown`], and the program runner `run`).
//!
//! How Go kit's pieces map onto kit-core:
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `endpoint.Endpoint` | [`Endpoint<Req, Resp>`](endpoint::Endpoint), a tower `Service` |
//! | `endpoint.Middleware`, `endpoint.Chain` | [`Middleware`](endpoint::Middleware) (a tower `Layer`), [`chain`](endpoint::chain) |
//! | `endpoint.Failer` | [`Failer`](endpoint::Failer) |
//! | `context.Context` | [`Context`](context::Context), the current request's, on its task |
//! | `StatusCoder`, gRPC status codes | [`ErrorKind`](error::ErrorKind), declared by [`Classify`](error::Classify), mapped by each transport |
//! | `httptransport.NewServer`, `NewClient` | `transport::http::Server`, `transport::http::Client` |
//! | `grpctransport.NewServer`, `NewClient` | `transport::grpc::Server`, `transport::grpc::Client` |
//! | `transport/http/jsonrpc` | `transport::jsonrpc::Server`, `transport::jsonrpc::Client` |
//! | (a Thrift processor served by `TSimpleServer`) | `transport::thrift::serve`, `transport::thrift::Pool` |
//! | `encoding/json` | [`json`], Go-compatible on the wire |
//! | `time.Duration` (printing, `flag.Duration`) | [`duration`] |
//! | `net.Listen("tcp", ":8080")` | [`listen::ListenAddr`] |
//! | (left to `net/http`) | [`shutdown`]: one drain deadline for every listener; `run::Program` |
//! | `flag` | `run::parse`: clap, with Go's single-dash flags accepted |
//! | `log` | `log`: logfmt or JSON lines from `tracing` events |
//! | `tracing/opentracing`, `tracing/zipkin` | `trace`: OpenTelemetry over OTLP; W3C and B3 headers ([`context::trace`]) |
//! | `metrics`, `metrics/prometheus` | `metrics`: counters and histograms for Prometheus |
//! | `sd` (instancers, endpointers) | [`sd`]: instance sets, one endpoint per instance, a `tower::discover` adapter |
//! | `sd/etcdv3` | `sd::etcd`: `Instancer`, `Registrar` |
//! | `sd/lb` (balancers, retry) | [`lb`]: round robin, random, retry with a deadline |
//! | `circuitbreaker` | [`circuitbreaker`]: gobreaker's state machine as a tower layer |
//! | `ratelimit` | `ratelimit`: erroring and delaying token-bucket limiters |
//!
//! Because endpoints are tower services, tower's own middleware (timeouts, concurrency limits,
//! load shedding) applies to them unchanged.
//!
//! # Features
//!
//! The parts with heavy dependencies are optional, so a service builds only what it uses:
//!
//! | feature | what it adds | default |
//! |---|---|---|
//! | `http-server` | `transport::http`'s server side on axum and hyper, `transport::http::serve` | yes |
//! | `http-client` | `transport::http::Client` and `Pool`, on hyper's client | yes |
//! | `log` | `log`: the line-writing `tracing` subscriber | no |
//! | `metrics` | `metrics`: a Prometheus registry; with `http-server`, its `/metrics` route | no |
//! | `ratelimit` | `ratelimit`, on governor | no |
//! | `cli` | `run`: flags and the program runner, on clap | no |
//! | `grpc` | `transport::grpc`: serving endpoints over gRPC (tonic on hyper's HTTP/2), gRPC client endpoints | no |
//! | `jsonrpc` | `transport::jsonrpc`: JSON-RPC 2.0 over HTTP; its server with `http-server`, its client with `http-client` | no |
//! | `thrift` | `transport::thrift`: serving a Thrift processor off the async runtime, a Thrift client pool | no |
//! | `trace` | `trace`: OpenTelemetry spans for every transport's calls, exported over OTLP/gRPC when configured (implies `grpc`) | no |
//! | `etcd` | `sd::etcd`: an instancer and a registrar on etcd v3 (its gRPC API, compiled with protox) | no |
//! | `jemalloc` | `allocator`: jemalloc for a service's binary, giving memory back after a surge | no |
//! | `libm` | `cmath`: the C maths functions a service calls, in its binary, so it does not load `libm.so.6` | no |

#[cfg(feature = "jemalloc")]
pub mod allocator;
pub mod circuitbreaker;
// Not in kit-core's own unit tests: they link kit-core twice (the library under test, and the
// library again through the dev-dependency on itself), and one copy of each symbol must do.
#[cfg(all(feature = "libm", target_os = "linux", target_env = "gnu", not(test)))]
pub mod cmath;
pub mod context;
pub mod duration;
pub mod endpoint;
pub mod error;
pub mod json;
pub mod lb;
pub mod listen;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "cli")]
pub mod run;
pub mod sd;
pub mod shutdown;
#[cfg(feature = "trace")]
pub mod trace;
#[cfg(not(feature = "trace"))]
#[path = "trace/off.rs"]
mod trace;
#[cfg(any(
    feature = "http-server",
    feature = "http-client",
    feature = "grpc",
    feature = "thrift"
))]
pub mod transport;

pub use error::{BoxError, Error};
