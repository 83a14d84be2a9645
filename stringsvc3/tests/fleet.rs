//! The tutorial's fleet as users run it: real `stringsvc3` processes on 127.0.0.1, a proxy in
//! front of instances, driven over HTTP.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use regex::Regex;
use testkit::http::{HttpClient, TestServer};
use testkit::process::{PATIENCE, Service, Spawned, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc3");

/// A running `stringsvc3`.
struct Svc {
    service: Service,
}

impl Svc {
    /// Starts `stringsvc3 -listen=127.0.0.1:PORT ARGS...`, as the tutorial spells its flags.
    fn start(args: &[&str]) -> Svc {
        let port = free_port();
        let listen = format!("-listen=127.0.0.1:{port}");
        let mut all = vec![listen.as_str()];
        all.extend_from_slice(args);
        Svc {
            service: Service::start_on(BIN, &all, &[], port),
        }
    }

    fn proxy(instances: &[&Svc], args: &[&str]) -> Svc {
        let list: Vec<String> = instances
            .iter()
            .map(|i| format!("localhost:{}", i.port()))
            .collect();
        let proxy = format!("-proxy={}", list.join(","));
        let mut all = vec![proxy.as_str()];
        all.extend_from_slice(args);
        Svc::start(&all)
    }

    fn port(&self) -> u16 {
        self.service.port()
    }

    fn url(&self, path: &str) -> String {
        self.service.url(path)
    }

    fn process(&mut self) -> &mut Spawned {
        self.service.process()
    }

    /// Stops it with SIGTERM and returns what it printed; it must exit 0.
    fn stop(self) -> String {
        self.service.stop()
    }
}

async fn uppercase(client: &HttpClient, svc: &Svc, s: &str) -> (u16, String) {
    let answer = client
        .post_json(&svc.url("/uppercase"), &format!(r#"{{"s":"{s}"}}"#))
        .await;
    (answer.status.as_u16(), answer.body)
}

#[tokio::test]
async fn foo_bar_baz_land_on_the_first_second_and_third_instance() {
    let instances = [Svc::start(&[]), Svc::start(&[]), Svc::start(&[])];
    let proxy = Svc::proxy(&instances.iter().collect::<Vec<_>>(), &[]);
    let client = HttpClient::new();
    for s in ["foo", "bar", "baz"] {
        let answer = uppercase(&client, &proxy, s).await;
        assert_eq!(
            answer,
            (
                200,
                format!("{{\"v\":\"{}\",\"err\":null}}\n", s.to_uppercase())
            )
        );
    }
    // Everything they have called so far, its maths included, came without libm (kit-core's `libm`).
    proxy.service.assert_no_libm();
    instances[0].service.assert_no_libm();
    let proxy_port = proxy.port();
    let ports: Vec<u16> = instances.iter().map(|i| i.port()).collect();
    let proxy_log = proxy.stop();
    let logs: Vec<String> = instances.into_iter().map(Svc::stop).collect();
    for (log, s) in logs.iter().zip(["foo", "bar", "baz"]) {
        let calls: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("method=uppercase"))
            .collect();
        assert_eq!(calls.len(), 1, "{log}");
        assert!(calls[0].contains(&format!("input={s} ")), "{log}");
    }

    let listen = format!("listen=127.0.0.1:{proxy_port}");
    let expected = [
        format!(
            r#"^{listen} caller=proxying\.rs:\d+ proxy_to="\[localhost:{} localhost:{} localhost:{}\]"$"#,
            ports[0], ports[1], ports[2]
        ),
        format!(r"^{listen} caller=cli\.rs:\d+ msg=HTTP addr=127\.0\.0\.1:{proxy_port}$"),
    ]
    .into_iter()
    .chain(ports.iter().zip(["foo", "bar", "baz"]).flat_map(|(port, s)| {
        // Each call: the client endpoint's line (the instance it went to), then the service's.
        [
            format!(
                r"^{listen} caller=layer\.rs:\d+ method=uppercase peer=http://localhost:{port}/uppercase transport_error=null took=\d+(\.\d+)?(µs|ms)$"
            ),
            format!(
                r#"^{listen} caller=logging\.rs:\d+ method=uppercase input={s} output={} err=null took=\d+(\.\d+)?(µs|ms)$"#,
                s.to_uppercase()
            ),
        ]
    }))
    .collect::<Vec<_>>();
    let lines: Vec<&str> = proxy_log.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{proxy_log}");
    for (line, pattern) in lines.iter().zip(&expected) {
        assert!(
            Regex::new(pattern).expect("pattern").is_match(line),
            "{line:?} !~ {pattern}"
        );
    }
    let instance_start =
        Regex::new(r"^listen=127\.0\.0\.1:\d+ caller=proxying\.rs:\d+ proxy_to=none$")
            .expect("pattern");
    for log in &logs {
        assert!(
            instance_start.is_match(log.lines().next().unwrap_or("")),
            "{log}"
        );
    }
}

#[tokio::test]
async fn killing_an_instance_under_load_fails_no_request() {
    let unlimited = ["--rate", "100000", "--burst", "100000"];
    let mut instances = vec![
        Svc::start(&unlimited),
        Svc::start(&unlimited),
        Svc::start(&unlimited),
    ];
    let proxy = Svc::proxy(&instances.iter().collect::<Vec<_>>(), &unlimited);
    let client = HttpClient::new();
    let url = proxy.url("/uppercase");

    // 8 clients, 60 requests each; the second instance is killed once 80 have been answered.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for n in 0..60 {
                let s = format!("c{c}n{n}");
                let answer = client
                    .try_send(http::Method::POST, &url, format!(r#"{{"s":"{s}"}}"#), &[])
                    .await;
                match answer {
                    Ok(a) if a.status == 200 => {
                        let expected = format!("{{\"v\":\"{}\",\"err\":null}}\n", s.to_uppercase());
                        if a.body != expected {
                            failures.push(a.body);
                        }
                    }
                    Ok(a) => failures.push(format!("{}: {}", a.status, a.body)),
                    Err(e) => failures.push(e),
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            failures
        }));
    }
    let deadline = Instant::now() + PATIENCE;
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 80 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut victim = instances.remove(1);
    victim.process().signal(Signal::SIGKILL).expect("killed");
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.expect("client task"));
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), 480);
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    proxy.stop();
    for instance in instances {
        instance.stop();
    }
}

