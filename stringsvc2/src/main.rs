//! Run with: `cargo run -p stringsvc2`
//!
//! stringsvc1's service, endpoints and transport, wrapped in this crate's logging and
//! instrumenting middlewares, with the metrics on `/metrics`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use stringsvc1::cli::{ServeArgs, fail, serve_until_signal, usage_error};
use stringsvc1::service::BasicStringService;
use stringsvc1::transport;
use stringsvc2::cli::LogArgs;
use stringsvc2::instrumenting::{InstrumentingMiddleware, Metrics};
use stringsvc2::logging::LoggingMiddleware;

/// The flags of `stringsvc2`.
#[derive(Debug, Parser)]
#[command(
    name = "stringsvc2",
    version,
    about = "stringsvc1 with logging and Prometheus metrics: the second stage of the Go kit tutorial.",
    after_help = "Try it:\n  curl -XPOST -d'{\"s\":\"hello, world\"}' localhost:8080/uppercase\n  curl localhost:8080/metrics\n\nLogs one line per request on stderr; RUST_LOG filters them (RUST_LOG=warn hides them).\nStops on Ctrl-C or SIGTERM once the requests in flight are answered; a second Ctrl-C stops it at once."
)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,

    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_error(err),
    };

    // ANCHOR: wiring
    let (logger, _log_writer) = match Logger::builder(args.log.log_format).to_stderr() {
        Ok(logger) => logger,
        Err(err) => return fail(err),
    };
    let _ = logger.install();

    let registry = Registry::new();
    let svc = InstrumentingMiddleware {
        metrics: Metrics::new(&registry),
        next: LoggingMiddleware {
            logger: logger.clone(),
            next: BasicStringService,
        },
    };
    let app = transport::app(svc).merge(registry.router());
    tokio::spawn(registry.upkeep(Duration::from_millis(250)));
    // ANCHOR_END: wiring

    serve_until_signal("stringsvc2", &args.serve, app, |addr| {
        tracing::info!(msg = "HTTP", addr = %addr);
    })
    .await
    // Dropping `_log_writer` here flushes the log lines still queued.
}
