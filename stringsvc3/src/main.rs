//! Run with: `cargo run -p stringsvc3 -- -listen=:8080 -proxy=localhost:8001,localhost:8002`
//!
//! stringsvc2's service, with the proxying middleware of this crate innermost, so that the
//! logging and instrumenting middlewares see proxied calls like any other.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use kit_core::duration;
use kit_core::log::Logger;
use kit_core::run::{self, ServeArgs};
use kit_core::sd::etcd::RegisterArgs;
use kit_core::trace::{self, TraceArgs};
use stringsvc2::cli::{LogArgs, serve_with};
use stringsvc3::proxying::ProxyOptions;

/// The flags of `stringsvc3`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "stringsvc3",
    version,
    about = "stringsvc2 that proxies uppercase to other instances: the third stage of the Go kit tutorial.",
    after_help = "Go-style single-dash flags work too, so the tutorial's lines paste as they are:\n  stringsvc3 -listen=:8001 &\n  stringsvc3 -listen=:8002 &\n  stringsvc3 -listen=:8003 &\n  stringsvc3 -listen=:8080 -proxy=localhost:8001,localhost:8002,localhost:8003\n\nEach instance gets its own rate limiter and circuit breaker (open after more than 5 failures in a row, for 60s); calls go round robin, and a failed call is tried again on the next instance. When every attempt fails, uppercase answers 503 (504 when --retry-timeout passed) with the reason in \"err\".\n\nA caller's X-Request-Timeout and X-Request-Id headers travel on to the instances, what is left of the deadline bounding the attempts.\n\nLogs one line per request on stderr, and one per call to an instance; RUST_LOG filters them. Metrics are on /metrics."
)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,

    /// Instances to send uppercase to, comma-separated: host:port or URLs (http:// is added when
    /// missing, /uppercase when there is no path). Without it, the service answers by itself.
    #[arg(long, value_name = "INSTANCES", default_value = "")]
    proxy: String,

    /// Requests per second each instance may receive before calls to it are refused.
    #[arg(long, value_name = "N", default_value = "100")]
    rate: NonZeroU32,

    /// Requests each instance may receive at once, before the rate applies.
    #[arg(long, value_name = "N", default_value = "100")]
    burst: NonZeroU32,

    /// Attempts per call, each on the next instance, the first included.
    #[arg(long, value_name = "N", default_value = "3", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// How long all the attempts of one call may take together (for example 250ms, 1s).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = duration::parse)]
    retry_timeout: Duration,

    #[command(flatten)]
    log: LogArgs,

    #[command(flatten)]
    trace: TraceArgs,
    /// Where to register this instance's HTTP address (as service stringsvc), for the
    /// apigateway to find.
    #[command(flatten)]
    etcd: RegisterArgs,
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
    let instances: Vec<String> = args
        .proxy
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect();
    let options = ProxyOptions {
        rate: args.rate,
        burst: args.burst,
        max_attempts: args.max_attempts as usize,
        retry_timeout: args.retry_timeout,
        ..ProxyOptions::default()
    };
    let registration = match args.etcd.registration("stringsvc", 0) {
        Ok(registration) => registration,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    // ANCHOR: wiring
    // With an OTLP endpoint, a span for every request and every call to an instance.
    let tracing = match trace::init("stringsvc3", args.trace.otlp_endpoint.as_deref()) {
        Ok(tracing) => tracing,
        Err(err) => return run::fail(err),
    };
    let logger = Logger::builder(args.log.log_format)
        .context("listen", &args.serve.listen)
        .caller(true);
    let app = |logger: &Logger, registry: &_| {
        if let Some(tracing) = &tracing {
            tracing.count_in(registry);
        }
        stringsvc3::app(&instances, &options, logger, registry).map_err(|e| format!("--proxy: {e}"))
    };
    // With --etcd, the instance registers once it listens, and deregisters as it stops.
    let exit = serve_with(
        "stringsvc3",
        &args.serve,
        logger,
        app,
        |program| match registration {
            Some(registration) => program.hook(registration),
            None => program,
        },
    )
    .await;
    // The last spans, given two seconds to leave.
    if let Some(tracing) = tracing {
        tracing.shutdown(Duration::from_secs(2)).await;
    }
    exit
    // ANCHOR_END: wiring
}
