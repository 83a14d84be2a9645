//! Micro-benchmarks of kit-core's per-call costs, in nanoseconds per call.
//!
//! Run with: `cargo bench -p kit-core` (or `cargo bench -p kit-core -- breaker` for one group).
//! The docs' Performance page explains the method and records the latest figures.

use std::convert::Infallible;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use kit_core::circuitbreaker::{CircuitBreakerLayer, Settings};
use kit_core::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn, middleware_fn};
use kit_core::lb::{Balancer, RoundRobin, retry};
use kit_core::log::{Logger, LoggingLayer};
use kit_core::metrics::{InstrumentLayer, Registry};
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::sd::{Endpointer, FixedInstancer};
use kit_core::transport::http::{decode_json_request, encode_json_response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UppercaseRequest {
    #[serde(default)]
    s: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct UppercaseResponse {
    v: String,
    err: Option<String>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

fn echo() -> Endpoint<u64, u64> {
    endpoint_fn(|n: u64| async move { Ok::<_, Infallible>(n) })
}

/// A middleware that only passes the call on, written as tutorial code writes one: the cost of
/// a layer itself.
fn pass_through(inner: Endpoint<u64, u64>) -> Endpoint<u64, u64> {
    let layer =
        middleware_fn(|next: Endpoint<u64, u64>, n: u64| async move { next.invoke(n).await });
    ServiceBuilder::new().layer(layer).service(inner)
}

fn endpoint_chains(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("endpoint");
    for layers in [0usize, 1, 5] {
        let mut endpoint = echo();
        for _ in 0..layers {
            endpoint = pass_through(endpoint);
        }
        group.bench_function(format!("{layers} middlewares"), |b| {
            b.to_async(&rt)
                .iter(|| async { endpoint.invoke(black_box(7)).await })
        });
    }
    group.finish();
}

fn kit_layers(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("layer");
    let wrap = |layer_name: &str, endpoint: Endpoint<u64, u64>| (layer_name.to_owned(), endpoint);
    let registry = Registry::new();
    let many = NonZeroU32::MAX;
    let cases = [
        wrap("none", echo()),
        // What wrapping any layer in an `Endpoint` costs by itself: one more boxed level.
        wrap(
            "boxed again, no layer",
            Endpoint::new(ServiceBuilder::new().service(echo())),
        ),
        wrap(
            "circuit breaker (closed)",
            Endpoint::new(
                ServiceBuilder::new()
                    .layer(CircuitBreakerLayer::new(Settings::default()))
                    .service(echo()),
            ),
        ),
        wrap(
            "erroring limiter (tokens left)",
            Endpoint::new(
                ServiceBuilder::new()
                    .layer(ErroringLimiterLayer::new(Limiter::new(many, many)))
                    .service(echo()),
            ),
        ),
        wrap(
            "instrumenting",
            Endpoint::new(
                ServiceBuilder::new()
                    .layer(InstrumentLayer::new(&registry, "bench", "echo"))
                    .service(echo()),
            ),
        ),
        wrap(
            "logging (discarded)",
            Endpoint::new(
                ServiceBuilder::new()
                    .layer(LoggingLayer::new(Logger::discard(), "echo"))
                    .service(echo()),
            ),
        ),
    ];
    for (name, endpoint) in cases {
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { endpoint.invoke(black_box(7)).await })
        });
    }
    group.finish();
}

fn balancing(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("lb");
    let instancer = FixedInstancer::new(["a:1", "b:2", "c:3"]);
    let endpointer = Endpointer::new(&instancer, |_: &str| Ok::<_, Infallible>(echo()));
    let round_robin = RoundRobin::new(endpointer.clone());
    group.bench_function("round robin pick", |b| {
        b.iter(|| round_robin.endpoint().map(black_box).is_ok())
    });
    let retrying = retry(3, Duration::from_millis(250), RoundRobin::new(endpointer));
    group.bench_function("retry over round robin (first attempt succeeds)", |b| {
        b.to_async(&rt)
            .iter(|| async { retrying.invoke(black_box(7)).await })
    });
    group.finish();
}

fn json_transport(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("http json");
    let body = br#"{"s":"hello, world"}"#;
    group.bench_function("kit_core::json::from_slice", |b| {
        b.iter(|| kit_core::json::from_slice::<UppercaseRequest>(black_box(body)))
    });
    group.bench_function("decode_json_request (body in memory)", |b| {
        b.to_async(&rt).iter(|| async {
            let request = Request::builder()
                .method("POST")
                .uri("/uppercase")
                .body(axum::body::Body::from(&body[..]))
                .expect("a request");
            decode_json_request::<UppercaseRequest>(request).await
        })
    });
    let response = UppercaseResponse {
        v: "HELLO, WORLD".into(),
        err: None,
    };
    group.bench_function("encode_json_response", |b| {
        b.iter(|| encode_json_response(black_box(response.clone())))
    });
    group.finish();
}

criterion_group!(
    benches,
    endpoint_chains,
    kit_layers,
    balancing,
    json_transport
);
criterion_main!(benches);
