//! The command line: flags, and serving until a signal.
//!
//! `main` stays thin: it parses the flags and hands the app to kit-core's program runner, which
//! binds, serves until Ctrl-C or SIGTERM, drains, and picks the exit status.

use std::process::ExitCode;

use kit_core::run::{self, Program, ServeArgs};

use crate::service::BasicStringService;
use crate::transport;

/// The flags of `stringsvc1`.
#[derive(Debug, clap::Parser)]
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

// ANCHOR: serve
/// The whole program: parse flags, listen, serve until a signal.
///
/// Failures print one line on stderr and exit non-zero: 2 for bad flags, 1 for the rest.
pub async fn main() -> ExitCode {
    let args: Args = match run::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let app = transport::app(BasicStringService);
    Program::with_args("stringsvc1", &args.serve)
        .http(&args.serve.listen, app, |addr| {
            eprintln!("stringsvc1 listening on {addr}");
        })
        .run()
        .await
}
// ANCHOR_END: serve
