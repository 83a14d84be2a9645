//! The command line: flags, start-up, and shutdown on a signal.
//!
//! `main` stays thin: it parses the flags and hands the app to [`serve_until_signal`], which the
//! later stages of the tutorial call too.

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::Parser;
use kit_core::listen::ListenAddr;
use kit_core::shutdown::{self, Shutdown, Signals};

use crate::service::BasicStringService;
use crate::transport;

/// The flags of `stringsvc1`.
#[derive(Debug, Parser)]
#[command(
    name = "stringsvc1",
    version,
    about = "A string service with JSON over HTTP: the first stage of the Go kit tutorial.",
    after_help = "Try it:\n  curl -XPOST -d'{\"s\":\"hello, world\"}' localhost:8080/uppercase\n  curl -XPOST -d'{\"s\":\"hello, world\"}' localhost:8080/count\n\nStops on Ctrl-C or SIGTERM once the requests in flight are answered; a second Ctrl-C stops it at once."
)]
pub struct Args {
    /// Where to listen and how to stop.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The flags every stage of the tutorial shares: where to listen, how long to drain.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on: :PORT for every interface, or HOST:PORT for one.
    #[arg(long, value_name = "ADDR", default_value = ":8080")]
    pub listen: ListenAddr,

    /// On Ctrl-C or SIGTERM, how long requests in flight may take to finish before the server
    /// stops anyway (for example 10s, 500ms, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
}

// ANCHOR: serve
/// The whole program: parse flags, listen, serve until a signal.
///
/// Failures print one line on stderr and exit non-zero: 2 for bad flags, 1 for the rest.
pub async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => return usage_error(err),
    };
    let app = transport::app(BasicStringService);
    serve_until_signal("stringsvc1", &args.serve, app, |addr| {
        eprintln!("stringsvc1 listening on {addr}");
    })
    .await
}

/// Binds `args.listen`, calls `announce` with the address bound (the real port when `:0` was
/// asked for), serves `app` until Ctrl-C or SIGTERM, then drains for at most
/// `args.drain_timeout`. Start-up failures print one line on stderr and give exit status 1.
pub async fn serve_until_signal(
    name: &str,
    args: &ServeArgs,
    app: Router,
    announce: impl FnOnce(&ListenAddr),
) -> ExitCode {
    // Before binding: once clients can connect, a signal must find its handler.
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(err) => return fail(format_args!("cannot install signal handlers: {err}")),
    };
    let listener = match args.listen.bind().await {
        Ok(listener) => listener,
        Err(err) => return fail(err),
    };
    let port = listener
        .local_addr()
        .map_or(args.listen.port(), |a| a.port());
    announce(&args.listen.with_port(port));

    match shutdown::serve(listener, app, signals.graceful(), args.drain_timeout).await {
        Ok(Shutdown::Drained) => ExitCode::SUCCESS,
        Ok(Shutdown::DeadlineExceeded) => {
            eprintln!(
                "{name}: requests still in flight after {}; stopped without them",
                humantime::format_duration(args.drain_timeout)
            );
            ExitCode::SUCCESS
        }
        Err(err) => fail(format_args!("server failed: {err}")),
    }
}

// ANCHOR_END: serve

/// Prints `error: <message>` on stderr and gives exit status 1.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
/// Prints `--help` and `--version` as asked, and any other flag error as one line.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    eprintln!("{first} (see --help)");
    ExitCode::from(2)
}
