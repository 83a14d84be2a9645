//! The `stringsvc2` binary as a user runs it: its log lines on stderr and its `/metrics`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use http::Method;
use regex::Regex;
use testkit::process::Service;

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc2");

/// Starts the binary on a free port of 127.0.0.1 and waits until it listens.
fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
    Service::start_with_env(BIN, args, env)
}

/// What a `POST` of `body` to `path` answers.
async fn post(service: &Service, path: &str, body: &str) -> String {
    testkit::http::post_json(&service.url(path), body)
        .await
        .body
}

/// The tutorial's three calls.
async fn tutorial_calls(service: &Service) {
    assert_eq!(
        post(service, "/uppercase", r#"{"s":"hello, world"}"#).await,
        "{\"v\":\"HELLO, WORLD\",\"err\":null}\n"
    );
    assert_eq!(
        post(service, "/uppercase", r#"{"s":""}"#).await,
        "{\"v\":\"\",\"err\":\"Empty string\"}\n"
    );
    assert_eq!(
        post(service, "/count", r#"{"s":"hello, world"}"#).await,
        "{\"v\":12}\n"
    );
}

#[tokio::test]
async fn logs_one_logfmt_line_per_call() {
    let service = start(&[], &[]);
    let port = service.port();
    tutorial_calls(&service).await;
    let output = service.stop();
    let took = r"took=\d+(\.\d+)?(ns|µs|ms)";
    let expected = [
        format!("^msg=HTTP addr=127.0.0.1:{port}$"),
        format!(r#"^method=uppercase input="hello, world" output="HELLO, WORLD" err=null {took}$"#),
        format!(r#"^method=uppercase input= output= err="Empty string" {took}$"#),
        format!(r#"^method=count input="hello, world" n=12 {took}$"#),
    ];
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{output}");
    for (line, pattern) in lines.iter().zip(&expected) {
        let pattern = Regex::new(pattern).expect("pattern");
        assert!(pattern.is_match(line), "{line:?} does not match {pattern}");
    }
}

#[tokio::test]
async fn logs_json_objects_with_the_same_keys() {
    let service = start(&["--log-format", "json"], &[]);
    let port = service.port();
    tutorial_calls(&service).await;
    let output = service.stop();
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let keys: Vec<Vec<&str>> = objects
        .iter()
        .map(|o| o.keys().map(String::as_str).collect())
        .collect();
    assert_eq!(
        keys,
        [
            vec!["msg", "addr"],
            vec!["method", "input", "output", "err", "took"],
            vec!["method", "input", "output", "err", "took"],
            vec!["method", "input", "n", "took"],
        ]
    );
    assert_eq!(objects[0]["addr"], format!("127.0.0.1:{port}"));
    assert_eq!(objects[1]["output"], "HELLO, WORLD");
    assert_eq!(objects[1]["err"], serde_json::Value::Null);
    assert_eq!(objects[2]["err"], "Empty string");
    assert_eq!(objects[3]["n"], 12);
    assert!(objects[3]["took"].is_string());
}

#[tokio::test]
async fn rust_log_filters_the_lines() {
    let service = start(&[], &[("RUST_LOG", "warn")]);
    tutorial_calls(&service).await;
    assert_eq!(service.stop(), "");
}

#[test]
fn bad_logging_flags_are_refused_in_one_line() {
    let output = Command::new(BIN)
        .args(["--log-format", "xml"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("'xml'") && stderr.contains("--log-format"),
        "{stderr}"
    );

    let output = Command::new(BIN)
        .env("RUST_LOG", "info,=[")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: invalid log filter: RUST_LOG: "),
        "{stderr}"
    );
}

#[test]
fn help_explains_every_flag() {
    let help = testkit::process::help_text(BIN);
    for flag in [
        "--listen",
        "--drain-timeout",
        "--log-format",
        "RUST_LOG",
        "/metrics",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

/// Every sample of a Prometheus text exposition, by series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let service = start(&[], &[("RUST_LOG", "warn")]);
    for _ in 0..3 {
        post(&service, "/uppercase", r#"{"s":"hello"}"#).await;
    }
    for _ in 0..2 {
        post(&service, "/uppercase", r#"{"s":""}"#).await;
    }
    for s in ["hello, world", "hello, world", "", "abc"] {
        post(&service, "/count", &format!(r#"{{"s":"{s}"}}"#)).await;
    }
    // Refused before the service runs: not a request the service received.
    post(&service, "/count", "{bad json").await;

    let answer = testkit::http::send(Method::GET, &service.url("/metrics"), "", &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = answer.body;
    // Everything it has called so far, its maths included, came without libm (kit-core's `libm`).
    service.assert_no_libm();
    service.stop();

    let samples = samples(&text);
    let ns = "my_group_string_service";
    let expected = [
        (
            format!(r#"{ns}_requests_total{{method="uppercase",error="false"}}"#),
            3.0,
        ),
        (
            format!(r#"{ns}_requests_total{{method="uppercase",error="true"}}"#),
            2.0,
        ),
        (
            format!(r#"{ns}_requests_total{{method="count",error="false"}}"#),
            4.0,
        ),
        (
            format!(r#"{ns}_request_duration_seconds_count{{method="uppercase",error="false"}}"#),
            3.0,
        ),
        (
            format!(r#"{ns}_request_duration_seconds_count{{method="uppercase",error="true"}}"#),
            2.0,
        ),
        (
            format!(r#"{ns}_request_duration_seconds_count{{method="count",error="false"}}"#),
            4.0,
        ),
        (
            format!(
                r#"{ns}_request_duration_seconds_bucket{{method="count",error="false",le="+Inf"}}"#
            ),
            4.0,
        ),
        (format!("{ns}_count_result_bytes_count"), 4.0),
        (format!("{ns}_count_result_bytes_sum"), 27.0),
        (format!(r#"{ns}_count_result_bytes_bucket{{le="0"}}"#), 1.0),
        (format!(r#"{ns}_count_result_bytes_bucket{{le="4"}}"#), 2.0),
        (format!(r#"{ns}_count_result_bytes_bucket{{le="16"}}"#), 4.0),
    ];
    for (series, value) in &expected {
        assert_eq!(samples.get(series), Some(value), "{series} in\n{text}");
    }
    // Count cannot fail, so it has no error="true" series.
    assert!(
        !samples
            .keys()
            .any(|s| s.contains(r#"method="count",error="true""#)),
        "{text}"
    );
    let seconds: f64 = samples
        .iter()
        .filter(|(s, _)| s.starts_with(&format!("{ns}_request_duration_seconds_sum")))
        .map(|(_, v)| v)
        .sum();
    assert!(
        seconds > 0.0 && seconds < 1.0,
        "durations are in seconds: {seconds}"
    );

    let mut promtool = Command::new(testkit::tools::promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn metrics_answer_get_only() {
    let service = start(&[], &[]);
    let answer = testkit::http::send(Method::DELETE, &service.url("/metrics"), "", &[]).await;
    assert_eq!(answer.status, 405);
    assert!(answer.body.starts_with("{\"error\":"), "{}", answer.body);
    service.stop();
}

/// A client cannot forge or disguise log lines with what it sends: line breaks, Unicode line
/// separators, DEL and bidirectional controls are escaped, in both formats.
#[tokio::test]
async fn what_a_client_sends_cannot_forge_or_disguise_log_lines() {
    let sneaky = "x\\nmethod=count input=forged\\u2028\\u2029\\u0085\\u007f\\u202e";
    for format in ["logfmt", "json"] {
        let service = start(&["--log-format", format], &[]);
        post(&service, "/count", &format!("{{\"s\":\"{sneaky}\"}}")).await;
        let output = service.stop();
        let lines: Vec<&str> = output.lines().collect();
        // The start-up line and one line for the call, nothing more.
        assert_eq!(lines.len(), 2, "{format}: {output:?}");
        for raw in ['\n', '\u{2028}', '\u{2029}', '\u{85}', '\u{7f}', '\u{202e}'] {
            assert!(!lines[1].contains(raw), "{format}: {:?}", lines[1]);
        }
        assert!(
            lines[1].contains("\\u2028\\u2029\\u0085\\u007f\\u202e"),
            "{format}: {}",
            lines[1]
        );
    }
}
