//! Run with: `cargo run -p stringsvc2`
//!
//! stringsvc1's service, endpoints and transport, wrapped in this crate's logging and
//! instrumenting middlewares, with the metrics on `/metrics`.

use std::convert::Infallible;
use std::process::ExitCode;

use kit_core::log::Logger;
use kit_core::run::{self, ServeArgs};
use stringsvc1::service::BasicStringService;
use stringsvc2::cli::{LogArgs, serve};

/// The flags of `stringsvc2`.
#[derive(Debug, clap::Parser)]
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

/// jemalloc rather than the system's malloc: it gives the memory of a surge of connections back
/// (see `kit_core::allocator`).
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    kit_core::allocator::purge_in_background();
    let args: Args = match run::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    // ANCHOR: wiring
    let logger = Logger::builder(args.log.log_format);
    serve("stringsvc2", &args.serve, logger, |logger, registry| {
        Ok::<_, Infallible>(stringsvc2::app(BasicStringService, logger, registry))
    })
    .await
    // ANCHOR_END: wiring
}
