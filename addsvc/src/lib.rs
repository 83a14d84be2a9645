//! Go kit's addsvc: "a good example of a fully-featured service", two methods served over every
//! transport at once, logged and instrumented, with a client package that hands a caller the
//! service itself.
//!
//! Run with: `cargo run -p addsvc`, then call it over any transport:
//!
//! ```text
//! $ curl -d'{"a":1,"b":2}' localhost:8081/sum
//! {"v":3}
//! $ cargo run -p addsvc --bin addcli -- -grpc-addr localhost:8082 1 2
//! 1 + 2 = 3
//! ```
//!
//! The three layers of a Go kit service, one module each, and one module per middleware:
//!
//! - [`service`](mod@service): the business logic, [`service::AddService`], and its
//!   errors;
//! - [`logging`], [`instrumenting`]: service middlewares;
//! - [`endpoint`]: one endpoint per method, the endpoint middlewares, and the [`Set`] of both;
//! - [`transport`]: HTTP/JSON, gRPC (JSON-RPC and Thrift come in their own modules), each only
//!   encoding and decoding;
//!
//! [`service`](fn@service) and [`Set::new`] wire them as `main` does, for tests to drive the
//! same thing in-process; [`cli`] is the command line.

pub mod cli;
pub mod client;
pub mod endpoint;
pub mod instrumenting;
pub mod logging;
pub mod service;
pub mod transport;

use kit_core::log::Logger;
use kit_core::metrics::Registry;

pub use crate::endpoint::{Limits, Set};
use crate::instrumenting::{InstrumentingMiddleware, Metrics};
use crate::logging::LoggingMiddleware;
use crate::service::AddService;

// ANCHOR: service
/// `svc` wrapped in the service middlewares: instrumenting, then logging, then `svc`
/// (outermost first, as Go kit's `addservice.New`).
pub fn service<S>(
    svc: S,
    logger: &Logger,
    registry: &Registry,
) -> InstrumentingMiddleware<LoggingMiddleware<S>>
where
    S: AddService + Sync,
{
    InstrumentingMiddleware {
        metrics: Metrics::new(registry),
        next: LoggingMiddleware {
            logger: logger.clone(),
            next: svc,
        },
    }
}
// ANCHOR_END: service
