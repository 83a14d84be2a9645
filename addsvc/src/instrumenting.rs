//! Instrumentation: a service middleware that counts what the service did, as Go kit's
//! `addservice.InstrumentingMiddleware`, in Prometheus's conventions.

use kit_core::metrics::Registry;
use metrics::Counter;

use crate::service::{AddService, Error};

// ANCHOR: metrics
/// What the middleware counts, registered once in `main` and handed to it.
///
/// - `example_addsvc_integers_summed_total`: integers summed, two per successful Sum. (Go kit's
///   `integers_summed` adds each *result* to a counter, which panics on a negative sum; its
///   help text says it counts integers.)
/// - `example_addsvc_concatenated_bytes_total`: the bytes of Concat's results (Go kit's
///   `characters_concatenated`, which counts bytes too).
#[derive(Debug, Clone)]
pub struct Metrics {
    integers: Counter,
    bytes: Counter,
}

impl Metrics {
    /// Registers the counters in `registry`.
    pub fn new(registry: &Registry) -> Self {
        Metrics {
            integers: registry.counter(
                "example_addsvc_integers_summed_total",
                "Integers summed by the Sum method, two per successful call.",
                &[],
            ),
            bytes: registry.counter(
                "example_addsvc_concatenated_bytes_total",
                "Bytes of the strings returned by the Concat method.",
                &[],
            ),
        }
    }
}
// ANCHOR_END: metrics

// ANCHOR: middleware
/// Counts [`Metrics`] for every call of the wrapped service.
#[derive(Debug, Clone)]
pub struct InstrumentingMiddleware<S> {
    /// Where the numbers go.
    pub metrics: Metrics,
    /// The service being measured.
    pub next: S,
}

impl<S: AddService + Sync> AddService for InstrumentingMiddleware<S> {
    async fn sum(&self, a: i64, b: i64) -> Result<i64, Error> {
        let result = self.next.sum(a, b).await;
        if result.is_ok() {
            self.metrics.integers.increment(2);
        }
        result
    }

    async fn concat(&self, a: &str, b: &str) -> Result<String, Error> {
        let result = self.next.concat(a, b).await;
        if let Ok(v) = &result {
            self.metrics.bytes.increment(v.len() as u64);
        }
        result
    }
}
// ANCHOR_END: middleware

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BasicService;

    #[tokio::test]
    async fn negative_sums_count_like_any_other() {
        let registry = Registry::new();
        let svc = InstrumentingMiddleware {
            metrics: Metrics::new(&registry),
            next: BasicService,
        };
        assert_eq!(svc.sum(-5, 2).await.ok(), Some(-3));
        assert!(svc.sum(0, 0).await.is_err());
        assert_eq!(svc.concat("é", "b").await.ok().as_deref(), Some("éb"));
        let text = registry.render();
        assert!(
            text.contains("example_addsvc_integers_summed_total 2"),
            "{text}"
        );
        assert!(
            text.contains("example_addsvc_concatenated_bytes_total 3"),
            "{text}"
        );
    }
}
