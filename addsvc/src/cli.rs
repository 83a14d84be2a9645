//! The command line of `addsvc`: Go kit's flags, five listeners, one drain.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::listen::ListenAddr;
use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use kit_core::run::{self, DrainArgs, Program, fail};
use kit_core::transport::http::metrics_router;

use crate::endpoint::{DEFAULT_LIMIT, Limits, Set};
use crate::service::BasicService;
use crate::transport;

/// The flags of `addsvc`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "addsvc",
    version,
    about = "Go kit's addsvc: Sum and Concat over HTTP/JSON, gRPC, JSON-RPC and Thrift at once.",
    after_help = "Go-style single-dash flags work too: addsvc -debug.addr :8080 -http-addr :8081\n\nTry it:\n  curl -d'{\"a\":1,\"b\":2}' localhost:8081/sum\n  addcli -grpc-addr localhost:8082 1 2\n  curl -d'{\"jsonrpc\":\"2.0\",\"method\":\"concat\",\"params\":{\"a\":\"1\",\"b\":\"2\"},\"id\":1}' localhost:8084\n  curl localhost:8080/metrics\n\nLogs one line per call on stderr; RUST_LOG filters them. Stops on Ctrl-C or SIGTERM once the calls in flight on every listener are answered; a second Ctrl-C stops it at once."
)]
pub struct Args {
    /// Debug and metrics listen address (/metrics).
    #[arg(long = "debug.addr", value_name = "ADDR", default_value = ":8080")]
    pub debug_addr: ListenAddr,

    /// HTTP listen address.
    #[arg(long = "http-addr", value_name = "ADDR", default_value = ":8081")]
    pub http_addr: ListenAddr,

    /// gRPC listen address.
    #[arg(long = "grpc-addr", value_name = "ADDR", default_value = ":8082")]
    pub grpc_addr: ListenAddr,

    /// JSON RPC listen address.
    #[arg(long = "jsonrpc-addr", value_name = "ADDR", default_value = ":8084")]
    pub jsonrpc_addr: ListenAddr,

    /// Sum calls a second the server accepts before refusing with "rate limit exceeded" (Go
    /// kit: 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub sum_rate: NonZeroU32,

    /// Sum calls accepted at once before the rate applies (Go kit: 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub sum_burst: NonZeroU32,

    /// Concat calls a second (Go kit: 1).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub concat_rate: NonZeroU32,

    /// Concat calls accepted at once before the rate applies (Go kit: 100).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub concat_burst: NonZeroU32,

    /// How log lines are written: logfmt (key=value) or json (one object per line).
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "logfmt",
        value_parser = PossibleValuesParser::new(["logfmt", "json"]).try_map(|s| s.parse::<Format>())
    )]
    pub log_format: Format,

    /// How to stop.
    #[command(flatten)]
    pub drain: DrainArgs,
}

impl Args {
    /// The endpoints' rate limits these flags ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            sum_rate: self.sum_rate,
            sum_burst: self.sum_burst,
            concat_rate: self.concat_rate,
            concat_burst: self.concat_burst,
        }
    }
}

/// How often histograms fold their samples into buckets between scrapes.
const UPKEEP: Duration = Duration::from_millis(250);

// ANCHOR: main
/// The whole program: parse flags, build the service, serve it on every listener until a
/// signal, drain them all.
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

    let registry = Registry::new();
    let svc = crate::service(BasicService, &logger, &registry);
    let set = Set::new(svc, &args.limits(), &logger, &registry);
    let (grpc_routes, health) = match transport::grpc::routes(&set, &logger).await {
        Ok(routes) => routes,
        Err(err) => return fail(err),
    };
    tokio::spawn(registry.clone().upkeep(UPKEEP));
    let debug: Router = metrics_router(&registry);

    Program::new("addsvc")
        .drain_timeout(args.drain.drain_timeout)
        .http(&args.debug_addr, debug, announce("debug/HTTP"))
        .http(
            &args.http_addr,
            transport::http::app(&set, &logger),
            announce("HTTP"),
        )
        .listener(
            &args.grpc_addr,
            move |listener, shutdown| {
                // Health checks say NOT_SERVING as soon as the drain starts, so that balancers
                // stop sending calls while the ones in flight finish.
                let draining = shutdown.requested();
                tokio::spawn(async move {
                    draining.await;
                    health
                        .set_service_status("", tonic_health::ServingStatus::NotServing)
                        .await;
                    health
                        .set_service_status("pb.Add", tonic_health::ServingStatus::NotServing)
                        .await;
                });
                kit_core::transport::grpc::serve(listener, grpc_routes, shutdown)
            },
            announce("gRPC"),
        )
        .http(
            &args.jsonrpc_addr,
            transport::jsonrpc::app(&set, &logger),
            announce("JSONRPC over HTTP"),
        )
        .run()
        .await
}
// ANCHOR_END: main

/// Logs where a transport listens, as Go kit does: `transport=HTTP addr=:8081`.
fn announce(transport: &'static str) -> impl FnOnce(&ListenAddr) + Send + 'static {
    move |addr| tracing::info!(transport, addr = %addr)
}
