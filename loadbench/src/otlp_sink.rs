//! The collector the load benchmark's traced instance exports its spans to: an OTLP/gRPC
//! `TraceService` (from the types generated from OpenTelemetry's `.proto` definitions) that
//! decodes each batch, counts its spans and lets them go, as a collector that forwards them
//! elsewhere would, without keeping them. So the traced row measures a service whose spans
//! leave, as deployed, rather than one whose exports fail.
//!
//! It says where it listens on stderr (`listening on 127.0.0.1:PORT`, so that port 0 can be
//! asked for), and on SIGTERM or Ctrl-C prints what it received on stdout as one line of JSON,
//! `{"batches":N,"spans":N}`, and exits.
//!
//! Run with: `cargo run --release -p loadbench --bin otlp-sink -- 127.0.0.1:4317`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::signal::unix::{SignalKind, signal};
use tonic::transport::server::TcpIncoming;

/// What arrived so far.
#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    spans: AtomicU64,
}

#[derive(Debug, Clone, Default)]
struct Sink(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        self.0.spans.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The services' allocator, as the other fixtures use.
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

/// One thread: a collector on the load generator's CPU should take as little of it as it can.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    kit_core::allocator::purge_in_background();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".to_owned());
    let addr: std::net::SocketAddr = match addr.parse() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("error: invalid address {addr:?}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => eprintln!("listening on {addr}"),
        Err(err) => {
            eprintln!("error: cannot read the address listened on: {err}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(err) => {
            eprintln!("error: cannot wait for SIGTERM: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let sink = Sink::default();
    let counts = sink.0.clone();
    let served = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(sink))
        // Given a listener, tonic leaves Nagle's algorithm on for what it accepts: each answer
        // would wait for the exporter's delayed ACK (40 ms), batches would pile up in the
        // service and two thirds of its spans would be dropped.
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)));
    // On a signal, what has arrived is the answer: no waiting for the exporters' connections
    // to close, which they may keep open for as long as they run.
    let served = tokio::select! {
        served = served => served,
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    println!(
        "{{\"batches\":{},\"spans\":{}}}",
        counts.batches.load(Ordering::Relaxed),
        counts.spans.load(Ordering::Relaxed)
    );
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