#[tokio::test]
async fn with_every_instance_down_the_proxy_answers_503_and_its_breakers_open() {
    let dead: Vec<u16> = vec![free_port(), free_port()];
    let proxy = Svc::start(&[&format!(
        "-proxy=127.0.0.1:{},127.0.0.1:{}",
        dead[0], dead[1]
    )]);
    let client = HttpClient::new();
    for _ in 0..4 {
        let started = Instant::now();
        let (status, body) = uppercase(&client, &proxy, "foo").await;
        // A guard against hangs, not a measurement: refused connections fail at once, and the
        // retries stop at 250ms whatever happens.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(status, 503, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["v"], "");
        let err = answer["err"].as_str().expect("err is a string");
        // Every attempt is named, but not where it went: the client is not told the
        // proxy's instances.
        assert_eq!(
            err,
            "connection refused (previously: connection refused; connection refused)"
        );
    }
    // 12 attempts, 6 per instance: both breakers are open now, and calls fail fast.
    let (status, body) = uppercase(&client, &proxy, "foo").await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        "{\"v\":\"\",\"err\":\"circuit breaker is open (previously: circuit breaker is open; circuit breaker is open)\"}\n"
    );
    // Count does not depend on the instances.
    let count = client
        .post_json(&proxy.url("/count"), r#"{"s":"abc"}"#)
        .await;
    assert_eq!(count.body, "{\"v\":3}\n");
    let log = proxy.stop();
    assert!(
        log.contains("err=\"circuit breaker is open (previously:"),
        "{log}"
    );
}

#[tokio::test]
async fn a_stalled_instance_gives_504_when_its_attempts_time_out() {
    // Accepts connections and never answers.
    let stalled = testkit::process::local_listener();
    let port = stalled.local_addr().expect("addr").port();
    let proxy = Svc::start(&[&format!("-proxy=127.0.0.1:{port}")]);
    let started = Instant::now();
    let (status, body) = uppercase(&HttpClient::new(), &proxy, "foo").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 504, "{body}");
    // Each attempt had a third of the 250 ms budget. The attempt's deadline, its client's
    // timeout (the same deadline, sent on) and, for the last attempt, the retry deadline fall
    // due together, and any of them may be the one reported.
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let err = answer["err"].as_str().expect("err");
    let attempt = r"(deadline exceeded|timed out)";
    let pattern = format!(
        r"^(retry deadline of 250ms exceeded|{attempt}) \(previously: {attempt}; {attempt}\)$"
    );
    assert!(
        Regex::new(&pattern).expect("pattern").is_match(err),
        "{err}"
    );
    proxy.stop();
    drop(stalled);
}

