//! The command line: flags, the store they choose, and serving until a signal.

use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::listen::ListenAddr;
use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use kit_core::run::{self, ConnectionArgs, DrainArgs, Program, fail};
use kit_core::trace::{self, TraceArgs};

use crate::repository::{MemoryRepository, Repository, SqliteRepository};

/// What `--db` takes for "keep profiles in memory".
pub const IN_MEMORY: &str = ":memory:";

/// How often histograms fold their samples into buckets between scrapes.
const UPKEEP: Duration = Duration::from_millis(250);

// ANCHOR: args
/// The flags of `profilesvc`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "profilesvc",
    version,
    about = "Profiles and their addresses over REST: Go kit's profilesvc example.",
    after_help = "Try it:\n  curl -d '{\"id\":\"1234\",\"name\":\"Go Kit\"}' localhost:8080/profiles/\n  curl localhost:8080/profiles/1234\n  curl localhost:8080/openapi.json\n\nWith --db, profiles are kept in a SQLite file (WAL mode): every write answered has been committed and survives the process being killed, and several instances can serve the same file. Without it they are kept in memory, as in Go kit, and lost on exit.\n\nLogs one line per call on stderr (RUST_LOG filters them); metrics are on /metrics. Stops on Ctrl-C or SIGTERM once the requests in flight are answered; a second Ctrl-C stops it at once."
)]
pub struct Args {
    /// HTTP listen address, Go kit's flag: :PORT for every interface, or HOST:PORT [default: :8080]
    #[arg(long = "http.addr", value_name = "ADDR", conflicts_with = "listen")]
    pub http_addr: Option<ListenAddr>,

    /// The same as --http.addr, as the workspace's other services spell it
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<ListenAddr>,

    /// Where to keep profiles: a SQLite file, created if missing, or :memory: to keep them in
    /// memory and lose them on exit
    #[arg(
        long,
        value_name = "PATH",
        default_value = IN_MEMORY,
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub db: String,

    /// How log lines are written: logfmt (key=value) or json (one object per line)
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "logfmt",
        value_parser = PossibleValuesParser::new(["logfmt", "json"]).try_map(|s| s.parse::<Format>())
    )]
    pub log_format: Format,

    /// How many connections.
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// How to stop.
    #[command(flatten)]
    pub drain: DrainArgs,

    /// Where traces go.
    #[command(flatten)]
    pub trace: TraceArgs,
}
// ANCHOR_END: args

impl Args {
    /// Where to listen: `--http.addr` or `--listen`, else `:8080`.
    pub fn listen(&self) -> ListenAddr {
        self.http_addr
            .clone()
            .or_else(|| self.listen.clone())
            .unwrap_or_else(|| ListenAddr::all_interfaces(8080))
    }
}

// ANCHOR: main
/// The whole program: parse flags, open the store, serve until a signal.
///
/// Bad flags exit with status 2; a store that cannot be opened, or a port in use, with 1.
pub async fn main() -> ExitCode {
    let args: Args = match run::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    if args.db == IN_MEMORY {
        return serve(&args, MemoryRepository::new()).await;
    }
    let path = args.db.clone();
    // Opening migrates the schema, which blocks: not on the runtime's threads.
    let opened = tokio::task::spawn_blocking(move || SqliteRepository::open(path)).await;
    match opened {
        Ok(Ok(repository)) => serve(&args, repository).await,
        Ok(Err(err)) => fail(err),
        Err(err) => fail(err),
    }
}

/// Serves the API over `repository` on the address the flags name.
async fn serve<R: Repository>(args: &Args, repository: R) -> ExitCode {
    let (logger, _log_writer) = match Logger::builder(args.log_format).to_stderr() {
        Ok(logger) => logger,
        Err(err) => return fail(err),
    };
    let _ = logger.install();
    let tracing = match trace::init("profilesvc", args.trace.otlp_endpoint.as_deref()) {
        Ok(tracing) => tracing,
        Err(err) => return fail(err),
    };
    let registry = Registry::new();
    if let Some(tracing) = &tracing {
        tracing.count_in(&registry);
    }
    let app = crate::app(repository, &logger, &registry);
    tokio::spawn(registry.upkeep(UPKEEP));
    let exit = Program::new("profilesvc")
        .drain_timeout(args.drain.drain_timeout)
        .max_connections(args.connections.max_connections)
        .http(&args.listen(), app, |addr| {
            tracing::info!(transport = "HTTP", addr = %addr);
        })
        .run()
        .await;
    if let Some(tracing) = tracing {
        tracing.shutdown(std::time::Duration::from_secs(2)).await;
    }
    exit
}
// ANCHOR_END: main
