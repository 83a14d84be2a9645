//! A gRPC load generator for the load benchmark (wrk speaks only HTTP/1): calls `pb.Add/Sum`
//! over `--connections` HTTP/2 connections, `--streams` calls in flight on each, for
//! `--duration` seconds, and prints one JSON line in the shape of the wrk script's: requests,
//! duration, latency percentiles, errors.
//!
//! Run with: `cargo run --release -p loadbench --bin grpc-load -- 127.0.0.1:8082 --duration 10`

use std::time::{Duration, Instant};

use addsvc::transport::grpc::pb::SumRequest;
use addsvc::transport::grpc::pb::add_client::AddClient;
use tonic::transport::{Channel, Endpoint};

struct Options {
    target: String,
    connections: usize,
    streams: usize,
    duration: Duration,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        target: String::new(),
        connections: 4,
        streams: 16,
        duration: Duration::from_secs(10),
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--connections" => options.connections = number("--connections")? as usize,
            "--streams" => options.streams = number("--streams")? as usize,
            "--duration" => options.duration = Duration::from_secs(number("--duration")?),
            target if options.target.is_empty() => options.target = target.to_owned(),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if options.target.is_empty() {
        return Err(
            "usage: grpc-load HOST:PORT [--connections N] [--streams N] [--duration SECONDS]"
                .into(),
        );
    }
    Ok(options)
}

/// One caller: calls in a loop until `end`, recording each latency in microseconds.
async fn caller(channel: Channel, end: Instant) -> (Vec<u32>, u64, u64) {
    let mut client = AddClient::new(channel);
    let (mut latencies, mut errors, mut inband) = (Vec::new(), 0, 0);
    while Instant::now() < end {
        let started = Instant::now();
        match client.sum(SumRequest { a: 1, b: 2 }).await {
            Ok(reply) => {
                latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                if !reply.get_ref().err.is_empty() {
                    inband += 1;
                }
            }
            Err(_) => errors += 1,
        }
    }
    (latencies, errors, inband)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut channels = Vec::new();
    for _ in 0..options.connections {
        let endpoint = match Endpoint::from_shared(format!("http://{}", options.target)) {
            Ok(endpoint) => endpoint.tcp_nodelay(true),
            Err(err) => {
                eprintln!("error: {err}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match endpoint.connect().await {
            Ok(channel) => channels.push(channel),
            Err(err) => {
                eprintln!("error: cannot connect to {}: {err}", options.target);
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    let started = Instant::now();
    let end = started + options.duration;
    let mut callers = tokio::task::JoinSet::new();
    for channel in &channels {
        for _ in 0..options.streams {
            callers.spawn(caller(channel.clone(), end));
        }
    }
    let (mut latencies, mut errors, mut inband) = (Vec::new(), 0u64, 0u64);
    while let Some(done) = callers.join_next().await {
        if let Ok((l, e, i)) = done {
            latencies.extend(l);
            errors += e;
            inband += i;
        }
    }
    // An RPC that failed is counted, as wrk's script counts them, both as a read error and
    // as an answer that is not a success.
    let mut report = loadbench::Report {
        latencies,
        duration: started.elapsed(),
        read_errors: errors,
        non2xx: errors,
        inband,
        ..loadbench::Report::default()
    };
    println!("{}", report.json_line());
    std::process::ExitCode::SUCCESS
}
