//! Getting finished spans out of the process: a bounded queue that never waits, and a task
//! that sends them to the collector in batches.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "metrics")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{BATCH_DELAY, BATCH_SPANS, EXPORT_TIMEOUT};

/// Counts of the spans that left, and of those that did not.
#[derive(Debug, Default)]
struct Counts {
    exported: AtomicU64,
    dropped: AtomicU64,
    #[cfg(feature = "metrics")]
    metric: OnceLock<metrics::Counter>,
}

impl Counts {
    fn dropped(&self, spans: u64) {
        self.dropped.fetch_add(spans, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(counter) = self.metric.get() {
            counter.increment(spans);
        }
    }
}

/// The span processor: hands each sampled span that ends to the queue, or counts it dropped
/// when the queue is full. Called on the thread that ends the span, so it must not wait.
#[derive(Debug)]
pub(super) struct Enqueue {
    queue: mpsc::Sender<SpanData>,
    counts: Arc<Counts>,
}

impl SpanProcessor for Enqueue {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(span).is_err() {
            self.counts.dropped(1);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Tracing, set up by [`init`](super::init): keep it for as long as the program runs.
pub struct Tracing {
    counts: Arc<Counts>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    provider: Option<SdkTracerProvider>,
    endpoint: String,
}

impl fmt::Debug for Tracing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracing")
            .field("endpoint", &self.endpoint)
            .field("exported_spans", &self.exported_spans())
            .field("dropped_spans", &self.dropped_spans())
            .finish()
    }
}

impl Tracing {
    pub(super) fn with_provider(mut self, provider: SdkTracerProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Where spans go.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many spans the collector accepted.
    pub fn exported_spans(&self) -> u64 {
        self.counts.exported.load(Ordering::Relaxed)
    }

    /// How many finished spans were lost: the queue was full, or the collector did not take
    /// them (down, slow, or refusing).
    pub fn dropped_spans(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Counts dropped spans in `registry` too, as `trace_spans_dropped_total`.
    #[cfg(feature = "metrics")]
    pub fn count_in(&self, registry: &crate::metrics::Registry) {
        let counter = registry.counter(
            "trace_spans_dropped_total",
            "Finished spans not exported: the queue was full or the collector did not take them.",
            &[],
        );
        counter.increment(self.dropped_spans());
        let _ = self.counts.metric.set(counter);
    }

    /// Sends the spans still queued, waiting at most `timeout` for the collector, and stops
    /// the exporter. Spans that end afterwards are dropped.
    pub async fn shutdown(mut self, timeout: Duration) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(timeout, task).await;
        }
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown_with_timeout(Duration::ZERO);
        }
    }
}

/// The processor to give the tracer provider, and the handle on the export task it feeds, which
/// queues at most `queue` spans.
pub(super) fn start<E>(
    mut exporter: E,
    resource: &Resource,
    endpoint: String,
    queue: usize,
) -> (Enqueue, Tracing)
where
    E: SpanExporter + 'static,
{
    exporter.set_resource(resource);
    let (queue, spans) = mpsc::channel(queue);
    let counts = Arc::new(Counts::default());
    let (stop, stopping) = watch::channel(false);
    let task = tokio::spawn(export(exporter, spans, stopping, counts.clone()));
    (
        Enqueue {
            queue,
            counts: counts.clone(),
        },
        Tracing {
            counts,
            stop,
            task: Some(task),
            provider: None,
            endpoint,
        },
    )
}

