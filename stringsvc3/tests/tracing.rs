//! Request tracing across real processes: curl → proxy → instance is one trace, exported to a
//! real OTLP receiver; a Go kit caller's B3 headers are continued, and a Go kit instance hears
//! ours; a collector that is down costs the requests nothing.

use std::time::{Duration, Instant};

use http::Method;
use testkit::http::HttpClient;
use testkit::otlp::{BlackHole, ReceivedSpan, Receiver};
use testkit::process::{Service, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc3");

/// Starts `stringsvc3` named `name` (`OTEL_SERVICE_NAME`), exporting to `endpoint`.
fn start(name: &str, endpoint: &str, args: &[&str]) -> Service {
    let port = free_port();
    let listen = format!("-listen=127.0.0.1:{port}");
    let otlp = format!("--otlp-endpoint={endpoint}");
    let mut all = vec![listen.as_str(), otlp.as_str()];
    all.extend_from_slice(args);
    Service::start_on(BIN, &all, &[("OTEL_SERVICE_NAME", name)], port)
}

fn only<'a>(spans: &'a [ReceivedSpan], service: &str, kind: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service == service && s.kind == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} span of {service}:\n{}",
        testkit::otlp::tree(spans)
    );
    found[0]
}

// ANCHOR: one_trace
#[tokio::test]
async fn a_call_through_the_proxy_is_one_trace_with_a_span_per_hop() {
    let receiver = Receiver::start();
    let instance = start("instance", &receiver.endpoint(), &[]);
    let proxy_flag = format!("-proxy=127.0.0.1:{}", instance.port());
    let proxy = start("proxy", &receiver.endpoint(), &[&proxy_flag]);

    let answer = HttpClient::new()
        .post_json(&proxy.url("/uppercase"), r#"{"s":"hello"}"#)
        .await;
    assert_eq!(answer.body, "{\"v\":\"HELLO\",\"err\":null}\n");
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 3);

    let entry = only(&spans, "proxy", "server");
    let call = only(&spans, "proxy", "client");
    let served = only(&spans, "instance", "server");
    // One trace, started by the proxy (curl sent no trace), each hop the child of the last.
    assert!(entry.parent_span_id.is_empty(), "{entry:?}");
    assert_eq!(call.parent_span_id, entry.span_id);
    assert_eq!(served.parent_span_id, call.span_id);
    for span in [entry, call, served] {
        assert_eq!(span.trace_id, entry.trace_id);
        assert_eq!(span.name, "uppercase");
        assert_eq!(span.attribute("http.response.status_code"), Some("200"));
        assert!(!span.error, "{span:?}");
    }
    assert_eq!(entry.attribute("http.request.method"), Some("POST"));
    assert_eq!(entry.attribute("url.path"), Some("/uppercase"));
    // The proxy calls its instances as Go kit's proxy does: GET with a JSON body.
    assert_eq!(call.attribute("http.request.method"), Some("GET"));
    let instance_url = format!("http://127.0.0.1:{}/uppercase", instance.port());
    assert_eq!(call.attribute("url.full"), Some(instance_url.as_str()));
    assert_eq!(served.attribute("http.request.method"), Some("GET"));
    // ANCHOR_END: one_trace

    // The book shows this trace as a tree (its trace id aside, which is new each time).
    let tree = testkit::otlp::tree_with(
        &spans,
        &[
            "http.request.method",
            "url.path",
            "http.response.status_code",
        ],
    );
    let hops: Vec<&str> = tree.lines().skip(1).collect();
    let page = std::fs::read_to_string(testkit::book::book_src().join("tracing.md"))
        .expect("docs/src/tracing.md");
    assert!(
        page.contains(&hops.join("\n")),
        "the book's tree is not\n{tree}"
    );

    // Each service's log lines of the call lead to its span.
    let proxy_log = proxy.stop();
    let instance_log = instance.stop();
    let line = |log: &str, span: &ReceivedSpan| {
        log.lines().any(|l| {
            l.contains(&format!(
                "trace_id={} span_id={}",
                span.trace_id, span.span_id
            ))
        })
    };
    assert!(line(&proxy_log, entry), "{proxy_log}");
    assert!(line(&instance_log, served), "{instance_log}");
}

