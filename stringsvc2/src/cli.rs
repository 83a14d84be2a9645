//! The command line this stage adds to stringsvc1's, shared with the stages after it: how to
//! log, and a `main` that serves an app with a logger and metrics.

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::log::{Format, LogGuard, Logger, LoggerBuilder};
use kit_core::metrics::Registry;
use kit_core::run::{Program, ServeArgs, fail};

/// How the service logs: `--log-format`, with `RUST_LOG` for filtering.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written: logfmt (key=value) or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "logfmt",
        value_parser = PossibleValuesParser::new(["logfmt", "json"]).try_map(|s| s.parse::<Format>())
    )]
    pub log_format: Format,
}

/// How often histograms fold their samples into buckets between scrapes.
const UPKEEP: Duration = Duration::from_millis(250);

// ANCHOR: serve
/// Installs the logger `builder` describes, builds the app with it and a new metrics registry,
/// and serves it on `serve.listen` until a signal, logging `msg=HTTP addr=...` once it listens.
///
/// `app` may refuse to be built (a bad `--proxy`, say): its error is a usage error, one line and
/// exit status 2. Dropping the log writer's guard at the end flushes the lines still queued.
pub async fn serve<E: std::fmt::Display>(
    name: &str,
    serve: &ServeArgs,
    builder: LoggerBuilder,
    app: impl FnOnce(&Logger, &Registry) -> Result<Router, E>,
) -> ExitCode {
    serve_with(name, serve, builder, app, |program| program).await
}

/// [`serve`], with the program changed by `customize` before it runs: the place to add a
/// [`Hook`](kit_core::run::Hook), such as a registration in a service registry.
pub async fn serve_with<E: std::fmt::Display>(
    name: &str,
    serve: &ServeArgs,
    builder: LoggerBuilder,
    app: impl FnOnce(&Logger, &Registry) -> Result<Router, E>,
    customize: impl FnOnce(Program) -> Program,
) -> ExitCode {
    let (logger, _log_writer): (Logger, LogGuard) = match builder.to_stderr() {
        Ok(logger) => logger,
        Err(err) => return fail(err),
    };
    let _ = logger.install();

    let registry = Registry::new();
    let app = match app(&logger, &registry) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    tokio::spawn(registry.upkeep(UPKEEP));

    let program = Program::with_args(name, serve).http(&serve.listen, app, |addr| {
        tracing::info!(msg = "HTTP", addr = %addr);
    });
    customize(program).run().await
}
// ANCHOR_END: serve