/// Sends batches: as soon as [`BATCH_SPANS`] are queued, or [`BATCH_DELAY`] after the first of a
/// batch; on stop, what is left.
async fn export<E: SpanExporter>(
    exporter: E,
    mut spans: mpsc::Receiver<SpanData>,
    mut stopping: watch::Receiver<bool>,
    counts: Arc<Counts>,
) {
    let mut failing = false;
    let mut stopped = false;
    while !stopped {
        // The batch is made when its first span has come, not before: an exporter waiting for
        // spans holds no buffer (a whole batch's is 192 KiB, which an idle service would
        // otherwise keep, written by the last batch, for as long as it stays idle).
        let first = tokio::select! {
            span = spans.recv() => match span {
                Some(span) => Some(span),
                None => break,
            },
            _ = stopping.wait_for(|stop| *stop) => {
                stopped = true;
                spans.try_recv().ok()
            }
        };
        let Some(first) = first else {
            continue;
        };
        let mut batch = Vec::with_capacity(BATCH_SPANS);
        batch.push(first);
        if stopped {
            // Whatever is queued now is the last of it.
            while batch.len() < BATCH_SPANS {
                match spans.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
        } else {
            let filled = tokio::time::sleep(BATCH_DELAY);
            tokio::pin!(filled);
            while batch.len() < BATCH_SPANS {
                let room = BATCH_SPANS - batch.len();
                tokio::select! {
                    received = spans.recv_many(&mut batch, room) => {
                        if received == 0 {
                            break;
                        }
                    }
                    _ = &mut filled => break,
                    _ = stopping.wait_for(|stop| *stop) => {
                        stopped = true;
                        while let Ok(span) = spans.try_recv() {
                            batch.push(span);
                        }
                        break;
                    }
                }
            }
        }
        let count = batch.len() as u64;
        match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(batch)).await {
            Ok(Ok(())) => {
                counts.exported.fetch_add(count, Ordering::Relaxed);
                if failing {
                    failing = false;
                    tracing::info!(msg = "exporting spans again");
                }
            }
            result => {
                counts.dropped(count);
                if !failing {
                    failing = true;
                    let reason = match result {
                        Ok(Err(error)) => error.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(msg = "could not export spans; dropping them until the collector answers", err = %reason);
                }
            }
        }
    }
    let _ = exporter.shutdown_with_timeout(Duration::ZERO);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::{Tracer as _, TracerProvider as _};

    use super::*;
    use crate::trace::QUEUE_SPANS;

    /// A collector that takes every batch, noting its size.
    #[derive(Debug, Clone, Default)]
    struct Takes(Arc<Mutex<Vec<usize>>>);

    impl SpanExporter for Takes {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("lock").push(batch.len());
            Ok(())
        }
    }

    /// A collector that never answers.
    #[derive(Debug)]
    struct Silent;

    impl SpanExporter for Silent {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    fn provider<E: SpanExporter + 'static>(exporter: E) -> (SdkTracerProvider, Tracing) {
        let resource = Resource::builder_empty().build();
        let (processor, tracing) = start(exporter, &resource, "test".into(), QUEUE_SPANS);
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        (provider, tracing)
    }

    #[tokio::test(start_paused = true)]
    async fn spans_go_out_in_batches_and_the_rest_on_shutdown() {
        let taken = Takes::default();
        let (provider, tracing) = provider(taken.clone());
        let tracer = provider.tracer("test");
        for _ in 0..3 {
            drop(tracer.start("call"));
        }
        tokio::time::sleep(BATCH_DELAY + Duration::from_millis(1)).await;
        assert_eq!(*taken.0.lock().expect("lock"), [3]);
        assert_eq!(tracing.exported_spans(), 3);
        for _ in 0..2 {
            drop(tracer.start("call"));
        }
        tracing.shutdown(Duration::from_secs(1)).await;
        assert_eq!(*taken.0.lock().expect("lock"), [3, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_and_a_silent_collector_drop_spans_and_count_them() {
        let (provider, tracing) = provider(Silent);
        let registry = crate::metrics::Registry::new();
        tracing.count_in(&registry);
        let tracer = provider.tracer("test");
        // Ending a span never waits: past the queue's bound, spans are dropped at once.
        for _ in 0..QUEUE_SPANS + 100 {
            drop(tracer.start("call"));
        }
        assert_eq!(tracing.dropped_spans(), 100);
        // The first full batch goes out at once, and is given up on after the export timeout.
        tokio::time::sleep(EXPORT_TIMEOUT - Duration::from_millis(1)).await;
        assert_eq!(tracing.dropped_spans(), 100);
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(tracing.dropped_spans(), 100 + BATCH_SPANS as u64);
        assert_eq!(tracing.exported_spans(), 0);
        assert!(
            registry
                .render()
                .contains(&format!("trace_spans_dropped_total {}", 100 + BATCH_SPANS)),
            "{}",
            registry.render()
        );
        // Meanwhile the queue has room again: new spans are taken.
        drop(tracer.start("call"));
        assert_eq!(tracing.dropped_spans(), 100 + BATCH_SPANS as u64);
        // Shutting down waits no longer than it is told to.
        let stopping = tokio::time::Instant::now();
        tracing.shutdown(Duration::from_secs(1)).await;
        assert_eq!(stopping.elapsed(), Duration::from_secs(1));
    }
}