#[tokio::test]
async fn an_empty_string_comes_back_as_the_business_error_without_a_retry() {
    let instances = [Svc::start(&[]), Svc::start(&[])];
    let proxy = Svc::proxy(&instances.iter().collect::<Vec<_>>(), &[]);
    let answer = uppercase(&HttpClient::new(), &proxy, "").await;
    assert_eq!(
        answer,
        (200, "{\"v\":\"\",\"err\":\"Empty string\"}\n".to_owned())
    );
    proxy.stop();
    let calls: usize = instances
        .into_iter()
        .map(|i| {
            i.stop()
                .lines()
                .filter(|l| l.contains("method=uppercase"))
                .count()
        })
        .sum();
    assert_eq!(calls, 1);
}

/// A stand-in for Go kit's stringsvc: answers `GET` with a JSON body only, as `{"v":"FOO"}`
/// (no `err` unless there is one, `empty string` in lower case, no `Content-Type`).
async fn go_kit_instance() -> TestServer {
    use axum::body::Bytes;
    use axum::routing::any;
    let app = axum::Router::new().route(
        "/uppercase",
        any(|method: http::Method, body: Bytes| async move {
            assert_eq!(method, http::Method::GET, "Go kit's proxy sends GET");
            let request: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
            let s = request["s"].as_str().unwrap_or_default();
            let body = if s.is_empty() {
                "{\"v\":\"\",\"err\":\"empty string\"}\n".to_owned()
            } else {
                format!("{{\"v\":\"{}\"}}\n", s.to_uppercase())
            };
            axum::response::Response::new(axum::body::Body::from(body))
        }),
    );
    TestServer::start(app).await
}

#[tokio::test]
async fn our_proxy_calls_go_kit_instances() {
    let go = go_kit_instance().await;
    let proxy = Svc::start(&[&format!("-proxy=127.0.0.1:{}", go.addr().port())]);
    let client = HttpClient::new();
    assert_eq!(
        uppercase(&client, &proxy, "foo").await,
        (200, "{\"v\":\"FOO\",\"err\":null}\n".to_owned())
    );
    assert_eq!(
        uppercase(&client, &proxy, "").await,
        (200, "{\"v\":\"\",\"err\":\"empty string\"}\n".to_owned())
    );
    proxy.stop();
}

#[tokio::test]
async fn go_kit_proxies_can_call_our_instances() {
    let instance = Svc::start(&[]);
    // What Go kit's stringsvc3 sends: GET, a JSON body ending in a newline, no Content-Type.
    let response = testkit::http::send(
        http::Method::GET,
        &instance.url("/uppercase"),
        "{\"s\":\"foo\"}\n",
        &[],
    )
    .await;
    assert_eq!(response.status, 200);
    let answer = response.json();
    // Go decodes `err: null` into its empty string: no error.
    assert_eq!(answer, serde_json::json!({"v": "FOO", "err": null}));
    instance.stop();
}

