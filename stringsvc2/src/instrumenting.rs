//! Instrumentation: a service middleware that counts and times every call, and records what
//! `count` returns, for Prometheus.

use std::time::Instant;

use kit_core::metrics::{Registry, RequestMetrics};
use metrics::Histogram;
use stringsvc1::service::StringService;

/// The namespace and subsystem of every metric, as in Go kit's example: `my_group` and
/// `string_service`.
pub const NAMESPACE: &str = "my_group_string_service";

// ANCHOR: metrics
/// The metrics the middleware records, registered once in `main` and handed to it.
///
/// - `my_group_string_service_requests_total{method, error}`: requests received;
/// - `my_group_string_service_request_duration_seconds{method, error}`: their durations;
/// - `my_group_string_service_count_result_bytes`: what `count` returned.
///
/// `error` is `"true"` when `uppercase` refused an empty string.
#[derive(Debug, Clone)]
pub struct Metrics {
    uppercase: RequestMetrics,
    count: RequestMetrics,
    count_result: Histogram,
}

impl Metrics {
    /// Registers the metrics in `registry`.
    pub fn new(registry: &Registry) -> Self {
        Metrics {
            uppercase: RequestMetrics::new(registry, NAMESPACE, "uppercase"),
            count: RequestMetrics::new(registry, NAMESPACE, "count"),
            count_result: registry.histogram(
                &format!("{NAMESPACE}_count_result_bytes"),
                "The result of each count method, in bytes.",
                &[],
            ),
        }
    }
}
// ANCHOR_END: metrics

// ANCHOR: middleware
/// Records [`Metrics`] for every call of the wrapped service.
#[derive(Debug, Clone)]
pub struct InstrumentingMiddleware<S> {
    /// Where the numbers go.
    pub metrics: Metrics,
    /// The service being measured.
    pub next: S,
}

impl<S: StringService + Sync> StringService for InstrumentingMiddleware<S> {
    type Error = S::Error;

    async fn uppercase(&self, s: &str) -> Result<String, S::Error> {
        let begin = Instant::now();
        let result = self.next.uppercase(s).await;
        self.metrics
            .uppercase
            .record(result.is_err(), begin.elapsed());
        result
    }

    async fn count(&self, s: &str) -> usize {
        let begin = Instant::now();
        let n = self.next.count(s).await;
        self.metrics.count.record(false, begin.elapsed());
        self.metrics.count_result.record(n as f64);
        n
    }
}
// ANCHOR_END: middleware
