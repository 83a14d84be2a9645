//! The gateway in front of real instances found in a real etcd: routing, spreading, what errors
//! become, metrics.

mod support;

use std::time::Duration;

use kit_core::sd::etcd::{self, Client, Registrar};
use support::{addsvc, gateway, stringsvc, until_logged, until_registered};
use testkit::etcd::Etcd;
use testkit::http::HttpClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_spreads_calls_and_keeps_the_services_answers() {
    let etcd = Etcd::start();
    let a1 = addsvc(&etcd.endpoint());
    let a2 = addsvc(&etcd.endpoint());
    let s1 = stringsvc(&etcd.endpoint());
    let s2 = stringsvc(&etcd.endpoint());
    until_registered(
        &etcd,
        "addsvc",
        &[&a1.address, &a2.address],
        Duration::from_secs(5),
    )
    .await;
    until_registered(
        &etcd,
        "stringsvc",
        &[&s1.address, &s2.address],
        Duration::from_secs(5),
    )
    .await;
    let gateway = gateway(&etcd.endpoint(), &[]);
    let http = HttpClient::new();

    for i in 0..10 {
        let answer = http
            .post_json(
                &gateway.url("/addsvc/sum"),
                &format!(r#"{{"a":{i},"b":2}}"#),
            )
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.body.trim()),
            (200, &*format!(r#"{{"v":{}}}"#, i + 2))
        );
        let answer = http
            .post_json(&gateway.url("/stringsvc/uppercase"), r#"{"s":"hello"}"#)
            .await;
        assert_eq!(
            (answer.status.as_u16(), answer.body.trim()),
            (200, r#"{"v":"HELLO","err":null}"#)
        );
    }
    let answer = http
        .post_json(&gateway.url("/addsvc/concat"), r#"{"a":"1","b":"2"}"#)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.trim()),
        (200, r#"{"v":"12"}"#)
    );
    let answer = http
        .post_json(&gateway.url("/stringsvc/count"), r#"{"s":"hello"}"#)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.trim()),
        (200, r#"{"v":5}"#)
    );

    // Round robin: each instance had half of the calls (eleven to each service).
    for pair in [[&a1, &a2], [&s1, &s2]] {
        let calls = until_logged(&pair, 11).await;
        for (instance, calls) in pair.iter().zip(calls) {
            assert!(
                (5..=6).contains(&calls),
                "{}: {calls} calls",
                instance.address
            );
        }
    }

    // Business errors: the service's message, 400, and no retry.
    let answer = http
        .post_json(&gateway.url("/addsvc/sum"), r#"{"a":0,"b":0}"#)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.trim()),
        (400, r#"{"error":"can't sum two zeroes"}"#)
    );
    let answer = http
        .post_json(&gateway.url("/stringsvc/uppercase"), r#"{"s":""}"#)
        .await;
    assert_eq!(
        (answer.status.as_u16(), answer.body.trim()),
        (400, r#"{"v":"","err":"Empty string"}"#)
    );
    // A request the gateway cannot read is its own 400.
    let answer = http.post_json(&gateway.url("/stringsvc/count"), "{").await;
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
    assert!(answer.body.starts_with(r#"{"error":"#), "{}", answer.body);
    let answer = http.post_json(&gateway.url("/nowhere"), "{}").await;
    assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);

    // Per-route counts and latencies.
    let metrics = http
        .send(http::Method::GET, &gateway.url("/metrics"), "", &[])
        .await
        .body;
    for line in [
        r#"apigateway_requests_total{method="/addsvc/sum",error="false"} 11"#,
        r#"apigateway_requests_total{method="/stringsvc/uppercase",error="false"} 10"#,
        r#"apigateway_requests_total{method="/stringsvc/uppercase",error="true"} 1"#,
        r#"apigateway_requests_total{method="/addsvc/concat",error="false"} 1"#,
        r#"apigateway_request_duration_seconds_count{method="/stringsvc/count",error="false"} 1"#,
    ] {
        assert!(metrics.contains(line), "no {line} in:\n{metrics}");
    }
    // A log line per call.
    let output = gateway.stop();
    assert_eq!(
        output
            .lines()
            .filter(|l| l.contains("method=/addsvc/sum"))
            .count(),
        11,
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_to_answer_is_503_and_no_answer_in_time_is_504() {
    let etcd = Etcd::start();
    let gateway = gateway(&etcd.endpoint(), &["-retry.timeout", "300ms"]);
    let http = HttpClient::new();
    // No instance registered: 503, in JSON, for every route.
    for (route, body) in [
        ("/addsvc/sum", r#"{"a":1,"b":2}"#),
        ("/addsvc/concat", r#"{"a":"1","b":"2"}"#),
        ("/stringsvc/uppercase", r#"{"s":"a"}"#),
        ("/stringsvc/count", r#"{"s":"a"}"#),
    ] {
        let answer = http.post_json(&gateway.url(route), body).await;
        assert_eq!(answer.status.as_u16(), 503, "{route}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        let why = json
            .get("error")
            .or_else(|| json.get("err"))
            .and_then(|e| e.as_str());
        assert!(
            why.is_some_and(|why| why.contains("no endpoints available")),
            "{route}: {}",
            answer.body
        );
    }

    // An instance that accepts connections and never answers: every attempt runs out of time.
    let silent = testkit::process::local_listener();
    let address = silent.local_addr().expect("addr").to_string();
    let client = Client::new(&etcd.endpoint()).expect("client");
    let registration = Registrar::start(
        client,
        etcd::key("stringsvc", &address),
        address.clone(),
        Duration::from_secs(5),
    );
    until_registered(&etcd, "stringsvc", &[&address], Duration::from_secs(5)).await;
    let started = std::time::Instant::now();
    let answer = http
        .post_json(&gateway.url("/stringsvc/uppercase"), r#"{"s":"a"}"#)
        .await;
    assert_eq!(answer.status.as_u16(), 504, "{}", answer.body);
    assert!(
        answer.body.starts_with(r#"{"v":"","err":"#),
        "{}",
        answer.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    registration.deregister().await;
}
