//! The program runner: what every service's `main` does, written once.
//!
//! A service's binary parses its flags, binds its listeners, says where it listens, serves until
//! Ctrl-C or SIGTERM, drains, and exits with a status that says how it went. The tutorial's
//! stages and every later service do exactly that, so it lives here:
//!
//! - [`parse`] reads the flags with clap, accepting Go's single-dash spelling too
//!   (`-listen=:8001`, `-http-addr :8081`), so Go kit's command lines work as they are; a
//!   mistake is one line on stderr and exit status 2.
//! - [`ServeArgs`] and [`DrainArgs`] are the flags such services share.
//! - [`Program`] binds every listener first (a port in use is one line and exit status 1, before
//!   anything is served), announces each, serves them all, and on the first signal drains them
//!   all within one deadline ([`shutdown`](crate::shutdown)). A second signal stops the process
//!   at once, with status 1: the user has decided not to wait. It also raises the process's
//!   limit on open files to the most the system allows, as Go's runtime does, so that a burst of
//!   connections meets the connection cap ([`ConnectionArgs`]) rather than "too many open
//!   files".
//! - A [`Hook`] is told when every listener is bound, and is awaited as soon as the program is
//!   asked to stop, before the drain: a service registers itself in a registry there, and
//!   leaves it before it finishes its calls in flight (`sd::etcd::Registration`).
//!
//! ```no_run
//! use std::process::ExitCode;
//! use kit_core::run::{self, Program, ServeArgs};
//!
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     serve: ServeArgs,
//! }
//!
//! #[tokio::main]
//! async fn main() -> ExitCode {
//!     let args: Args = match run::parse() {
//!         Ok(args) => args,
//!         Err(exit) => return exit,
//!     };
//!     let app = axum::Router::new();
//!     Program::with_args("hello", &args.serve)
//!         .http(&args.serve.listen, app, |addr| eprintln!("hello listening on {addr}"))
//!         .run()
//!         .await
//! }
//! ```
//!
//! This is the one part of kit-core that writes to stderr and chooses exit statuses: it is the
//! command line's layer, used by binaries. Everything it calls (binding, serving, draining)
//! returns what happened and leaves the telling to it.

mod args;
mod program;

pub use args::{ConnectionArgs, DrainArgs, ServeArgs, fail, parse, parse_from, usage_error};
pub use program::{Hook, Program};