#[test]
fn bad_proxy_instances_are_refused_in_one_line() {
    let listen = format!("-listen=127.0.0.1:{}", free_port());
    let output = Command::new(BIN)
        .args([listen.as_str(), "-proxy=localhost:8001,ftp://x"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "error: --proxy: invalid instance \"ftp://x\": scheme ftp is not http"
    );
}

#[test]
fn help_explains_every_flag() {
    let help = testkit::process::help_text(BIN);
    for flag in [
        "--listen",
        "--proxy",
        "--rate",
        "--burst",
        "--max-attempts",
        "--retry-timeout",
        "--log-format",
        "--drain-timeout",
        "-listen=:8001",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[tokio::test]
async fn the_fleet_script_starts_three_instances_and_a_proxy() {
    let script = testkit::book::workspace_root().join("scripts/stringsvc3-fleet");
    let (proxy_port, first) = (free_port(), testkit::process::free_ports(3));
    let mut command = Command::new(script);
    command
        .args([proxy_port.to_string(), first.to_string()])
        .env("STRINGSVC3", BIN)
        .env_remove("RUST_LOG");
    let mut fleet = Spawned::start(command).expect("the script starts");
    for port in [proxy_port, first, first + 1, first + 2] {
        fleet.wait_for_port(port).expect("listens");
    }
    let client = HttpClient::new();
    for s in ["foo", "bar", "baz"] {
        let body = client
            .post_json(
                &format!("http://127.0.0.1:{proxy_port}/uppercase"),
                &format!(r#"{{"s":"{s}"}}"#),
            )
            .await
            .body;
        assert_eq!(
            body,
            format!("{{\"v\":\"{}\",\"err\":null}}\n", s.to_uppercase())
        );
    }
    let status = fleet.terminate().expect("stops");
    let output = fleet.output();
    assert!(status.success(), "{status}: {output}");
    for port in [first, first + 1, first + 2] {
        let answered = Regex::new(&format!(r"(?m)^listen=:{port} .*caller=logging\.rs"))
            .expect("pattern")
            .is_match(&output);
        assert!(answered, "instance :{port} answered nothing:\n{output}");
    }
    // Every process stopped with the script.
    for port in [proxy_port, first, first + 1, first + 2] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{port} still open"
        );
    }
}

/// The value of `key=` on a logfmt line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

#[tokio::test]
async fn the_callers_deadline_and_request_id_travel_through_the_proxy() {
    let instance = Svc::start(&[]);
    let proxy = Svc::proxy(&[&instance], &[]);
    let answer = testkit::http::send(
        http::Method::POST,
        &proxy.url("/uppercase"),
        r#"{"s":"hello"}"#,
        &[("X-Request-Id", "trace-1"), ("X-Request-Timeout", "2s")],
    )
    .await;
    assert_eq!(answer.body, "{\"v\":\"HELLO\",\"err\":null}\n");
    let proxy_log = proxy.stop();
    let instance_log = instance.stop();

    // The proxy received the caller's two seconds; every line of the call says so.
    let proxied: Vec<&str> = proxy_log
        .lines()
        .filter(|l| l.contains("method=uppercase"))
        .collect();
    assert_eq!(proxied.len(), 2, "{proxy_log}");
    for line in &proxied {
        assert_eq!(field(line, "request_id"), Some("trace-1"), "{line}");
        assert_eq!(field(line, "timeout"), Some("2s"), "{line}");
    }

    // The instance received the same id, and how long the proxy would wait for it: the
    // attempt's share of the proxy's 250 ms (83 ms), less than what was left of the two
    // seconds.
    let line = instance_log
        .lines()
        .find(|l| l.contains("method=uppercase"))
        .unwrap_or_else(|| panic!("the instance logged no call:\n{instance_log}"));
    assert_eq!(field(line, "request_id"), Some("trace-1"), "{line}");
    let left = field(line, "timeout")
        .and_then(|t| kit_core::duration::parse(t).ok())
        .unwrap_or_else(|| panic!("no timeout on {line}"));
    assert!(
        left <= Duration::from_millis(83) && left > Duration::ZERO,
        "{line}"
    );
}

/// A backend that answers every call with `status`, `headers` and `body`, counting its calls.
async fn hostile_instance(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
) -> (TestServer, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::any;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(any(move || {
        let (headers, body) = (headers.clone(), body.clone());
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let mut response = axum::response::Response::new(axum::body::Body::from(body));
            *response.status_mut() = http::StatusCode::from_u16(status).expect("a status");
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("a header value"));
            }
            response
        }
    }));
    (TestServer::start(app).await, calls)
}

#[tokio::test]
async fn a_backend_error_of_megabytes_costs_the_proxy_a_few_hundred_bytes() {
    let huge = format!("{{\"error\":\"{}\"}}", "x".repeat(5 * 1024 * 1024));
    let (backend, _) = hostile_instance(500, vec![], huge).await;
    let proxy = Svc::start(&[&format!("-proxy=127.0.0.1:{}", backend.addr().port())]);
    let (status, body) = uppercase(&HttpClient::new(), &proxy, "foo").await;
    // Unavailable, or out of time if moving the megabytes took longer than the attempts had.
    assert!(status == 503 || status == 504, "{status}");
    assert!(body.len() < 4096, "a {} byte answer", body.len());
    // Nor does the client learn where the instances are.
    assert!(!body.contains("127.0.0.1"), "{body}");
    let log = proxy.stop();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8192, "a {longest} byte log line");
}

#[tokio::test]
async fn the_proxy_does_not_follow_a_backends_redirect() {
    let (elsewhere, elsewhere_calls) =
        hostile_instance(200, vec![], "{\"v\":\"STOLEN\"}".to_owned()).await;
    let location = elsewhere.url("/uppercase");
    let (redirecting, _) = hostile_instance(307, vec![("location", location)], String::new()).await;
    let proxy = Svc::start(&[&format!("-proxy=127.0.0.1:{}", redirecting.addr().port())]);
    let (status, body) = uppercase(&HttpClient::new(), &proxy, "foo").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("307 Temporary Redirect"), "{body}");
    assert_eq!(
        elsewhere_calls.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the request body went where the redirect pointed"
    );
    proxy.stop();
}
