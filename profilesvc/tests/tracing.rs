//! profilesvc traced: each request a span named by its operation, continuing the caller's
//! trace, exported to a real OTLP receiver; the dropped-span counter on `/metrics`.

use std::time::Duration;

use http::Method;
use testkit::http::HttpClient;
use testkit::otlp::Receiver;
use testkit::process::Service;

const BIN: &str = env!("CARGO_BIN_EXE_profilesvc");

#[tokio::test]
async fn each_request_is_a_span_named_by_its_operation() {
    let receiver = Receiver::start();
    // The endpoint from the environment, as a deployment would set it.
    let svc = Service::start_with_env(
        BIN,
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint().as_str()),
            ("OTEL_SERVICE_NAME", "profiles"),
        ],
    );
    let client = HttpClient::new();
    let caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let created = client
        .send(
            Method::POST,
            &svc.url("/profiles/"),
            r#"{"id":"1234","name":"Go Kit"}"#,
            &[("traceparent", caller)],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let missing = client
        .send(Method::GET, &svc.url("/profiles/nobody"), "", &[])
        .await;
    assert_eq!(missing.status, 404);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 2);
    let tree = testkit::otlp::tree(&spans);
    let post = spans
        .iter()
        .find(|s| s.name == "PostProfile")
        .unwrap_or_else(|| panic!("{tree}"));
    assert_eq!(post.service, "profiles");
    assert_eq!(post.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(post.parent_span_id, "b7ad6b7169203331");
    assert_eq!(post.attribute("url.path"), Some("/profiles/"));
    let get = spans
        .iter()
        .find(|s| s.name == "GetProfile")
        .unwrap_or_else(|| panic!("{tree}"));
    assert_eq!(get.attribute("http.response.status_code"), Some("404"));
    // A 404 is the caller's mistake: the server's span says what kind, and is not failed.
    assert_eq!(get.attribute("error.type"), Some("not_found"));
    assert!(!get.error, "{get:?}");

    let metrics = client
        .send(Method::GET, &svc.url("/metrics"), "", &[])
        .await;
    assert!(
        metrics.body.contains("trace_spans_dropped_total 0"),
        "{}",
        metrics.body
    );
    svc.stop();
}
