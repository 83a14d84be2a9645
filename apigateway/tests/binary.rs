//! The gateway's command line as users meet it: flags, mistakes, and an etcd that is not there.

mod support;

use std::time::{Duration, Instant};

use testkit::http::HttpClient;
use testkit::process::{free_port, help_text, run};

#[test]
fn help_names_go_kits_flags_and_the_routes() {
    let help = help_text(support::GATEWAY);
    for flag in [
        "--http.addr",
        "--retry.max",
        "--retry.timeout",
        "--etcd <ENDPOINTS>",
    ] {
        assert!(help.contains(flag), "no {flag} in:\n{help}");
    }
    assert!(help.contains("/stringsvc/uppercase"), "{help}");
}

#[test]
fn mistakes_are_one_line_and_status_2() {
    for (args, message) in [
        (
            &["-retry.max", "0"][..],
            "invalid value '0' for '--retry.max <N>'",
        ),
        (&["-retry.timeout", "5"][..], "--retry.timeout"),
        (&["--etcd", ""][..], "error: --etcd: no etcd endpoint given"),
    ] {
        let finished = run(support::GATEWAY, args);
        assert_eq!(finished.code, Some(2), "{args:?}: {finished:?}");
        assert_eq!(finished.stderr.lines().count(), 1, "{args:?}: {finished:?}");
        assert!(finished.stderr.contains(message), "{args:?}: {finished:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_etcd_the_gateway_serves_and_says_why_nothing_answers() {
    let nobody = free_port();
    let started = Instant::now();
    let gateway = support::gateway(&format!("127.0.0.1:{nobody}"), &[]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let answer = HttpClient::new()
        .post_json(&gateway.url("/addsvc/sum"), r#"{"a":1,"b":2}"#)
        .await;
    assert_eq!(answer.status.as_u16(), 503, "{}", answer.body);
    assert!(
        answer
            .body
            .starts_with(r#"{"error":"service discovery failed: etcd: "#),
        "{}",
        answer.body
    );
    // The routes and their methods are the gateway's own, with or without instances.
    let http = HttpClient::new();
    for path in [
        "/addsvc/sum",
        "/addsvc/concat",
        "/stringsvc/uppercase",
        "/stringsvc/count",
    ] {
        let answer = http
            .send(http::Method::PUT, &gateway.url(path), "{}", &[])
            .await;
        assert_eq!(answer.status.as_u16(), 405, "{path}: {}", answer.body);
        assert_eq!(answer.header("allow"), Some("GET,HEAD,POST"), "{path}");
        assert!(answer.body.starts_with(r#"{"error":"#), "{}", answer.body);
    }
    let answer = http.post_json(&gateway.url("/addsvc/nothing"), "{}").await;
    assert_eq!(answer.status.as_u16(), 404, "{}", answer.body);
    // Everything it has called so far, its maths included, came without libm (kit-core's `libm`).
    gateway.assert_no_libm();
    let output = gateway.stop();
    assert!(output.contains("etcd unreachable"), "{output}");
}
