//! The command line: Go kit's flags, with `--etcd` in place of `-consul.addr`.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::duration;
use kit_core::listen::ListenAddr;
use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use kit_core::run::{self, ConnectionArgs, DrainArgs, Program, fail};
use kit_core::sd::etcd::{self, Client, Instancer};
use kit_core::trace::{self, TraceArgs};

use crate::Options;

/// The flags of `apigateway`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "apigateway",
    version,
    about = "Go kit's apigateway: addsvc and stringsvc behind one address, their instances found in etcd.",
    after_help = "Go-style single-dash flags work too: apigateway -http.addr :8000 -retry.max 3 -retry.timeout 500ms\n\nRoutes:\n  /addsvc/sum, /addsvc/concat             addsvc's HTTP JSON, sent to the addsvc instances over gRPC\n  /stringsvc/uppercase, /stringsvc/count  sent to the stringsvc instances over HTTP\n  /metrics                                requests and latencies per route\n\nInstances register under /services/addsvc/ and /services/stringsvc/ in etcd (addsvc --etcd, stringsvc3 --etcd). Business errors are answered 400 with the service's message; a failed attempt is tried again on the next instance; when none answered, 503 (504 past -retry.timeout), in JSON.\n\nTry it:\n  curl -d'{\"a\":1,\"b\":2}' localhost:8000/addsvc/sum\n  curl -d'{\"s\":\"hello\"}' localhost:8000/stringsvc/uppercase"
)]
pub struct Args {
    /// Address for HTTP (JSON) server.
    #[arg(long = "http.addr", value_name = "ADDR", default_value = ":8000")]
    pub http_addr: ListenAddr,

    /// etcd endpoints to find the instances in, comma-separated host:port.
    #[arg(long, value_name = "ENDPOINTS", default_value = "127.0.0.1:2379")]
    pub etcd: String,

    /// Per-request retries to different instances (all attempts, the first included).
    #[arg(long = "retry.max", value_name = "N", default_value = "3", value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_max: u32,

    /// Per-request timeout, including retries.
    #[arg(long = "retry.timeout", value_name = "DURATION", default_value = "500ms", value_parser = duration::parse)]
    pub retry_timeout: Duration,

    /// Calls a second each instance may receive on each route.
    #[arg(long, value_name = "N", default_value = "1000")]
    pub rate: NonZeroU32,

    /// Calls each instance may receive at once on each route, before the rate applies.
    #[arg(long, value_name = "N", default_value = "100")]
    pub burst: NonZeroU32,

    /// How log lines are written: logfmt (key=value) or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "logfmt",
        value_parser = PossibleValuesParser::new(["logfmt", "json"]).try_map(|s| s.parse::<Format>())
    )]
    pub log_format: Format,

    /// Where traces go: each call's span, and a span for each attempt on an instance.
    #[command(flatten)]
    pub trace: TraceArgs,

    /// How many connections.
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// How to stop.
    #[command(flatten)]
    pub drain: DrainArgs,
}

impl Args {
    /// The options these flags ask for.
    pub fn options(&self) -> Options {
        Options {
            max_attempts: self.retry_max as usize,
            retry_timeout: self.retry_timeout,
            rate: self.rate,
            burst: self.burst,
            ..Options::default()
        }
    }
}

/// How long the gateway waits for its first read of the registrations before it serves anyway.
const FIRST_READ: Duration = Duration::from_secs(3);

/// How often histograms fold their samples into buckets between scrapes.
const UPKEEP: Duration = Duration::from_millis(250);

// ANCHOR: main
/// The whole program: parse flags, follow both services' instances in etcd, serve the gateway
/// until a signal, drain.
pub async fn main() -> ExitCode {
    let args: Args = match run::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let (logger, _log_writer) = match Logger::builder(args.log_format).caller(true).to_stderr() {
        Ok(logger) => logger,
        Err(err) => return fail(err),
    };
    let _ = logger.install();
    // With an OTLP endpoint, a span for every call and one for every attempt on an instance,
    // which the instance continues.
    let tracing = match trace::init("apigateway", args.trace.otlp_endpoint.as_deref()) {
        Ok(tracing) => tracing,
        Err(err) => return fail(err),
    };

    let client = match Client::new(&args.etcd) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: --etcd: {err}");
            return ExitCode::from(2);
        }
    };
    let addsvc = Instancer::new(client.clone(), etcd::prefix("addsvc"));
    let stringsvc = Instancer::new(client, etcd::prefix("stringsvc"));
    // The first calls know the instances registered before the gateway started (unless etcd
    // is down, which the instancers report and survive).
    let _ = tokio::time::timeout(FIRST_READ, async {
        addsvc.ready().await;
        stringsvc.ready().await;
    })
    .await;
    let registry = Registry::new();
    if let Some(tracing) = &tracing {
        tracing.count_in(&registry);
    }
    tokio::spawn(registry.clone().upkeep(UPKEEP));
    let app = crate::app(&addsvc, &stringsvc, &args.options(), &logger, &registry);

    let exit = Program::new("apigateway")
        .drain_timeout(args.drain.drain_timeout)
        .max_connections(args.connections.max_connections)
        .http(&args.http_addr, app, |addr| {
            ::tracing::info!(transport = "HTTP", addr = %addr);
        })
        .run()
        .await;
    // The last spans, given two seconds to leave.
    if let Some(tracing) = tracing {
        tracing.shutdown(TRACE_FLUSH).await;
    }
    exit
}

/// How long the gateway waits at exit for the collector to take the last spans.
const TRACE_FLUSH: Duration = Duration::from_secs(2);
// ANCHOR_END: main
