//! The `addsvc` binary as a user runs it: HTTP/JSON and gRPC on their listeners, metrics on the
//! debug listener, every business error, bad input on each, and SIGTERM draining them all.
//!
//! The tests run on two threads: hyper's HTTP/2 client closes its connection on a task of its
//! own, which must be able to run while a test waits for the server to stop.

mod support;

use http::{Method, StatusCode};
use testkit::http::{post_json, send};

use support::{Addsvc, Field, concat_request, fields, frame, grpc_call, sum_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_as_go_kit() {
    let svc = Addsvc::start(&[]);
    for (path, body, status, answer) in [
        ("/sum", r#"{"a":1,"b":2}"#, 200, "{\"v\":3}\n"),
        ("/sum", r#"{"A":-5,"B":2}"#, 200, "{\"v\":-3}\n"),
        ("/concat", r#"{"a":"1","b":"2"}"#, 200, "{\"v\":\"12\"}\n"),
        (
            "/sum",
            r#"{"a":0,"b":0}"#,
            400,
            "{\"error\":\"can't sum two zeroes\"}\n",
        ),
        (
            "/sum",
            r#"{"a":3000000000,"b":1}"#,
            400,
            "{\"error\":\"integer overflow\"}\n",
        ),
        (
            "/concat",
            r#"{"a":"hello","b":"world!"}"#,
            400,
            "{\"error\":\"result exceeds maximum size\"}\n",
        ),
    ] {
        let got = post_json(&svc.http_url(path), body).await;
        assert_eq!(
            (got.status.as_u16(), got.body.as_str()),
            (status, answer),
            "{path} {body}"
        );
        assert_eq!(got.header("content-type"), Some("application/json"));
    }
    // GET with a body, as Go kit's own wiring test calls it.
    let got = send(Method::GET, &svc.http_url("/sum"), r#"{"a":1,"b":2}"#, &[]).await;
    assert_eq!(got.body, "{\"v\":3}\n");
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_bad_input_with_json_errors() {
    let svc = Addsvc::start(&[]);
    let bad = post_json(&svc.http_url("/sum"), "{bad").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("invalid request body"))
    );
    let wrong = post_json(&svc.http_url("/sum"), r#"{"a":"1"}"#).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let too_large = support::post_declaring(svc.http, "/concat", 2 * 1024 * 1024).await;
    assert!(too_large.starts_with("HTTP/1.1 413 "), "{too_large}");
    assert!(
        too_large
            .ends_with("{\"error\":\"request body is too large: the limit is 1048576 bytes\"}\n"),
        "{too_large}"
    );
    let nowhere = post_json(&svc.http_url("/nope"), "{}").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    // The service is still there.
    assert_eq!(
        post_json(&svc.http_url("/sum"), r#"{"a":1,"b":1}"#)
            .await
            .body,
        "{\"v\":2}\n"
    );
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_kits_limits_refuse_with_429_and_do_not_open_the_breaker() {
    let svc = Addsvc::start(&["--sum-rate", "1", "--sum-burst", "1"]);
    let url = svc.http_url("/sum");
    assert_eq!(
        post_json(&url, r#"{"a":1,"b":2}"#).await.status,
        StatusCode::OK
    );
    // Go kit's breaker opens after six refusals; ours never sees them.
    for _ in 0..10 {
        let refused = post_json(&url, r#"{"a":1,"b":2}"#).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["error"], "rate limit exceeded");
    }
    // Concat has its own limit.
    let concat = post_json(&svc.http_url("/concat"), r#"{"a":"x","b":"y"}"#).await;
    assert_eq!(concat.status, StatusCode::OK);
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_a_client_built_by_hand() {
    let svc = Addsvc::start(&[]);
    let sum = grpc_call(svc.grpc, "/pb.Add/Sum", frame(&sum_request(1, 2)), &[]).await;
    assert_eq!(sum.status, 0, "{}", sum.message);
    assert_eq!(fields(&sum.reply), [(1, Field::Varint(3))]);
    // Negative numbers are ten-byte varints, and a negative sum crashes nothing.
    let negative = grpc_call(svc.grpc, "/pb.Add/Sum", frame(&sum_request(-5, 2)), &[]).await;
    assert_eq!(fields(&negative.reply), [(1, Field::Varint(-3i64 as u64))]);
    let concat = grpc_call(
        svc.grpc,
        "/pb.Add/Concat",
        frame(&concat_request("1", "2")),
        &[],
    )
    .await;
    assert_eq!(concat.status, 0);
    assert_eq!(fields(&concat.reply), [(1, Field::Bytes(b"12".to_vec()))]);

    // Business errors travel in the reply's `err`, field 2, with status OK, as Go kit.
    for (path, request, err) in [
        ("/pb.Add/Sum", sum_request(0, 0), "can't sum two zeroes"),
        (
            "/pb.Add/Sum",
            sum_request(2_147_483_647, 1),
            "integer overflow",
        ),
        (
            "/pb.Add/Concat",
            concat_request("hello", "world!"),
            "result exceeds maximum size",
        ),
    ] {
        let answer = grpc_call(svc.grpc, path, frame(&request), &[]).await;
        assert_eq!(answer.status, 0);
        assert_eq!(
            fields(&answer.reply),
            [(2, Field::Bytes(err.as_bytes().to_vec()))],
            "{path}"
        );
    }
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_bad_input_with_proper_codes() {
    let svc = Addsvc::start(&["--sum-rate", "1", "--sum-burst", "1"]);
    // Field 1 announced as a string 100 bytes long, with 2 bytes there: not a message.
    let garbage = grpc_call(svc.grpc, "/pb.Add/Sum", frame(&[0x0a, 100, 1, 2]), &[]).await;
    assert_eq!(garbage.status, 3, "InvalidArgument: {}", garbage.message);
    // A message over the 1 MiB limit.
    let mut huge = Vec::new();
    support::string_field(1, &"x".repeat(2 * 1024 * 1024), &mut huge);
    let too_large = grpc_call(svc.grpc, "/pb.Add/Concat", frame(&huge), &[]).await;
    assert_eq!(too_large.status, 11, "OutOfRange: {}", too_large.message);
    // A bad deadline.
    let bad_timeout = grpc_call(
        svc.grpc,
        "/pb.Add/Sum",
        frame(&sum_request(1, 2)),
        &[("grpc-timeout", "soon")],
    )
    .await;
    assert_eq!(bad_timeout.status, 3);
    // An unknown method.
    let unknown = grpc_call(svc.grpc, "/pb.Add/Nope", frame(&[]), &[]).await;
    assert_eq!(unknown.status, 12, "Unimplemented");
    // The rate limit: one call a second, then ResourceExhausted rather than Go kit's Unknown.
    let first = grpc_call(svc.grpc, "/pb.Add/Sum", frame(&sum_request(1, 2)), &[]).await;
    assert_eq!(first.status, 0);
    let limited = grpc_call(svc.grpc, "/pb.Add/Sum", frame(&sum_request(1, 2)), &[]).await;
    assert_eq!(
        (limited.status, limited.message.as_str()),
        (8, "rate limit exceeded")
    );
    // The process is still there.
    let concat = grpc_call(
        svc.grpc,
        "/pb.Add/Concat",
        frame(&concat_request("a", "b")),
        &[],
    )
    .await;
    assert_eq!(concat.status, 0);
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_reflection_answer_standard_tools() {
    let svc = Addsvc::start(&[]);
    // grpc.health.v1.Health/Check with service "pb.Add": status SERVING (1), field 1.
    let mut check = Vec::new();
    support::string_field(1, "pb.Add", &mut check);
    let health = grpc_call(svc.grpc, "/grpc.health.v1.Health/Check", frame(&check), &[]).await;
    assert_eq!(health.status, 0, "{}", health.message);
    assert_eq!(fields(&health.reply), [(1, Field::Varint(1))]);
    // grpc.reflection.v1.ServerReflection/ServerReflectionInfo, list_services (field 7).
    let mut list = Vec::new();
    support::string_field(7, "", &mut list);
    let reflection = grpc_call(
        svc.grpc,
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        frame(&list),
        &[],
    )
    .await;
    assert_eq!(reflection.status, 0, "{}", reflection.message);
    let text = String::from_utf8_lossy(&reflection.reply);
    assert!(text.contains("pb.Add"), "{text:?}");
    assert!(text.contains("grpc.health.v1.Health"), "{text:?}");
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_promtool_clean_and_count_negative_sums() {
    let svc = Addsvc::start(&[]);
    post_json(&svc.http_url("/sum"), r#"{"a":-5,"b":2}"#).await;
    post_json(&svc.http_url("/concat"), r#"{"a":"ab","b":"c"}"#).await;
    grpc_call(svc.grpc, "/pb.Add/Sum", frame(&sum_request(-7, -7)), &[]).await;
    let metrics = send(Method::GET, &svc.debug_url("/metrics"), "", &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    for line in [
        "example_addsvc_integers_summed_total 4",
        "example_addsvc_concatenated_bytes_total 3",
        "example_addsvc_requests_total{method=\"Sum\",error=\"false\"} 2",
        "example_addsvc_requests_total{method=\"Concat\",error=\"false\"} 1",
    ] {
        assert!(
            metrics.body.lines().any(|l| l == line),
            "{line} missing:\n{}",
            metrics.body
        );
    }
    let mut promtool = std::process::Command::new(testkit::tools::promtool())
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().expect("stdin");
        stdin.write_all(metrics.body.as_bytes()).expect("write");
    }
    let checked = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // Everything it has called so far, its maths included, came without libm (kit-core's `libm`).
    svc.service.assert_no_libm();
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_listener_and_exits_0() {
    let svc = Addsvc::start(&[]);
    assert_eq!(
        post_json(&svc.http_url("/sum"), r#"{"a":1,"b":2}"#)
            .await
            .status,
        StatusCode::OK
    );
    let (debug, http, grpc) = (svc.debug, svc.http, svc.grpc);
    let (jsonrpc, thrift) = (svc.jsonrpc, svc.thrift);
    let output = svc.service.stop();
    assert!(!output.contains("still in flight"), "{output}");
    for (transport, port) in [
        ("debug/HTTP", debug),
        ("HTTP", http),
        ("gRPC", grpc),
        ("\"JSONRPC over HTTP\"", jsonrpc),
        ("Thrift", thrift),
    ] {
        assert!(
            output.contains(&format!("transport={transport} addr=127.0.0.1:{port}")),
            "{output}"
        );
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{transport} still listens"
        );
    }
}

#[test]
fn flags_take_go_kits_spelling_and_explain_themselves() {
    let help = testkit::process::help_text(support::BIN);
    for flag in [
        "--debug.addr",
        "--http-addr",
        "--grpc-addr",
        "--sum-rate",
        "--drain-timeout",
        "/metrics",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    let bad = testkit::process::run(support::BIN, &["-http-addr", "8081"]);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("did you mean \":8081\""),
        "{}",
        bad.stderr
    );
    let taken = testkit::process::local_listener();
    let port = taken.local_addr().expect("addr").port();
    let debug = format!("127.0.0.1:{}", testkit::process::free_port());
    let busy = testkit::process::run(
        support::BIN,
        &[
            "-debug.addr",
            &debug,
            "-http-addr",
            &format!("127.0.0.1:{port}"),
        ],
    );
    assert_eq!(busy.code, Some(1));
    assert!(busy.stderr.contains("cannot listen on"), "{}", busy.stderr);
}
