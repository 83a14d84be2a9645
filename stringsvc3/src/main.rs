//! Run with: `cargo run -p stringsvc3 -- -listen=:8080 -proxy=localhost:8001,localhost:8002`
//!
//! stringsvc2's service, with the proxying middleware of this crate innermost, so that the
//! logging and instrumenting middlewares see proxied calls like any other.

use std::ffi::OsString;
use std::num::NonZeroU32;
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
use stringsvc3::proxying::{ProxyOptions, proxying_middleware};

/// The flags of `stringsvc3`.
#[derive(Debug, Parser)]
#[command(
    name = "stringsvc3",
    version,
    about = "stringsvc2 that proxies uppercase to other instances: the third stage of the Go kit tutorial.",
    after_help = "Go-style single-dash flags work too, so the tutorial's lines paste as they are:\n  stringsvc3 -listen=:8001 &\n  stringsvc3 -listen=:8002 &\n  stringsvc3 -listen=:8003 &\n  stringsvc3 -listen=:8080 -proxy=localhost:8001,localhost:8002,localhost:8003\n\nEach instance gets its own rate limiter and circuit breaker (open after more than 5 failures in a row, for 60s); calls go round robin, and a failed call is tried again on the next instance. When every attempt fails, uppercase answers 503 (504 when --retry-timeout passed) with the reason in \"err\".\n\nLogs one line per request on stderr; RUST_LOG filters them. Metrics are on /metrics."
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
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = humantime::parse_duration)]
    retry_timeout: Duration,

    #[command(flatten)]
    log: LogArgs,
}

/// The flags that also take Go's single-dash spelling (`-listen=:8001`).
const LONG_FLAGS: [&str; 8] = [
    "listen",
    "proxy",
    "rate",
    "burst",
    "max-attempts",
    "retry-timeout",
    "log-format",
    "drain-timeout",
];

/// Rewrites Go-style `-flag` and `-flag=value` into `--flag`, for the flags above.
fn go_style(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            let text = arg.to_string_lossy();
            let single = text.strip_prefix('-').filter(|rest| !rest.starts_with('-'));
            match single {
                Some(rest) if LONG_FLAGS.contains(&rest.split('=').next().unwrap_or(rest)) => {
                    OsString::from(format!("-{text}"))
                }
                _ => arg,
            }
        })
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse_from(go_style(std::env::args_os())) {
        Ok(args) => args,
        Err(err) => return usage_error(err),
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

    // ANCHOR: wiring
    let (logger, _log_writer) = match Logger::builder(args.log.log_format)
        .context("listen", &args.serve.listen)
        .caller(true)
        .to_stderr()
    {
        Ok(logger) => logger,
        Err(err) => return fail(err),
    };
    let _ = logger.install();

    let proxying = match proxying_middleware(&instances, &options, &logger) {
        Ok(proxying) => proxying,
        Err(err) => {
            eprintln!("error: --proxy: {err}");
            return ExitCode::from(2);
        }
    };
    let registry = Registry::new();
    let svc = InstrumentingMiddleware {
        metrics: Metrics::new(&registry),
        next: LoggingMiddleware {
            logger: logger.clone(),
            next: proxying(BasicStringService),
        },
    };
    let app = transport::app(svc).merge(registry.router());
    tokio::spawn(registry.upkeep(Duration::from_millis(250)));
    // ANCHOR_END: wiring

    serve_until_signal("stringsvc3", &args.serve, app, |addr| {
        tracing::info!(msg = "HTTP", addr = %addr);
    })
    .await
    // Dropping `_log_writer` here flushes the log lines still queued.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags_become_long_flags() {
        let args = go_style(
            [
                "stringsvc3",
                "-listen=:8001",
                "-proxy",
                "a,b",
                "--rate",
                "5",
                "-h",
                "-x=1",
            ]
            .map(OsString::from),
        );
        assert_eq!(
            args,
            [
                "stringsvc3",
                "--listen=:8001",
                "--proxy",
                "a,b",
                "--rate",
                "5",
                "-h",
                "-x=1"
            ]
            .map(OsString::from)
        );
    }
}
