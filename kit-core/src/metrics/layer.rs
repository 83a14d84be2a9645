//! A middleware that counts and times every call of an endpoint, as Go kit addsvc's
//! `InstrumentingMiddleware`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use metrics::{Counter, Histogram};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Registry;

/// Records, for each call, `<namespace>_requests_total{method, error}` and
/// `<namespace>_request_duration_seconds{method, error}`, where `error` is `"true"` when the
/// endpoint returned an error, or when the call was abandoned before it finished.
///
/// Business errors carried inside a successful response (Go kit's `Failer`) count as
/// `error="false"` here; a service middleware that sees them can record them, as stringsvc2's
/// does.
///
/// ```
/// use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
/// use kit_core::metrics::{InstrumentLayer, Registry};
///
/// # tokio_test::block_on(async {
/// let registry = Registry::new();
/// let sum: Endpoint<(i64, i64), i64> = endpoint_fn(|(a, b): (i64, i64)| async move {
///     Ok::<_, std::convert::Infallible>(a + b)
/// });
/// let sum = ServiceBuilder::new()
///     .layer(InstrumentLayer::new(&registry, "my_group_addsvc", "sum"))
///     .service(sum);
/// sum.invoke((1, 2)).await.unwrap();
/// assert!(registry
///     .render()
///     .contains("my_group_addsvc_requests_total{method=\"sum\",error=\"false\"} 1"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct InstrumentLayer {
    handles: Arc<RequestMetrics>,
}

impl InstrumentLayer {
    /// Records calls of `method` in `registry`, under metric names starting with `namespace`
    /// (Go kit's namespace and subsystem joined by `_`, e.g. `my_group_string_service`).
    pub fn new(registry: &Registry, namespace: &str, method: &str) -> Self {
        InstrumentLayer {
            handles: Arc::new(RequestMetrics::new(registry, namespace, method)),
        }
    }
}

/// The request count and duration of one method, by outcome: what [`InstrumentLayer`] records,
/// for a service middleware to record the same way.
///
/// Registers `<namespace>_requests_total{method, error}` (a counter) and
/// `<namespace>_request_duration_seconds{method, error}` (a histogram, in seconds). The
/// `error="false"` series exist from the start, at zero; the `error="true"` ones appear with the
/// first failure, so a method that cannot fail shows none.
#[derive(Debug, Clone)]
pub struct RequestMetrics {
    ok: (Counter, Histogram),
    failed: Arc<OnceLock<(Counter, Histogram)>>,
    registry: Registry,
    names: Arc<(String, String, String)>,
}

impl RequestMetrics {
    /// Registers the metrics of `method` in `registry`, named after `namespace`.
    pub fn new(registry: &Registry, namespace: &str, method: &str) -> Self {
        let names = Arc::new((
            format!("{namespace}_requests_total"),
            format!("{namespace}_request_duration_seconds"),
            method.to_owned(),
        ));
        RequestMetrics {
            ok: handles(registry, &names, "false"),
            failed: Arc::default(),
            registry: registry.clone(),
            names,
        }
    }

    /// Records one request that took `took`, with `error="true"` if it `failed`.
    pub fn record(&self, failed: bool, took: std::time::Duration) {
        let (requests, durations) = if failed {
            self.failed
                .get_or_init(|| handles(&self.registry, &self.names, "true"))
        } else {
            &self.ok
        };
        requests.increment(1);
        durations.record(took.as_secs_f64());
    }
}

fn handles(
    registry: &Registry,
    (requests_total, duration_seconds, method): &(String, String, String),
    error: &str,
) -> (Counter, Histogram) {
    let labels = [("method", method.as_str()), ("error", error)];
    (
        registry.counter(requests_total, "Number of requests received.", &labels),
        registry.histogram(
            duration_seconds,
            "Time taken to answer requests, in seconds.",
            &labels,
        ),
    )
}

impl<S> Layer<S> for InstrumentLayer {
    type Service = Instrument<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Instrument {
            inner,
            handles: self.handles.clone(),
        }
    }
}

/// The service [`InstrumentLayer`] wraps around an endpoint.
#[derive(Debug, Clone)]
pub struct Instrument<S> {
    inner: S,
    handles: Arc<RequestMetrics>,
}

impl<S, Req> Service<Req> for Instrument<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = InstrumentFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        InstrumentFuture {
            inner: self.inner.call(request),
            started: Instant::now(),
            handles: self.handles.clone(),
            recorded: false,
        }
    }
}

pin_project! {
    /// The response future of [`Instrument`]. Dropped before it finishes (the client went away,
    /// a timeout outside fired), it still counts the call, as failed.
    #[derive(Debug)]
    pub struct InstrumentFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        handles: Arc<RequestMetrics>,
        recorded: bool,
    }

    impl<F> PinnedDrop for InstrumentFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.recorded {
                this.handles.record(true, this.started.elapsed());
            }
        }
    }
}

impl<F, T, E> Future for InstrumentFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        *this.recorded = true;
        this.handles.record(result.is_err(), this.started.elapsed());
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxError;
    use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};

    #[tokio::test]
    async fn counts_by_outcome() {
        let registry = Registry::new();
        let half: Endpoint<i64, i64> = endpoint_fn(|n: i64| async move {
            if n % 2 == 0 {
                Ok(n / 2)
            } else {
                Err(BoxError::from("odd number"))
            }
        });
        let half = ServiceBuilder::new()
            .layer(InstrumentLayer::new(&registry, "test", "half"))
            .service(half);
        for n in [2, 4, 6, 1] {
            let _ = half.invoke(n).await;
        }
        let text = registry.render();
        for line in [
            "test_requests_total{method=\"half\",error=\"false\"} 3",
            "test_requests_total{method=\"half\",error=\"true\"} 1",
            "test_request_duration_seconds_count{method=\"half\",error=\"false\"} 3",
            "test_request_duration_seconds_count{method=\"half\",error=\"true\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[tokio::test]
    async fn an_abandoned_call_counts_as_failed() {
        let registry = Registry::new();
        let never: Endpoint<i64, i64> = endpoint_fn(|_: i64| async {
            std::future::pending::<()>().await;
            Ok::<_, BoxError>(0)
        });
        let never = ServiceBuilder::new()
            .layer(InstrumentLayer::new(&registry, "test", "never"))
            .service(never);
        let call = never.invoke(1);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), call)
                .await
                .is_err()
        );
        let text = registry.render();
        let line = "test_requests_total{method=\"never\",error=\"true\"} 1";
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
}