#[tokio::test]
async fn a_go_kit_callers_b3_trace_is_continued() {
    let receiver = Receiver::start();
    let svc = start("stringsvc3", &receiver.endpoint(), &[]);
    // What Go kit's zipkin-go HTTP client middleware sends, in both of B3's spellings.
    let cases: [&[(&str, &str)]; 2] = [
        &[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )],
        &[
            ("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-ParentSpanId", "0020000000000001"),
            ("X-B3-Sampled", "1"),
        ],
    ];
    let client = HttpClient::new();
    for headers in cases {
        let answer = client
            .send(
                Method::POST,
                &svc.url("/count"),
                r#"{"s":"go kit"}"#,
                headers,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 2);
    let continued = |trace: &str, parent: &str| {
        spans
            .iter()
            .any(|s| s.trace_id == trace && s.parent_span_id == parent && s.name == "count")
    };
    let tree = testkit::otlp::tree(&spans);
    assert!(
        continued("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"),
        "{tree}"
    );
    assert!(
        continued("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"),
        "{tree}"
    );
    svc.stop();
}

#[tokio::test]
async fn otel_bsp_max_queue_size_bounds_the_spans_kept_for_a_collector_that_never_answers() {
    let collector = BlackHole::start();
    let port = free_port();
    let listen = format!("-listen=127.0.0.1:{port}");
    let otlp = format!("--otlp-endpoint={}", collector.endpoint());
    let instance = Service::start_on(
        BIN,
        &[&listen, &otlp, "-rate=100000", "-burst=100000"],
        &[("OTEL_BSP_MAX_QUEUE_SIZE", "10")],
        port,
    );
    let client = HttpClient::new();
    // The first batch (at most 512 spans) waits on the collector; ten more wait in the queue
    // and every other span is dropped. With the default queue, 2048, none would be.
    for n in 0..700 {
        let answer = client
            .post_json(&instance.url("/uppercase"), &format!(r#"{{"s":"x{n}"}}"#))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let metrics = client
        .send(Method::GET, &instance.url("/metrics"), "", &[])
        .await;
    let dropped: u64 = metrics
        .body
        .lines()
        .find_map(|line| line.strip_prefix("trace_spans_dropped_total "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no trace_spans_dropped_total:\n{}", metrics.body));
    assert!((178..700).contains(&dropped), "{dropped} spans dropped");
    instance.stop();
}

#[test]
fn an_invalid_otel_bsp_max_queue_size_is_refused_in_one_line() {
    // A port of its own rather than "any port", should it listen before refusing: see
    // `testkit::process::free_port`.
    let listen = format!("-listen=127.0.0.1:{}", free_port());
    let output = std::process::Command::new(BIN)
        .args([listen.as_str(), "--otlp-endpoint=http://127.0.0.1:9"])
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: invalid OTEL_BSP_MAX_QUEUE_SIZE \"lots\": expected a number of spans from 1 to 1048576"
    );
}

#[tokio::test]
async fn a_collector_that_never_answers_neither_blocks_nor_slows_requests() {
    let collector = BlackHole::start();
    let instance = start("instance", &collector.endpoint(), &[]);
    let proxy_flag = format!("-proxy=127.0.0.1:{}", instance.port());
    let proxy = start(
        "proxy",
        &collector.endpoint(),
        &[&proxy_flag, "-rate=100000", "-burst=100000"],
    );
    let client = HttpClient::new();
    // Each export to it waits five seconds before giving up: a request that waited for one
    // would take that long. Each of three hundred requests, traced at both hops, takes
    // milliseconds (the slowest is held to half an export's wait, not to a speed).
    let mut slowest = Duration::ZERO;
    for n in 0..300 {
        let started = Instant::now();
        let body = format!(r#"{{"s":"x{n}"}}"#);
        let answer = client
            .try_send(Method::POST, &proxy.url("/uppercase"), body, &[])
            .await
            .unwrap_or_else(|problem| {
                panic!(
                    "request {n}: {problem}\nthe proxy printed:\n{}\nthe instance printed:\n{}",
                    proxy.output(),
                    instance.output()
                )
            });
        assert_eq!(answer.status, 200, "{}", answer.body);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(2500),
        "a request took {slowest:?}: did it wait for the collector?"
    );
    // And it stops promptly: the last spans get a bounded wait, not the collector's whim.
    let stopping = Instant::now();
    proxy.stop();
    instance.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "stopping took {:?}",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn a_go_kit_instance_behind_our_proxy_continues_the_trace() {
    use axum::http::HeaderMap;
    use axum::routing::any;
    use std::sync::{Arc, Mutex};
    // A stand-in for a Go kit instance traced with zipkin-go: it reads B3, as zipkin-go's HTTP
    // server middleware does, and answers as Go kit's stringsvc.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let heard = seen.clone();
    let app = axum::Router::new().route(
        "/uppercase",
        any(move |headers: HeaderMap| {
            let heard = heard.clone();
            async move {
                let b3 = headers
                    .get("b3")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                heard.lock().expect("lock").push(b3.to_owned());
                "{\"v\":\"FOO\"}\n"
            }
        }),
    );
    let go = testkit::http::TestServer::start(app).await;
    let receiver = Receiver::start();
    let proxy_flag = format!("-proxy=127.0.0.1:{}", go.addr().port());
    let proxy = start("proxy", &receiver.endpoint(), &[&proxy_flag]);
    let answer = HttpClient::new()
        .post_json(&proxy.url("/uppercase"), r#"{"s":"foo"}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 2);
    let call = only(&spans, "proxy", "client");
    // The Go kit instance heard our client span, in the header it reads: its spans would be
    // children of ours.
    assert_eq!(
        *seen.lock().expect("lock"),
        [format!("{}-{}-1", call.trace_id, call.span_id)]
    );
    proxy.stop();
}

#[tokio::test]
async fn a_retried_call_shows_each_attempt() {
    let receiver = Receiver::start();
    let instance = start("instance", &receiver.endpoint(), &[]);
    // The first instance is down: the first attempt fails, and the retry goes to the next.
    let down = free_port();
    let proxy_flag = format!("-proxy=127.0.0.1:{down},127.0.0.1:{}", instance.port());
    let proxy = start("proxy", &receiver.endpoint(), &[&proxy_flag]);
    let answer = HttpClient::new()
        .post_json(&proxy.url("/uppercase"), r#"{"s":"again"}"#)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 4);
    let tree = testkit::otlp::tree(&spans);
    let entry = only(&spans, "proxy", "server");
    let attempts: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == "proxy" && s.kind == "client")
        .collect();
    assert_eq!(attempts.len(), 2, "{tree}");
    // Both attempts are children of the request's span; the first failed, saying why.
    for attempt in &attempts {
        assert_eq!(attempt.parent_span_id, entry.span_id, "{tree}");
    }
    let (failed, succeeded): (Vec<&ReceivedSpan>, Vec<&ReceivedSpan>) =
        attempts.iter().copied().partition(|s| s.error);
    assert_eq!((failed.len(), succeeded.len()), (1, 1), "{tree}");
    assert_eq!(
        failed[0].attribute("error.type"),
        Some("unavailable"),
        "{tree}"
    );
    let served = only(&spans, "instance", "server");
    assert_eq!(served.parent_span_id, succeeded[0].span_id, "{tree}");
    proxy.stop();
    instance.stop();
}
