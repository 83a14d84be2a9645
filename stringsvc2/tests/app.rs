//! The stage-2 app in-process, on a real socket: what it answers, logs and counts, with a logger
//! and a registry of the test's own.

use kit_core::log::{Format, Logger};
use kit_core::metrics::Registry;
use stringsvc1::service::BasicStringService;
use testkit::http::{TestServer, post_json, send};

#[tokio::test]
async fn the_app_answers_logs_and_counts_each_call() {
    let (logger, lines) = Logger::builder(Format::Logfmt)
        .to_buffer()
        .expect("a logger");
    let registry = Registry::new();
    let server = TestServer::start(stringsvc2::app(BasicStringService, &logger, &registry)).await;

    let answer = post_json(&server.url("/uppercase"), r#"{"s":"hello, world"}"#).await;
    assert_eq!(answer.body, "{\"v\":\"HELLO, WORLD\",\"err\":null}\n");
    let answer = post_json(&server.url("/count"), r#"{"s":"hello"}"#).await;
    assert_eq!(answer.body, "{\"v\":5}\n");

    let logged = lines.lines();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(
        logged[0].starts_with(
            r#"method=uppercase input="hello, world" output="HELLO, WORLD" err=null took="#
        ),
        "{logged:?}"
    );
    assert!(
        logged[1].starts_with("method=count input=hello n=5 took="),
        "{logged:?}"
    );

    let metrics = send(http::Method::GET, &server.url("/metrics"), "", &[]).await;
    for line in [
        r#"my_group_string_service_requests_total{method="uppercase",error="false"} 1"#,
        r#"my_group_string_service_requests_total{method="count",error="false"} 1"#,
        "my_group_string_service_count_result_bytes_sum 5",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing from\n{}",
            metrics.body
        );
    }
}

#[tokio::test]
async fn a_callers_request_id_and_deadline_are_on_every_line_of_its_call() {
    let (logger, lines) = Logger::builder(Format::Logfmt)
        .to_buffer()
        .expect("a logger");
    let registry = Registry::new();
    let app = stringsvc2::app(BasicStringService, &logger, &registry);
    // The server's span goes to the subscriber of the task that serves the request: the test's.
    let _installed = logger.set_default();
    let server = TestServer::start(app).await;
    send(
        http::Method::POST,
        &server.url("/count"),
        r#"{"s":"abc"}"#,
        &[("x-request-id", "abc-123"), ("x-request-timeout", "2s")],
    )
    .await;
    let logged = lines.lines();
    assert_eq!(logged.len(), 1, "{logged:?}");
    let line = &logged[0];
    assert!(
        line.starts_with("request_id=abc-123 timeout=")
            && line.contains(" method=count input=abc n=3 took="),
        "{line}"
    );
}
