//! Request tracing with OpenTelemetry: a span for every call a transport serves or makes,
//! exported over OTLP/gRPC to any collector.
//!
//! Go kit traces with Zipkin and OpenTracing, both since folded into OpenTelemetry. Here a
//! service calls [`init`] once at start; when an OTLP endpoint is configured
//! (`--otlp-endpoint`, else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), every transport's server starts a span for each call it
//! answers (kind server, child of the caller's span when the request names one) and every
//! client a span for each call it makes (kind client), named by the method and carrying
//! OpenTelemetry's semantic-convention attributes for HTTP and RPC:
//!
//! | transport | span name | attributes |
//! |---|---|---|
//! | HTTP server | the server's [name](crate::transport::http::Server::name), else the HTTP method | `http.request.method`, `url.path`, `http.response.status_code`, `error.type` |
//! | HTTP client | the client's name, else the HTTP method | `http.request.method`, `url.full`, `server.address`, `server.port`, `http.response.status_code`, `error.type` |
//! | gRPC server, client | `package.Service/Method` (a server's from its [`method`](crate::transport::grpc::Server::method)) | `rpc.system=grpc`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `error.type` |
//! | JSON-RPC server, client | the JSON-RPC method | `rpc.system=jsonrpc`, `rpc.method`, `rpc.jsonrpc.error_code`, `error.type` |
//!
//! An endpoint can have a span of its own too, inside its transport's, as Go kit's
//! `TraceEndpoint` gives it: [`TraceLayer`], an endpoint middleware.
//!
//! `error.type` is the [kind](crate::error::ErrorKind) of the failure (`invalid_argument`,
//! `unavailable`, ...), or the status code when that is all there is; a failed call's span has
//! status error with the message. Each call's context carries its span as a
//! [`TraceParent`], so a client called while a request is handled makes its span a child of
//! the server's, sends it on in `traceparent`, and log lines written meanwhile carry
//! `trace_id` and `span_id`.
//!
//! The service's name is `OTEL_SERVICE_NAME` when set, else the one given to [`init`];
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` choose the sampler (parent-based,
//! always on, unless they say otherwise), and `OTEL_SDK_DISABLED=true` turns tracing off.
//!
//! # Cost
//!
//! Without an endpoint nothing is installed: each transport asks one atomic whether to trace,
//! and the request path allocates and locks nothing more than before. With one, a finished span
//! is handed to a bounded queue ([`QUEUE_SPANS`]) without waiting; a background task sends
//! spans in batches. A collector that is slow or down never holds up a request: when the queue
//! is full, spans are dropped and counted ([`Tracing::dropped_spans`], and the
//! `trace_spans_dropped_total` metric once [counted in a registry](Tracing::count_in)).

mod call;
mod export;
mod layer;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use crate::context::TraceParent;
pub(crate) use call::Call;
pub use export::Tracing;
pub use layer::{TraceLayer, Traced, TracedFuture};

/// How many finished spans wait for export before more are dropped, unless
/// `OTEL_BSP_MAX_QUEUE_SIZE` says otherwise: OpenTelemetry's default.
///
/// A full queue is what a service holds while its collector is down (about 750 bytes a span:
/// 1.5 MiB), and with a collector that keeps up it is nearly empty. At 4096 spans, an instance
/// pointed at no collector held 4.5 MiB of its own memory after a load, against 1.6 untraced.
pub const QUEUE_SPANS: usize = 2048;

/// The largest queue `OTEL_BSP_MAX_QUEUE_SIZE` may ask for.
pub const MOST_QUEUE_SPANS: usize = 1 << 20;

/// The most spans sent in one export request.
pub const BATCH_SPANS: usize = 512;

/// How long the exporter waits for a batch to fill before sending what it has.
pub const BATCH_DELAY: Duration = Duration::from_millis(500);

/// How long one export may take before its spans count as dropped.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer, once [`init`] installs one. Unset, every transport skips tracing.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Whether tracing was set up for this process: one atomic load, for the request path.
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// The `--otlp-endpoint` flag, for a service's command line.
#[cfg(feature = "cli")]
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TraceArgs {
    /// Where to send traces over OTLP/gRPC, for example http://localhost:4317 (an OpenTelemetry
    /// Collector, Jaeger, Tempo...). Without it, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_ENDPOINT; with none of them, no tracing.
    #[arg(long = "otlp-endpoint", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// The endpoint to export to: `flag`, else the OpenTelemetry environment variables; none when
/// tracing is off (no endpoint, an empty one, or `OTEL_SDK_DISABLED=true`).
pub fn endpoint(flag: Option<&str>) -> Option<String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    flag.map(str::to_owned)
        .filter(|v| !v.trim().is_empty())
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// Sets up tracing for the process when an endpoint is configured (see [`endpoint`]): spans
/// are exported to it, and the service is named `OTEL_SERVICE_NAME` or else `service`.
/// `Ok(None)` when tracing is off. Must run inside the tokio runtime, which runs the exporter.
///
/// Keep the [`Tracing`] until the program ends, and [shut it down](Tracing::shutdown) to send
/// the last spans.
pub fn init(service: &str, flag: Option<&str>) -> Result<Option<Tracing>, TraceError> {
    let Some(endpoint) = endpoint(flag) else {
        return Ok(None);
    };
    if TRACER.get().is_some() {
        return Err(TraceError::AlreadyInstalled);
    }
    let queue = queue_spans(std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").ok().as_deref())?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TraceError::Endpoint(endpoint.clone(), e.to_string()))?;
    let named = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty());
    let resource = Resource::builder()
        .with_service_name(named.unwrap_or_else(|| service.to_owned()))
        .build();
    let (processor, tracing) = export::start(exporter, &resource, endpoint, queue);
    // The sampler is the SDK's default, which reads OTEL_TRACES_SAMPLER(_ARG).
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("kit-core");
    TRACER
        .set(tracer)
        .map_err(|_| TraceError::AlreadyInstalled)?;
    Ok(Some(tracing.with_provider(provider)))
}

/// The queue's size: `setting` (`OTEL_BSP_MAX_QUEUE_SIZE`) when it is set and not blank,
/// else [`QUEUE_SPANS`].
fn queue_spans(setting: Option<&str>) -> Result<usize, TraceError> {
    let Some(value) = setting.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(QUEUE_SPANS);
    };
    value
        .parse()
        .ok()
        .filter(|spans| (1..=MOST_QUEUE_SPANS).contains(spans))
        .ok_or_else(|| TraceError::QueueSize(value.to_owned()))
}

/// Why tracing could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The endpoint is not a URL the exporter can send to.
    #[error("invalid OTLP endpoint {0:?}: {1}")]
    Endpoint(String, String),
    /// `OTEL_BSP_MAX_QUEUE_SIZE` is not a number of spans the queue can hold.
    #[error(
        "invalid OTEL_BSP_MAX_QUEUE_SIZE {0:?}: expected a number of spans from 1 to {MOST_QUEUE_SPANS}"
    )]
    QueueSize(String),
    /// Tracing was set up for this process already.
    #[error("tracing is already set up for this process")]
    AlreadyInstalled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_opentelemetrys_default_unless_otel_bsp_max_queue_size_says_otherwise() {
        assert_eq!(queue_spans(None), Ok(2048));
        assert_eq!(queue_spans(Some("  ")), Ok(2048));
        assert_eq!(queue_spans(Some("512")), Ok(512));
        assert_eq!(queue_spans(Some(" 100000 ")), Ok(100_000));
        assert_eq!(queue_spans(Some("1048576")), Ok(MOST_QUEUE_SPANS));
        for bad in [
            "0",
            "-1",
            "1e3",
            "lots",
            "1048577",
            "99999999999999999999999",
        ] {
            let err = queue_spans(Some(bad)).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid OTEL_BSP_MAX_QUEUE_SIZE {bad:?}: expected a number of spans from 1 to 1048576"
                )
            );
        }
    }
}
