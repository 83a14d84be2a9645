//! The second stage of the Go kit tutorial: stringsvc1 with logging and instrumentation.
//!
//! Run with: `cargo run -p stringsvc2`, then `curl` it as stringsvc1 and read its log lines on
//! stderr and its metrics on `localhost:8080/metrics`.
//!
//! The service, endpoints and transport are stringsvc1's, unchanged. This crate adds only
//! service middlewares, each a struct that wraps any
//! [`StringService`](stringsvc1::service::StringService) and implements it again:
//!
//! - [`logging`]: one log line per call, with its input, output, error and duration;
//! - [`instrumenting`]: request counts, latencies and count results for Prometheus.
//!
//! `main.rs` wires them: instrumenting, then logging, then the service (outermost first);
//! [`cli`] holds the `--log-format` flag, which the next stage takes too.

pub mod cli;
pub mod instrumenting;
pub mod logging;
