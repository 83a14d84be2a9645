//! The command lines: `addsvc`, Go kit's flags, five listeners, one drain; and `addcli`, one
//! call through the client package.

use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use kit_core::listen::ListenAddr;
use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use kit_core::run::{self, ConnectionArgs, DrainArgs, Program, fail};
use kit_core::sd::etcd::RegisterArgs;
use kit_core::trace::{self, TraceArgs};
use kit_core::transport::http::metrics_router;
use kit_core::transport::thrift::{self, Framing, Protocol};

use crate::endpoint::{DEFAULT_LIMIT, Limits, Set};
use crate::service::{AddService, BasicService};
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

    /// Thrift listen address.
    #[arg(long = "thrift-addr", value_name = "ADDR", default_value = ":8083")]
    pub thrift_addr: ListenAddr,

    /// Thrift protocol: binary or compact (Go's json and simplejson are not in the Rust Thrift
    /// library).
    #[arg(
        long = "thrift-protocol",
        value_name = "PROTOCOL",
        default_value = "binary"
    )]
    pub thrift_protocol: Protocol,

    /// Thrift buffer size in bytes; 0 for unbuffered.
    #[arg(long = "thrift-buffer", value_name = "BYTES", default_value_t = 0)]
    pub thrift_buffer: usize,

    /// Frame Thrift messages: the flag alone, or -thrift-framed=true.
    #[arg(
        long = "thrift-framed",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        require_equals = true,
        action = clap::ArgAction::Set
    )]
    pub thrift_framed: bool,

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

    /// Where traces go.
    #[command(flatten)]
    pub trace: TraceArgs,

    /// How to stop.
    #[command(flatten)]
    pub drain: DrainArgs,

    /// How many connections.
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Where to register the gRPC address (as service addsvc), for the apigateway to find.
    #[command(flatten)]
    pub etcd: RegisterArgs,
}

/// The place of the gRPC listener among the program's listeners: the one registered in etcd.
const GRPC_LISTENER: usize = 2;

impl Args {
    /// The Thrift server's protocol and framing, with kit-core's limits.
    pub fn thrift_config(&self) -> thrift::Config {
        thrift::Config {
            protocol: self.thrift_protocol,
            framing: Framing {
                buffer: self.thrift_buffer,
                framed: self.thrift_framed,
            },
            ..thrift::Config::default()
        }
    }

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
    // With an OTLP endpoint, a span for every call on every transport.
    let tracing = match trace::init("addsvc", args.trace.otlp_endpoint.as_deref()) {
        Ok(tracing) => tracing,
        Err(err) => return fail(err),
    };

    let registry = Registry::new();
    if let Some(tracing) = &tracing {
        tracing.count_in(&registry);
    }
    let svc = crate::service(BasicService, &logger, &registry);
    let set = Set::new(svc, &args.limits(), &logger, &registry);
    let registration = match args.etcd.registration("addsvc", GRPC_LISTENER) {
        Ok(registration) => registration,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let (grpc_routes, health) = match transport::grpc::routes(&set, &logger).await {
        Ok(routes) => routes,
        Err(err) => return fail(err),
    };
    tokio::spawn(registry.clone().upkeep(UPKEEP));
    let debug: Router = metrics_router(&registry);
    let thrift_processor = transport::thrift::processor(&set, &logger);
    let thrift_config = args.thrift_config();

    let max_connections = args.connections.max_connections;
    let program = Program::new("addsvc")
        .drain_timeout(args.drain.drain_timeout)
        .max_connections(args.connections.max_connections)
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
                let options = kit_core::transport::grpc::ServeOptions::default()
                    .max_connections(max_connections);
                kit_core::transport::grpc::serve_with(listener, grpc_routes, shutdown, options)
            },
            announce("gRPC"),
        )
        .listener(
            &args.thrift_addr,
            move |listener, shutdown| {
                thrift::serve(listener, thrift_processor, thrift_config, shutdown)
            },
            announce("Thrift"),
        )
        .http(
            &args.jsonrpc_addr,
            transport::jsonrpc::app(&set, &logger),
            announce("JSONRPC over HTTP"),
        );
    let exit = match registration {
        Some(registration) => program.hook(registration).run().await,
        None => program.run().await,
    };
    if let Some(tracing) = tracing {
        tracing.shutdown(TRACE_FLUSH).await;
    }
    exit
}

/// How long a program waits at exit for the collector to take the last spans.
const TRACE_FLUSH: Duration = Duration::from_secs(2);
// ANCHOR_END: main

/// Logs where a transport listens, as Go kit does: `transport=HTTP addr=:8081`.
fn announce(transport: &'static str) -> impl FnOnce(&ListenAddr) + Send + 'static {
    move |addr| tracing::info!(transport, addr = %addr)
}

/// The flags of `addcli`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "addcli",
    version,
    about = "Calls addsvc once over HTTP, gRPC, JSON-RPC or Thrift and prints the answer.",
    after_help = "The first address given picks the transport, in this order: -http-addr, -grpc-addr, -jsonrpc-addr, -thrift-addr.\n\nExamples:\n  addcli -http-addr localhost:8081 1 2\n  addcli -grpc-addr localhost:8082 -method concat hello world\n  addcli -thrift-addr localhost:8083 -thrift-protocol compact -thrift-framed -- -5 2\n\nBusiness errors and failures are printed on stderr as \"error: ...\" with exit status 1."
)]
pub struct CliArgs {
    /// HTTP address of addsvc.
    #[arg(long = "http-addr", value_name = "ADDR", default_value = "")]
    pub http_addr: String,

