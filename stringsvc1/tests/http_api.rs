//! The HTTP API as the tutorial's users and Go kit's clients see it, over a real socket.

use http::{Method, StatusCode};
use kit_core::endpoint::EndpointExt;
use kit_core::transport::http::{Client, decode_json_response, encode_json_request};
use stringsvc1::endpoint::{CountRequest, CountResponse, UppercaseRequest, UppercaseResponse};
use stringsvc1::service::BasicStringService;
use testkit::http::{Answer, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The stage-1 app, served in-process on a real socket with kit-core's accept loop.
async fn start() -> TestServer {
    TestServer::start(stringsvc1::transport::app(BasicStringService)).await
}

/// What `curl -X<method> -d'<body>' <server><path>` gets.
async fn curl(server: &TestServer, method: &str, path: &str, body: &str) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    // What curl -d sends.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    testkit::http::send(method, &server.url(path), body, &form).await
}

fn assert_ok(answer: &Answer, body: &str) {
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.header("content-type").unwrap_or_default(),
        "application/json"
    );
    assert_eq!(answer.body, format!("{body}\n"));
}

#[tokio::test]
async fn the_tutorial_curl_lines_get_the_tutorial_answers() {
    let server = start().await;
    let answer = curl(&server, "POST", "/uppercase", r#"{"s":"hello, world"}"#).await;
    assert_ok(&answer, r#"{"v":"HELLO, WORLD","err":null}"#);
    let answer = curl(&server, "POST", "/count", r#"{"s":"hello, world"}"#).await;
    assert_ok(&answer, r#"{"v":12}"#);
}

#[tokio::test]
async fn an_empty_or_missing_string_is_a_business_error_in_a_200() {
    let server = start().await;
    for body in [
        r#"{"s":""}"#,
        "{}",
        r#"{"other":1}"#,
        "null",
        r#"{"s":null}"#,
    ] {
        let answer = curl(&server, "POST", "/uppercase", body).await;
        assert_ok(&answer, r#"{"v":"","err":"Empty string"}"#);
    }
    let answer = curl(&server, "POST", "/count", "{}").await;
    assert_ok(&answer, r#"{"v":0}"#);
}

#[tokio::test]
async fn answers_match_go_byte_for_byte() {
    let server = start().await;
    // Field names match case-insensitively, as Go's decoder does.
    let answer = curl(&server, "POST", "/uppercase", r#"{"S":"go kit"}"#).await;
    assert_ok(&answer, r#"{"v":"GO KIT","err":null}"#);
    // Count is in bytes, as Go's len.
    let answer = curl(&server, "POST", "/count", r#"{"s":"héllo"}"#).await;
    assert_ok(&answer, r#"{"v":6}"#);
    // Upper case is per character, as Go's strings.ToUpper.
    let answer = curl(&server, "POST", "/uppercase", r#"{"s":"straße"}"#).await;
    assert_ok(&answer, r#"{"v":"STRAßE","err":null}"#);
    // HTML-sensitive characters are escaped, as Go's encoder does.
    let answer = curl(&server, "POST", "/uppercase", r#"{"s":"<a&b>"}"#).await;
    assert_ok(&answer, r#"{"v":"\u003cA\u0026B\u003e","err":null}"#);
}

#[tokio::test]
async fn get_with_a_body_works_as_go_kit_clients_send_it() {
    let server = start().await;
    let answer = curl(&server, "GET", "/uppercase", r#"{"s":"hello"}"#).await;
    assert_ok(&answer, r#"{"v":"HELLO","err":null}"#);

    // Go kit's HTTP client: GET, a chunked body ending in a newline, no Content-Type.
    let mut stream = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let body = "{\"s\":\"from go kit\"}\n";
    let request = format!(
        "GET /uppercase HTTP/1.1\r\nHost: {}\r\nUser-Agent: Go-http-client/1.1\r\nTransfer-Encoding: chunked\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        server.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.ends_with("\r\n\r\n{\"v\":\"FROM GO KIT\",\"err\":null}\n"),
        "{raw}"
    );
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let server = start().await;
    for method in ["PUT", "DELETE", "PATCH"] {
        let answer = curl(&server, method, "/count", "{}").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            answer.header("content-type").unwrap_or_default(),
            "application/json"
        );
        assert_eq!(answer.header("allow").unwrap_or_default(), "GET,HEAD,POST");
        assert_eq!(
            answer.body,
            format!("{{\"error\":\"method {method} is not allowed on /count\"}}\n")
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let server = start().await;
    let answer = curl(&server, "POST", "/lowercase", "{}").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.header("content-type").unwrap_or_default(),
        "application/json"
    );
    assert_eq!(
        answer.body,
        "{\"error\":\"no route for POST /lowercase\"}\n"
    );
    // Paths match exactly, as Go's ServeMux patterns without a trailing slash.
    let answer = curl(&server, "POST", "/uppercase/", "{}").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_requests_get_400_naming_the_problem() {
    let server = start().await;
    let cases = [
        ("", "invalid request body: body is empty; expected JSON"),
        (
            "{bad",
            "invalid request body: malformed JSON at line 1 column 2: key must be a string",
        ),
        (
            r#"{"s":12}"#,
            r#"invalid request body: field \"s\": expected a string, found number 12"#,
        ),
        (
            r#"["hello"]"#,
            "invalid request body: expected an object, found an array",
        ),
        (
            r#"{"s":"x"} trailing"#,
            "invalid request body: malformed JSON at line 1 column 11: trailing characters",
        ),
    ];
    for path in ["/uppercase", "/count"] {
        for (body, message) in cases {
            let answer = curl(&server, "POST", path, body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(
                answer.header("content-type").unwrap_or_default(),
                "application/json"
            );
            assert_eq!(answer.body, format!("{{\"error\":\"{message}\"}}\n"));
        }
    }
}

#[tokio::test]
async fn invalid_utf8_and_oversized_bodies_are_refused() {
    let server = start().await;
    let answer = testkit::http::send(
        Method::POST,
        &server.url("/uppercase"),
        b"{\"s\":\"\xc3\x28\"}".to_vec(),
        &[],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        "{\"error\":\"invalid request body: body is not valid UTF-8 (invalid byte at offset 6)\"}\n"
    );

    let huge = format!(r#"{{"s":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let answer = curl(&server, "POST", "/count", &huge).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        answer.body,
        "{\"error\":\"request body is too large: the limit is 1048576 bytes\"}\n"
    );
}

#[tokio::test]
async fn a_kit_core_client_talks_to_the_service() {
    let server = start().await;
    let uppercase = Client::new(
        Method::POST,
        server.url("/uppercase").parse().expect("url"),
        encode_json_request::<UppercaseRequest>,
        decode_json_response::<UppercaseResponse>,
    )
    .endpoint();
    let count = Client::new(
        Method::POST,
        server.url("/count").parse().expect("url"),
        encode_json_request::<CountRequest>,
        decode_json_response::<CountResponse>,
    )
    .endpoint();

    let answer = uppercase
        .invoke(UppercaseRequest { s: "rust".into() })
        .await
        .expect("uppercase");
    assert_eq!(
        answer,
        UppercaseResponse {
            v: "RUST".into(),
            err: None
        }
    );
    let answer = uppercase
        .invoke(UppercaseRequest::default())
        .await
        .expect("a business error is still a successful call");
    assert_eq!(answer.err.as_deref(), Some("Empty string"));
    let answer = count
        .invoke(CountRequest { s: "four".into() })
        .await
        .expect("count");
    assert_eq!(answer, CountResponse { v: 4 });
}

#[test]
fn go_kit_responses_decode_into_our_types() {
    // A Go kit instance omits a successful `err` and spells the error in lower case.
    let ok: UppercaseResponse = kit_core::json::from_slice(b"{\"v\":\"HELLO\"}\n").expect("ok");
    assert_eq!(
        ok,
        UppercaseResponse {
            v: "HELLO".into(),
            err: None
        }
    );
    let failed: UppercaseResponse =
        kit_core::json::from_slice(br#"{"v":"","err":"empty string"}"#).expect("ok");
    assert_eq!(failed.err.as_deref(), Some("empty string"));
}
