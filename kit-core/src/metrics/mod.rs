//! Instrumentation: Go kit's `metrics` package on the `metrics` crate, exposed for
//! Prometheus by metrics-exporter-prometheus.
//!
//! A [`Registry`] holds a service's metrics and renders them in Prometheus's text format
//! ([`Registry::render`]); the HTTP transport serves that on `/metrics`
//! (`transport::http::metrics_router`). As with Go kit's `kitprometheus.NewCounterFrom`, `main` creates each
//! metric once and hands its handle to the middleware that records it; a handle is an atomic
//! cell, so recording costs no lookup. Tests give each service its own registry and read its
//! numbers without global state.
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `kitprometheus.NewCounterFrom(opts, labels)` + `.With(lv...)` | [`Registry::counter`] with its labels |
//! | `kitprometheus.NewSummaryFrom` / `NewHistogramFrom` | [`Registry::histogram`] |
//! | `promhttp.Handler()` | [`Registry::render`], served by `transport::http::metrics_router` |
//! | addsvc's `InstrumentingMiddleware(duration)` | [`InstrumentLayer`] |
//!
//! Histograms whose names end in `_seconds` get [`LATENCY_BUCKETS`], those ending in `_bytes`
//! get [`SIZE_BUCKETS`], so they render as Prometheus histograms (`_bucket`, `_sum`, `_count`)
//! that can be aggregated across instances.
//!
//! ```
//! use kit_core::metrics::Registry;
//!
//! let registry = Registry::new();
//! let requests = registry.counter(
//!     "my_group_string_service_requests_total",
//!     "Number of requests received.",
//!     &[("method", "count"), ("error", "false")],
//! );
//! requests.increment(1);
//! assert!(registry.render().contains(
//!     "my_group_string_service_requests_total{method=\"count\",error=\"false\"} 1"
//! ));
//! ```

mod layer;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub use layer::{Instrument, InstrumentFuture, InstrumentLayer, RequestMetrics};

/// Bucket bounds, in seconds, for histograms whose names end in `_seconds`: 10 µs to 10 s.
pub const LATENCY_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds for histograms whose names end in `_bytes`: powers of 4 up to 1 MiB.
pub const SIZE_BUCKETS: [f64; 12] = [
    0.0,
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];

/// The `Content-Type` of Prometheus's text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A service's metrics, rendered in Prometheus's text format.
///
/// Cheap to clone; clones share the metrics.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl Registry {
    /// A registry with kit-core's buckets (see the [module docs](self)).
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), &SIZE_BUCKETS)
            });
        match builder {
            Ok(builder) => Self::from_builder(builder),
            // Only empty bucket lists are refused, and ours are constants.
            Err(_) => Self::from_builder(PrometheusBuilder::new()),
        }
    }

    /// A registry configured by the exporter's own builder (buckets, quantiles, global labels).
    pub fn from_builder(builder: PrometheusBuilder) -> Self {
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Registry {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// The counter `name` with these labels, described by `help`.
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        let (key, name) = key(name, labels);
        self.recorder
            .describe_counter(name, None, help.to_owned().into());
        self.recorder.register_counter(&key, &METADATA)
    }

    /// The gauge `name` with these labels, described by `help`.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        let (key, name) = key(name, labels);
        self.recorder
            .describe_gauge(name, None, help.to_owned().into());
        self.recorder.register_gauge(&key, &METADATA)
    }

    /// The histogram `name` with these labels, described by `help`.
    pub fn histogram(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Histogram {
        let (key, name) = key(name, labels);
        self.recorder
            .describe_histogram(name, None, help.to_owned().into());
        self.recorder.register_histogram(&key, &METADATA)
    }

    /// Every metric, in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Moves recorded histogram samples into their buckets. [`render`](Self::render) does this
    /// too; between scrapes, [`upkeep`](Self::upkeep) keeps the samples from piling up.
    ///
    /// A histogram keeps its samples in blocks (metrics-util's `AtomicBucket`) that, once
    /// folded into the buckets, are freed through crossbeam-epoch's collector: only when some
    /// later call on the thread gets around to collecting, which a fold of new samples does,
    /// and one of no samples does not. So once a load was over, the blocks of its last samples
    /// (up to a quarter of a second's worth, 0.3 to 0.6 MiB after the load benchmark's) stayed
    /// allocated for as long as no more came. Each upkeep now asks the collector to move on, and
    /// within two more it frees them.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
        crossbeam_epoch::pin().flush();
    }

    /// Runs [`run_upkeep`](Self::run_upkeep) every `period`, forever: spawn it beside the server.
    pub async fn upkeep(self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.run_upkeep();
        }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

fn key(name: &str, labels: &[(&str, &str)]) -> (Key, KeyName) {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
        .collect();
    (
        Key::from_parts(name.to_owned(), labels),
        KeyName::from(name.to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_by_suffix_have_buckets() {
        let registry = Registry::new();
        let latency = registry.histogram("x_duration_seconds", "Latency.", &[("m", "a")]);
        latency.record(0.003);
        latency.record(0.2);
        let sizes = registry.histogram("x_size_bytes", "Sizes.", &[]);
        sizes.record(12.0);
        let text = registry.render();
        for line in [
            "# HELP x_duration_seconds Latency.",
            "# TYPE x_duration_seconds histogram",
            "x_duration_seconds_bucket{m=\"a\",le=\"0.0025\"} 0",
            "x_duration_seconds_bucket{m=\"a\",le=\"0.005\"} 1",
            "x_duration_seconds_bucket{m=\"a\",le=\"0.25\"} 2",
            "x_duration_seconds_bucket{m=\"a\",le=\"+Inf\"} 2",
            "x_duration_seconds_count{m=\"a\"} 2",
            "x_size_bytes_bucket{le=\"4\"} 0",
            "x_size_bytes_bucket{le=\"16\"} 1",
            "x_size_bytes_sum 12",
            "x_size_bytes_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn registries_are_independent() {
        let (a, b) = (Registry::new(), Registry::new());
        a.counter("only_in_a_total", "A.", &[]).increment(2);
        assert!(a.render().contains("only_in_a_total 2"));
        assert!(!b.render().contains("only_in_a_total"));
    }
}
