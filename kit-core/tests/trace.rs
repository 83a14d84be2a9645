//! Tracing end to end in one process: servers and clients of every HTTP-based transport on
//! real sockets, exporting to a real OTLP receiver. One test, because a process sets tracing up
//! once.

use std::time::Duration;

use axum::Router;
use axum::routing::post_service;
use http::Method;
use kit_core::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
use kit_core::error::BoxError;
use kit_core::log::{Format, Logger};
use kit_core::trace::TraceLayer;
use kit_core::transport::http::{
    Client, Server, decode_json_request, decode_json_response, encode_json_request,
    encode_json_response,
};
use kit_core::transport::jsonrpc;
use serde_json::{Value, json};
use testkit::http::TestServer;
use testkit::otlp::{ReceivedSpan, Receiver};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn find<'a>(spans: &'a [ReceivedSpan], name: &str, kind: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} span {name}:\n{}", testkit::otlp::tree(spans)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hop_is_a_span_of_one_trace() {
    let receiver = Receiver::start();
    let tracing = kit_core::trace::init("kit-test", Some(&receiver.endpoint()))
        .expect("tracing set up")
        .expect("an endpoint was given");
    assert!(kit_core::trace::enabled());
    let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");

    // back: echoes; front: logs a line, then calls back over HTTP.
    let echo: Endpoint<Value, Value> = endpoint_fn(|v: Value| async move { Ok::<_, BoxError>(v) });
    let back = TestServer::start(
        Router::new().route(
            "/back",
            post_service(
                Server::new(
                    echo.clone(),
                    decode_json_request::<Value>,
                    encode_json_response,
                )
                .name("back"),
            ),
        ),
    )
    .await;
    let to_back = Client::new(
        Method::POST,
        back.url("/back").parse().expect("url"),
        encode_json_request::<Value>,
        decode_json_response::<Value>,
    )
    .name("back")
    .endpoint();
    let front_logger = logger.clone();
    // The endpoint has a span of its own too, inside the transport's.
    let front_endpoint: Endpoint<Value, Value> = Endpoint::new(
        ServiceBuilder::new()
            .layer(TraceLayer::new("Front"))
            .service(endpoint_fn(move |v: Value| {
                let to_back = to_back.clone();
                let logger = front_logger.clone();
                async move {
                    logger.in_scope(|| tracing::info!(msg = "calling back"));
                    to_back.invoke(v).await
                }
            })),
    );
    let front = TestServer::start(
        Router::new().route(
            "/front",
            post_service(
                Server::new(
                    front_endpoint,
                    decode_json_request::<Value>,
                    encode_json_response,
                )
                .name("front"),
            ),
        ),
    )
    .await;

    // A caller that traces sends its span in traceparent: everything continues its trace.
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let answer = testkit::http::send(
        Method::POST,
        &front.url("/front"),
        r#"{"n":1}"#,
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 4);
    let front_server = find(&spans, "front", "server");
    let front_work = find(&spans, "Front", "internal");
    let back_client = find(&spans, "back", "client");
    let back_server = find(&spans, "back", "server");
    for span in [front_server, back_client, back_server] {
        assert_eq!(span.trace_id, CALLER_TRACE, "{span:?}");
        assert_eq!(span.service, "kit-test");
        assert_eq!(span.attribute("http.request.method"), Some("POST"));
        assert_eq!(span.attribute("http.response.status_code"), Some("200"));
        assert!(!span.error);
    }
    assert_eq!(front_server.parent_span_id, CALLER_SPAN);
    assert_eq!(front_work.parent_span_id, front_server.span_id);
    assert_eq!(front_work.trace_id, CALLER_TRACE);
    assert_eq!(back_client.parent_span_id, front_work.span_id);
    assert_eq!(back_server.parent_span_id, back_client.span_id);
    assert_eq!(front_server.attribute("url.path"), Some("/front"));
    assert_eq!(
        back_client.attribute("url.full"),
        Some(back.url("/back").as_str())
    );
    assert_eq!(back_client.attribute("server.address"), Some("127.0.0.1"));
    // The line logged while front's endpoint worked leads to its span.
    assert_eq!(
        lines.lines(),
        [format!(
            "trace_id={CALLER_TRACE} span_id={} msg=\"calling back\"",
            front_work.span_id
        )]
    );

    // A Go kit service traces with Zipkin's B3 headers: its trace continues too.
    let answer = testkit::http::send(
        Method::POST,
        &back.url("/back"),
        "{}",
        &[
            ("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Sampled", "1"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.trace_id == "463ac35c9f6413ad48485a3953bb6124")
    });
    let continued = spans
        .iter()
        .find(|s| s.trace_id == "463ac35c9f6413ad48485a3953bb6124")
        .expect("the B3 trace");
    assert_eq!(continued.parent_span_id, "a2fb4a1d1a96d312");

    // A request without a trace starts one; a failure says what kind it was.
    let answer = testkit::http::send(Method::POST, &back.url("/back"), "{", &[]).await;
    assert_eq!(answer.status, 400);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.attribute("http.response.status_code") == Some("400"))
    });
    let failed = spans
        .iter()
        .find(|s| s.attribute("http.response.status_code") == Some("400"))
        .expect("the failed request's span");
    assert!(failed.parent_span_id.is_empty(), "a new trace: {failed:?}");
    assert_eq!(failed.attribute("error.type"), Some("invalid_argument"));
    // The caller's mistake: the server did its job, and its span's status is not an error.
    assert!(!failed.error);

    // JSON-RPC: one span per call, named by its method, on both sides.
    let rpc = TestServer::start(
        jsonrpc::Server::new()
            .method("echo", echo.clone(), Ok, Ok)
            .router(),
    )
    .await;
    let rpc_client = jsonrpc::Client::new(
        kit_core::transport::http::Pool::new(),
        rpc.url("/").parse().expect("url"),
        "echo",
        |v: Value| Ok(v),
        |answer: Result<Value, jsonrpc::ErrorObject>| answer.map_err(BoxError::from),
    )
    .endpoint();
    let echoed = rpc_client.invoke(json!({"a": 1})).await.expect("echo");
    assert_eq!(echoed, json!({"a": 1}));
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .filter(|s| s.attribute("rpc.system") == Some("jsonrpc"))
            .count()
            >= 2
    });
    let rpc_client_span = find(&spans, "echo", "client");
    let rpc_server_span = find(&spans, "echo", "server");
    assert_eq!(rpc_server_span.parent_span_id, rpc_client_span.span_id);
    assert_eq!(rpc_server_span.trace_id, rpc_client_span.trace_id);
    assert_eq!(rpc_server_span.attribute("rpc.method"), Some("echo"));

    assert_eq!(tracing.dropped_spans(), 0, "{tracing:?}");
    assert_eq!(
        receiver.spans().len(),
        8,
        "{}",
        testkit::otlp::tree(&receiver.spans())
    );
    tracing.shutdown(Duration::from_secs(5)).await;
}