    /// gRPC address of addsvc.
    #[arg(long = "grpc-addr", value_name = "ADDR", default_value = "")]
    pub grpc_addr: String,

    /// Thrift address of addsvc.
    #[arg(long = "thrift-addr", value_name = "ADDR", default_value = "")]
    pub thrift_addr: String,

    /// JSON RPC address of addsvc.
    #[arg(long = "jsonrpc-addr", value_name = "ADDR", default_value = "")]
    pub jsonrpc_addr: String,

    /// Thrift protocol: binary or compact (the server's).
    #[arg(
        long = "thrift-protocol",
        value_name = "PROTOCOL",
        default_value = "binary"
    )]
    pub thrift_protocol: Protocol,

    /// Thrift buffer size in bytes; 0 for unbuffered.
    #[arg(long = "thrift-buffer", value_name = "BYTES", default_value_t = 0)]
    pub thrift_buffer: usize,

    /// Frame Thrift messages, as the server does: the flag alone, or -thrift-framed=true.
    #[arg(
        long = "thrift-framed",
        value_name = "BOOL",
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true",
        require_equals = true,
        action = clap::ArgAction::Set
    )]
    pub thrift_framed: bool,

    /// The method to call: sum or concat.
    #[arg(long, value_name = "METHOD", default_value = "sum")]
    pub method: String,

    /// The first argument: an integer for sum, a string for concat.
    #[arg(allow_negative_numbers = true)]
    pub a: String,

    /// The second argument.
    #[arg(allow_negative_numbers = true)]
    pub b: String,

    /// Where traces go: the call's client span, the root of its trace.
    #[command(flatten)]
    pub trace: TraceArgs,
}

// ANCHOR: addcli
/// The whole of `addcli`: pick the transport, make the client, call once, print.
pub async fn addcli() -> ExitCode {
    let args: CliArgs = match run::parse() {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let tracing = match trace::init("addcli", args.trace.otlp_endpoint.as_deref()) {
        Ok(tracing) => tracing,
        Err(err) => return fail(err),
    };
    let exit = call(&args).await;
    // The process ends next: send the call's span first.
    if let Some(tracing) = tracing {
        tracing.shutdown(TRACE_FLUSH).await;
    }
    exit
}

/// The call `addcli` makes.
async fn call(args: &CliArgs) -> ExitCode {
    let options = crate::client::Options::default();
    let svc = if !args.http_addr.is_empty() {
        crate::client::http(&args.http_addr, &options)
    } else if !args.grpc_addr.is_empty() {
        crate::client::grpc(&args.grpc_addr, &options)
    } else if !args.jsonrpc_addr.is_empty() {
        crate::client::jsonrpc(&args.jsonrpc_addr, &options)
    } else if !args.thrift_addr.is_empty() {
        let config = thrift::Config {
            protocol: args.thrift_protocol,
            framing: Framing {
                buffer: args.thrift_buffer,
                framed: args.thrift_framed,
            },
            ..thrift::Config::default()
        };
        crate::client::thrift(&args.thrift_addr, config, &options)
    } else {
        return fail("no remote address specified");
    };
    let svc = match svc {
        Ok(svc) => svc,
        Err(err) => return fail(err),
    };
    match args.method.as_str() {
        "sum" => {
            let (a, b) = match (parse_int(&args.a), parse_int(&args.b)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(err), _) | (_, Err(err)) => return fail(err),
            };
            match svc.sum(a, b).await {
                Ok(v) => println!("{a} + {b} = {v}"),
                Err(err) => return fail(err),
            }
        }
        "concat" => match svc.concat(&args.a, &args.b).await {
            Ok(v) => println!(
                "{} + {} = {}",
                go_quote(&args.a),
                go_quote(&args.b),
                go_quote(&v)
            ),
            Err(err) => return fail(err),
        },
        other => return fail(format_args!("invalid method {other:?}")),
    }
    ExitCode::SUCCESS
}
// ANCHOR_END: addcli

/// An argument of sum: a decimal integer (Go kit's addcli reads anything else as 0, silently).
fn parse_int(arg: &str) -> Result<i64, String> {
    arg.parse()
        .map_err(|e| format!("invalid integer {arg:?}: {e}"))
}

/// `s` quoted as Go's `%q` does (`strconv.Quote`): double quotes, backslash escapes for quotes,
/// backslashes and control characters, other characters as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("ab"), "\"ab\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("tab\there\n"), "\"tab\\there\\n\"");
        assert_eq!(go_quote("é\u{1}"), "\"é\\x01\"");
        assert_eq!(go_quote("\u{85}"), "\"\\u0085\"");
    }

    #[test]
    fn integers_must_be_integers() {
        assert_eq!(parse_int("-5"), Ok(-5));
        assert!(parse_int("x").is_err());
        assert!(parse_int("1.5").is_err());
    }
}
