//! An OTLP trace receiver: a real gRPC `TraceService` server (OpenTelemetry's collector
//! protocol, from the types generated from its `.proto` definitions) that keeps the spans
//! services send it, for tests to look at; and a collector that is down in the worst way, one
//! that accepts connections and never answers.
//!
//! ```no_run
//! use std::time::Duration;
//! let receiver = testkit::otlp::Receiver::start();
//! // Start a service with `--otlp-endpoint` set to `receiver.endpoint()`, call it...
//! let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 2);
//! println!("{}", testkit::otlp::tree(&spans));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};

/// A span as the receiver got it, with ids in hex and attribute values as text.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a trace's root.
    pub parent_span_id: String,
    /// The span's attributes, their values as text.
    pub attributes: BTreeMap<String, String>,
    /// Whether the span's status is error.
    pub error: bool,
}

impl ReceivedSpan {
    /// The attribute `key`, if the span has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Default)]
struct Store {
    spans: Mutex<Vec<ReceivedSpan>>,
    arrived: Condvar,
}

struct Collect(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Collect {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    received.push(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        kind: match span.kind {
                            1 => "internal",
                            2 => "server",
                            3 => "client",
                            4 => "producer",
                            5 => "consumer",
                            _ => "unspecified",
                        },
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                            .collect(),
                        // STATUS_CODE_ERROR
                        error: span.status.is_some_and(|status| status.code == 2),
                    });
                }
            }
        }
        let mut spans = self.0.spans.lock().unwrap_or_else(PoisonError::into_inner);
        spans.extend(received);
        self.0.arrived.notify_all();
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(n)) => n.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(x)) => x.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// An OTLP/gRPC trace receiver on 127.0.0.1, served by a thread of its own (so that it answers
/// whatever the test's own runtime is doing) until dropped.
pub struct Receiver {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: Option<kit_core::shutdown::Trigger>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub fn start() -> Receiver {
        let listener = crate::process::local_listener();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the receiver's address");
        let store = Arc::new(Store::default());
        let (stop, shutdown) = kit_core::shutdown::channel();
        let routes = tonic::service::Routes::new(TraceServiceServer::new(Collect(store.clone())));
        let thread = std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the receiver's runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    let _ = kit_core::transport::grpc::serve(listener, routes, shutdown).await;
                });
            })
            .expect("the receiver's thread");
        Receiver {
            addr,
            store,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The URL to give a service: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the spans received satisfy `done`, or `timeout` passes; returns them either
    /// way, for the test to check.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let mut spans = self
            .store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !done(&spans) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            spans = self
                .store
                .arrived
                .wait_timeout(spans, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        spans.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.drain(Duration::ZERO);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A collector that is down in the worst way: it accepts connections and never answers, so a
/// client waits until its own timeout. Dropping it closes them.
#[derive(Debug)]
pub struct BlackHole {
    addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl BlackHole {
    /// Starts one on a free port.
    pub fn start() -> BlackHole {
        let listener = crate::process::local_listener();
        let addr = listener.local_addr().expect("address");
        let thread = std::thread::spawn(move || {
            // Held, never read: the connections stay open and silent.
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        BlackHole {
            addr,
            _thread: thread,
        }
    }

    /// The URL to give a service.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The spans of each trace as an indented tree, children under their parent, in the order they
/// were received: `service: name (kind) key=value...`, for the book and for failing tests.
pub fn tree(spans: &[ReceivedSpan]) -> String {
    tree_with(spans, &[])
}

/// [`tree`], showing only the attributes named in `keys`.
pub fn tree_with(spans: &[ReceivedSpan], keys: &[&str]) -> String {
    let mut out = String::new();
    let ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut traces: Vec<&str> = Vec::new();
    for span in spans {
        if !traces.contains(&span.trace_id.as_str()) {
            traces.push(&span.trace_id);
        }
    }
    for trace in traces {
        let _ = writeln!(out, "trace {trace}");
        let roots = spans.iter().filter(|s| {
            s.trace_id == trace
                && (s.parent_span_id.is_empty() || !ids.contains(&s.parent_span_id.as_str()))
        });
        for root in roots {
            write_span(&mut out, spans, root, 1, keys);
        }
    }
    out
}

fn write_span(
    out: &mut String,
    spans: &[ReceivedSpan],
    span: &ReceivedSpan,
    depth: usize,
    keys: &[&str],
) {
    let _ = write!(
        out,
        "{}{}: {} ({})",
        "  ".repeat(depth),
        span.service,
        span.name,
        span.kind
    );
    for (key, value) in &span.attributes {
        if keys.is_empty() || keys.contains(&key.as_str()) {
            let _ = write!(out, " {key}={value}");
        }
    }
    if span.error {
        out.push_str(" [error]");
    }
    out.push('\n');
    for child in spans
        .iter()
        .filter(|s| s.trace_id == span.trace_id && s.parent_span_id == span.span_id)
    {
        write_span(out, spans, child, depth + 1, keys);
    }
}
