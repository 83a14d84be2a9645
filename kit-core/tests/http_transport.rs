//! The HTTP server and client against each other, over real sockets on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{any_service, post_service};
use http::{Method, StatusCode, header};
use kit_core::context::{Context, RequestId};
use kit_core::endpoint::{Endpoint, EndpointExt, Failer, endpoint_fn};
use kit_core::error::{Classify, Error, ErrorExt, ErrorKind};
use kit_core::transport::http::{
    Client, ClientError, Server, decode_json_request, decode_json_response, encode_json_request,
    encode_json_response, encode_json_response_or_error, method_not_allowed, not_found,
    status_code,
};
use serde::{Deserialize, Serialize};
use testkit::http::{Answer, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SumRequest {
    a: i64,
    b: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct SumResponse {
    v: i64,
}

/// A business error carried in a successful response.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Rejected(String);

impl Classify for Rejected {
    fn kind(&self) -> ErrorKind {
        ErrorKind::FailedPrecondition
    }
}

#[derive(Debug, Serialize)]
struct CheckedResponse {
    v: i64,
    #[serde(skip)]
    err: Option<Rejected>,
}

impl Failer for CheckedResponse {
    fn failed(&self) -> Option<&(dyn Classify + Send + Sync + 'static)> {
        self.err.as_ref().map(|e| e as _)
    }
}

fn sum() -> Endpoint<SumRequest, SumResponse> {
    endpoint_fn(|req: SumRequest| async move {
        match req.a.checked_add(req.b) {
            Some(v) => Ok(SumResponse { v }),
            None => Err(Error::new(ErrorKind::InvalidArgument, "integer overflow")),
        }
    })
}

fn app() -> Router {
    let failing: Endpoint<SumRequest, SumResponse> =
        endpoint_fn(|_: SumRequest| async { Err::<SumResponse, _>("database unreachable") });
    let checked: Endpoint<SumRequest, CheckedResponse> =
        endpoint_fn(|req: SumRequest| async move {
            let err = (req.a < 0).then(|| Rejected("a must not be negative".into()));
            Ok::<_, Infallible>(CheckedResponse { v: req.a, err })
        });
    let panicking: Endpoint<SumRequest, SumResponse> = endpoint_fn(|req: SumRequest| async move {
        assert!(req.a >= 0, "a bug in the endpoint");
        Ok::<_, Infallible>(SumResponse { v: req.a })
    });
    Router::new()
        .route(
            "/sum",
            post_service(Server::new(
                sum(),
                decode_json_request,
                encode_json_response,
            )),
        )
        .route(
            "/small",
            post_service(
                Server::new(sum(), decode_json_request, encode_json_response).body_limit(16),
            ),
        )
        .route(
            "/failing",
            any_service(Server::new(
                failing,
                decode_json_request,
                encode_json_response,
            )),
        )
        .route(
            "/checked",
            any_service(Server::new(
                checked,
                decode_json_request,
                encode_json_response_or_error,
            )),
        )
        .route(
            "/panicking",
            any_service(Server::new(
                panicking,
                decode_json_request,
                encode_json_response,
            )),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Serves `app` in-process with kit-core's accept loop, for the rest of the test.
async fn spawn(app: Router) -> SocketAddr {
    let server = TestServer::start(app).await;
    let addr = server.addr();
    // The server lives as long as the test's runtime.
    std::mem::forget(server);
    addr
}

/// Sends `method` to `path` on `addr` with `body`.
async fn send(addr: SocketAddr, method: Method, path: &str, body: impl Into<Vec<u8>>) -> Answer {
    testkit::http::send(method, &format!("http://{addr}{path}"), body, &[]).await
}

/// Asserts a JSON error answer: the status, `application/json`, and the message.
fn assert_error(answer: &Answer, status: StatusCode, message: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let expected = format!("{}\n", serde_json::json!({ "error": message }));
    assert_eq!(answer.body, expected);
}

#[tokio::test]
async fn a_valid_request_gets_json_with_a_trailing_newline() {
    let addr = spawn(app()).await;
    let answer = send(addr, Method::POST, "/sum", r#"{"a":1,"b":2}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.body, "{\"v\":3}\n");
}

#[tokio::test]
async fn bad_bodies_get_400_with_a_message_in_json_terms() {
    let addr = spawn(app()).await;
    let cases: [(&[u8], &str); 6] = [
        (b"", "invalid request body: body is empty; expected JSON"),
        (
            b"{bad",
            "invalid request body: malformed JSON at line 1 column 2: key must be a string",
        ),
        (
            br#"{"a":"1","b":2}"#,
            r#"invalid request body: field "a": expected an integer, found string "1""#,
        ),
        (
            br#"{"a":1.5,"b":2}"#,
            r#"invalid request body: field "a": expected an integer, found number 1.5"#,
        ),
        (
            b"[1,2]",
            "invalid request body: expected an object, found an array",
        ),
        (
            b"{\"a\":1,\"b\":2,\"c\":\"\xff\"}",
            "invalid request body: body is not valid UTF-8 (invalid byte at offset 18)",
        ),
    ];
    for (body, message) in cases {
        let answer = send(addr, Method::POST, "/sum", body).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, message);
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let addr = spawn(app()).await;
    // Declared by Content-Length: refused before reading.
    let answer = send(
        addr,
        Method::POST,
        "/small",
        r#"{"a":1,"b":2,"pad":"xxxxxxxx"}"#,
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body is too large: the limit is 16 bytes",
    );
    // Within the limit, the same route works.
    let answer = send(addr, Method::POST, "/small", r#"{"a":1,"b":2}"#).await;
    assert_eq!(answer.status, StatusCode::OK);

    // Chunked, with no length declared: refused once the limit is crossed.
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let chunk = r#"{"a":1,"b":2,"pad":"xxxxxxxx"}"#;
    let request = format!(
        "POST /small HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert!(
        raw.ends_with("{\"error\":\"request body is too large: the limit is 16 bytes\"}\n"),
        "{raw}"
    );
}

/// Sends `chunks` as one chunked body (each chunk its own frame on the server's side) and
/// returns the raw answer.
async fn post_chunked(addr: std::net::SocketAddr, path: &str, chunks: &[&str]) -> String {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.expect("read");
    raw
}

#[tokio::test]
async fn a_body_in_several_pieces_is_read_whole_and_within_the_limit() {
    let addr = spawn(app()).await;
    let raw = post_chunked(addr, "/sum", &[r#"{"a":"#, r#"1,"b""#, r#":2}"#]).await;
    assert!(raw.starts_with("HTTP/1.1 200 "), "{raw}");
    assert!(raw.ends_with("{\"v\":3}\n"), "{raw}");
    // Each piece within the limit of 16 bytes, together over it.
    let raw = post_chunked(addr, "/small", &[r#"{"a":1,"#, r#""b":2,"#, r#""c":3}"#]).await;
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert!(
        raw.ends_with("{\"error\":\"request body is too large: the limit is 16 bytes\"}\n"),
        "{raw}"
    );
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let addr = spawn(app()).await;
    let padding = "x".repeat(1024 * 1024);
    let answer = send(
        addr,
        Method::POST,
        "/sum",
        format!(r#"{{"a":1,"b":2,"pad":"{padding}"}}"#),
    )
    .await;
    assert_error(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "request body is too large: the limit is 1048576 bytes",
    );
}

#[tokio::test]
async fn endpoint_errors_get_the_status_they_declare_or_500() {
    let addr = spawn(app()).await;
    let answer = send(
        addr,
        Method::POST,
        "/sum",
        format!(r#"{{"a":{},"b":1}}"#, i64::MAX),
    )
    .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "integer overflow");

    let answer = send(addr, Method::POST, "/failing", r#"{"a":1,"b":2}"#).await;
    assert_error(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "database unreachable",
    );
}

#[tokio::test]
async fn a_panicking_endpoint_gets_500_and_the_server_carries_on() {
    let addr = spawn(app()).await;
    let answer = send(addr, Method::POST, "/panicking", r#"{"a":-1,"b":0}"#).await;
    assert_error(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the request handler panicked",
    );
    let answer = send(addr, Method::POST, "/panicking", r#"{"a":5,"b":0}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "{\"v\":5}\n");
}

#[tokio::test]
async fn a_failed_response_is_answered_with_its_business_error() {
    let addr = spawn(app()).await;
    let answer = send(addr, Method::POST, "/checked", r#"{"a":-1,"b":0}"#).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "a must not be negative");
    let answer = send(addr, Method::POST, "/checked", r#"{"a":4,"b":0}"#).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "{\"v\":4}\n");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let addr = spawn(app()).await;
    let answer = send(addr, Method::POST, "/nope", "").await;
    assert_error(&answer, StatusCode::NOT_FOUND, "no route for POST /nope");

    let answer = send(addr, Method::PUT, "/sum", "").await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method PUT is not allowed on /sum",
    );
    assert_eq!(answer.header("allow"), Some("POST"));
}

#[tokio::test]
async fn hooks_run_in_order_and_see_the_outcome() {
    #[derive(Clone)]
    struct RequestId(String);

    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let (errors, finished, finished_too) = (log.clone(), log.clone(), log.clone());
    let (first, second) = (log.clone(), log.clone());
    let server = Server::new(sum(), decode_json_request, encode_json_response)
        .before(move |_| first.lock().expect("lock").push("before 1".into()))
        .before(move |_| second.lock().expect("lock").push("before 2".into()))
        .before(|parts| {
            let id = parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            parts.extensions.insert(RequestId(id));
        })
        .after(|extensions, response| {
            if let Some(RequestId(id)) = extensions.get::<RequestId>() {
                let value = id.parse().expect("a valid header value");
                response.headers_mut().insert("x-request-id", value);
            }
        })
        .error_handler(move |err| errors.lock().expect("lock").push(format!("error: {err}")))
        .finalizer(move |extensions, done| {
            let id = extensions.get::<RequestId>().map_or("-", |r| r.0.as_str());
            finished.lock().expect("lock").push(format!(
                "{} {} {} {:?} id={id}",
                done.method,
                done.uri.path(),
                done.status.as_u16(),
                done.bytes
            ));
        })
        .finalizer(move |_, _| {
            finished_too
                .lock()
                .expect("lock")
                .push("finalizer 2".into())
        });
    let addr = spawn(Router::new().route("/sum", any_service(server))).await;

    let response = reqwest::Client::new()
        .post(format!("http://{addr}/sum"))
        .header("x-request-id", "abc")
        .body(r#"{"a":2,"b":2}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.headers()["x-request-id"], "abc");
    let answer = send(addr, Method::GET, "/sum", "{").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    assert_eq!(
        *log.lock().expect("lock"),
        [
            "before 1",
            "before 2",
            "POST /sum 200 Some(8) id=abc",
            "finalizer 2",
            "before 1",
            "before 2",
            "error: invalid request body: malformed JSON at line 1 column 1: unexpected end of input",
            "GET /sum 400 Some(93) id=none",
            "finalizer 2",
        ]
    );
}

fn sum_client(addr: SocketAddr, path: &str) -> Client<SumRequest, SumResponse> {
    Client::new(
        Method::POST,
        format!("http://{addr}{path}").parse().expect("url"),
        encode_json_request::<SumRequest>,
        decode_json_response::<SumResponse>,
    )
}

#[tokio::test]
async fn the_client_calls_the_server() {
    let addr = spawn(app()).await;
    let sum = sum_client(addr, "/sum").endpoint();
    let answer = sum.invoke(SumRequest { a: 40, b: 2 }).await.expect("sum");
    assert_eq!(answer, SumResponse { v: 42 });
}

#[tokio::test]
async fn a_non_2xx_answer_is_an_error_with_the_status_and_message() {
    let addr = spawn(app()).await;
    let err = sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: i64::MAX, b: 1 })
        .await
        .expect_err("overflow");
    let err = err.find::<ClientError>().expect("a ClientError");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    // The message says what went wrong; where is the error's URL, not its message.
    assert_eq!(err.to_string(), "400 Bad Request: integer overflow");
    assert_eq!(
        err.url().map(|u| u.to_string()),
        Some(format!("http://{addr}/sum"))
    );
    assert_eq!(
        status_code(err),
        StatusCode::BAD_GATEWAY,
        "a proxy answers an upstream failure with 502"
    );

    let err = sum_client(addr, "/missing")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 1 })
        .await
        .expect_err("no such route");
    assert_eq!(err.to_string(), "404 Not Found: no route for POST /missing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn plain_text_errors_from_go_kit_servers_are_kept() {
    // Go kit's DefaultErrorEncoder answers 500 with the error text as text/plain.
    let go_kit_like = Router::new().route(
        "/sum",
        axum::routing::post(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "invalid character 'b' looking for beginning of object key string",
            )
        }),
    );
    let addr = spawn(go_kit_like).await;
    let err = sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 1 })
        .await
        .expect_err("500");
    assert_eq!(
        err.to_string(),
        "500 Internal Server Error: invalid character 'b' looking for beginning of object key string"
    );
}

#[tokio::test]
async fn an_undecodable_answer_is_a_decode_error() {
    let wrong = Router::new().route("/sum", axum::routing::post(|| async { r#"{"v":"three"}"# }));
    let addr = spawn(wrong).await;
    let err = sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 2 })
        .await
        .expect_err("bad answer");
    assert!(matches!(
        err.find::<ClientError>(),
        Some(ClientError::Decode { .. })
    ));
    assert_eq!(
        err.to_string(),
        r#"cannot decode response: field "v": expected an integer, found string "three""#
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let big = Router::new().route(
        "/sum",
        axum::routing::post(|| async { format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(100)) }),
    );
    let addr = spawn(big).await;
    let err = sum_client(addr, "/sum")
        .max_response_bytes(64)
        .endpoint()
        .invoke(SumRequest { a: 1, b: 2 })
        .await
        .expect_err("too big");
    assert_eq!(err.to_string(), "response body is larger than 64 bytes");
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 2 })
        .await
        .expect_err("nobody listens");
    let client_error = err.find::<ClientError>().expect("a ClientError");
    assert!(
        matches!(client_error, ClientError::Transport { .. }),
        "{client_error:?}"
    );
    assert_eq!(err.to_string(), "connection refused");
    assert_eq!(status_code(err.as_ref()), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_slow_server_times_out() {
    // The server notes that the request arrived, then never answers.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let noted = arrived.clone();
    let slow = Router::new().route(
        "/sum",
        axum::routing::post(move || {
            let noted = noted.clone();
            async move {
                noted.notify_one();
                std::future::pending::<()>().await
            }
        }),
    );
    let addr = spawn(slow).await;
    let call = tokio::spawn(
        sum_client(addr, "/sum")
            .timeout(Duration::from_secs(2))
            .endpoint()
            .invoke(SumRequest { a: 1, b: 2 }),
    );
    arrived.notified().await;
    // Only now stop the clock: with the request at the server, the next thing that can happen
    // is the client's timer, and the paused clock jumps straight to it.
    tokio::time::pause();
    let err = call
        .await
        .expect("join")
        .expect_err("the server never answers");
    assert!(
        matches!(err.find::<ClientError>(), Some(ClientError::Timeout { .. })),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "timed out");
    assert_eq!(status_code(err.as_ref()), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_gets_408() {
    let server = Server::new(sum(), decode_json_request, encode_json_response)
        .read_timeout(Duration::from_secs(5));
    let addr = spawn(Router::new().route("/sum", any_service(server))).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /sum HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n{\"a\":1")
        .await
        .expect("write");
    let mut raw = Vec::new();
    let mut buf = [0u8; 512];
    while !raw.ends_with(b"}\n") {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the connection closed without an answer");
        raw.extend_from_slice(&buf[..n]);
    }
    let raw = String::from_utf8(raw).expect("utf-8");
    assert!(raw.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{raw}");
    assert!(
        raw.ends_with("{\"error\":\"request body was not received within 5s\"}\n"),
        "{raw}"
    );
}

#[tokio::test]
async fn a_panicking_hook_gets_500_too() {
    let server = Server::new(sum(), decode_json_request, encode_json_response)
        .after(|_, _| panic!("a bug in a hook"));
    let addr = spawn(Router::new().route("/sum", any_service(server))).await;
    let answer = send(addr, Method::POST, "/sum", r#"{"a":1,"b":2}"#).await;
    assert_error(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the request handler panicked",
    );
}

#[tokio::test]
async fn a_panicking_endpoint_goes_through_the_error_hooks() {
    let panicking: Endpoint<SumRequest, SumResponse> = endpoint_fn(|req: SumRequest| async move {
        assert!(req.a < 0, "a bug in the endpoint");
        Ok::<_, Infallible>(SumResponse { v: req.a })
    });
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (handled, finalized) = (seen.clone(), seen.clone());
    let server = Server::new(panicking, decode_json_request, encode_json_response)
        .error_handler(move |err| {
            handled
                .lock()
                .expect("lock")
                .push(format!("handler: {err}"))
        })
        .error_encoder(|err| {
            let mut response = kit_core::transport::http::encode_error(err);
            response
                .headers_mut()
                .insert("x-error-encoder", http::HeaderValue::from_static("custom"));
            response
        })
        .finalizer(move |_, done| {
            finalized
                .lock()
                .expect("lock")
                .push(format!("finalizer: {}", done.status));
        });
    let addr = spawn(Router::new().route("/sum", any_service(server))).await;
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/sum"))
        .body(r#"{"a":1,"b":2}"#)
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response
            .headers()
            .get("x-error-encoder")
            .map(|v| v.as_bytes()),
        Some(&b"custom"[..])
    );
    assert_eq!(
        response.text().await.expect("body"),
        "{\"error\":\"internal error: the request handler panicked\"}\n"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            "handler: internal error: the request handler panicked",
            "finalizer: 500 Internal Server Error",
        ]
    );
}

#[tokio::test]
async fn the_client_sends_json_with_a_newline_like_go() {
    let seen = Arc::new(Mutex::new(None::<(Option<String>, String)>));
    let record = seen.clone();
    let echo = Router::new().route(
        "/sum",
        axum::routing::post(move |headers: http::HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .map(|v| v.to_str().expect("ascii").to_owned());
                *record.lock().expect("lock") = Some((content_type, body));
                r#"{"v":0}"#
            }
        }),
    );
    let addr = spawn(echo).await;
    sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 2 })
        .await
        .expect("answer");
    let (content_type, body) = seen.lock().expect("lock").take().expect("a request");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, "{\"a\":1,\"b\":2}\n");
}

/// A value a before-hook puts in the request's extensions.
#[derive(Debug, Clone, PartialEq)]
struct Principal(String);

/// What an endpoint saw of its request's context.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Seen {
    principal: Option<String>,
    middleware_saw: Option<String>,
    request_id: Option<String>,
    timeout_ms: Option<u128>,
}

/// An endpoint that reports its context, behind a middleware that reads the principal too.
fn context_reporter() -> Endpoint<Seen, Seen> {
    let report: Endpoint<Seen, Seen> = endpoint_fn(|seen: Seen| async move {
        let ctx = Context::current();
        Ok::<_, Infallible>(Seen {
            principal: ctx.get::<Principal>().map(|p| p.0.clone()),
            request_id: ctx.get::<RequestId>().map(|id| id.to_string()),
            timeout_ms: ctx.remaining().map(|left| left.as_millis()),
            ..seen
        })
    });
    let middleware =
        kit_core::endpoint::middleware_fn(|next: Endpoint<Seen, Seen>, seen: Seen| async move {
            let principal = Context::current().get::<Principal>().map(|p| p.0.clone());
            next.invoke(Seen {
                middleware_saw: principal,
                ..seen
            })
            .await
        });
    kit_core::endpoint::Layer::layer(&middleware, report)
}

fn context_app() -> Router {
    let server = Server::new(
        context_reporter(),
        decode_json_request,
        encode_json_response,
    )
    .before(|parts| {
        if let Some(user) = parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
            parts.extensions.insert(Principal(user.to_owned()));
        }
    });
    Router::new().route("/seen", any_service(server))
}

#[tokio::test]
async fn the_request_context_reaches_middlewares_and_the_endpoint() {
    let addr = spawn(context_app()).await;
    let answer = testkit::http::send(
        Method::POST,
        &format!("http://{addr}/seen"),
        "{}",
        &[
            ("x-user", "alice"),
            ("x-request-id", "req-7"),
            ("x-request-timeout", "2s"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let seen: Seen = serde_json::from_str(&answer.body).expect("a Seen");
    assert_eq!(seen.principal.as_deref(), Some("alice"));
    assert_eq!(seen.middleware_saw.as_deref(), Some("alice"));
    assert_eq!(seen.request_id.as_deref(), Some("req-7"));
    let left = seen.timeout_ms.expect("a deadline");
    assert!(left > 1000 && left <= 2000, "{left} ms left");

    // Without the headers, nothing is made up.
    let plain = send(addr, Method::POST, "/seen", "{}").await;
    let seen: Seen = serde_json::from_str(&plain.body).expect("a Seen");
    assert_eq!(seen, Seen::default());
}

#[tokio::test]
async fn a_timeout_header_that_does_not_parse_is_a_400() {
    let addr = spawn(context_app()).await;
    let answer = testkit::http::send(
        Method::POST,
        &format!("http://{addr}/seen"),
        "{}",
        &[("x-request-timeout", "10")],
    )
    .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "invalid X-Request-Timeout header: invalid duration \"10\": missing unit: use ns, us, ms, s, m or h",
    );
}

/// An app whose `/never` endpoint never answers: it says when a call starts and when the
/// call's work is dropped.
struct Never {
    started: Arc<tokio::sync::Notify>,
    dropped: Arc<tokio::sync::Notify>,
}

impl Never {
    fn app() -> (Router, Never) {
        struct Dropped(Arc<tokio::sync::Notify>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.notify_one();
            }
        }
        let never = Never {
            started: Arc::default(),
            dropped: Arc::default(),
        };
        let (begun, watch) = (never.started.clone(), never.dropped.clone());
        let endpoint: Endpoint<SumRequest, SumResponse> = endpoint_fn(move |_: SumRequest| {
            let guard = Dropped(watch.clone());
            let begun = begun.clone();
            async move {
                let _guard = guard;
                begun.notify_one();
                std::future::pending::<()>().await;
                Ok::<_, Infallible>(SumResponse { v: 0 })
            }
        });
        let app = Router::new().route(
            "/never",
            post_service(Server::new(
                endpoint,
                decode_json_request,
                encode_json_response,
            )),
        );
        (app, never)
    }

    async fn dropped(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.dropped.notified())
            .await
            .expect("the endpoint's work is dropped with the request");
    }
}

#[tokio::test]
async fn a_request_whose_deadline_passes_gets_504_and_its_work_is_dropped() {
    let (app, never) = Never::app();
    let addr = spawn(app).await;
    let answer = testkit::http::send(
        Method::POST,
        &format!("http://{addr}/never"),
        r#"{"a":1,"b":2}"#,
        &[("x-request-timeout", "50ms")],
    )
    .await;
    assert_error(&answer, StatusCode::GATEWAY_TIMEOUT, "deadline exceeded");
    never.dropped().await;
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_work() {
    let (app, never) = Never::app();
    let addr = spawn(app).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /never HTTP/1.1\r\nhost: test\r\ncontent-length: 13\r\n\r\n{\"a\":1,\"b\":2}",
        )
        .await
        .expect("write");
    never.started.notified().await;
    drop(stream);
    never.dropped().await;
}

#[tokio::test]
async fn the_client_passes_what_is_left_of_the_deadline_and_the_request_id_on() {
    let addr = spawn(context_app()).await;
    let client: Endpoint<Seen, Seen> = Client::new(
        Method::POST,
        format!("http://{addr}/seen").parse().expect("url"),
        encode_json_request::<Seen>,
        decode_json_response::<Seen>,
    )
    .endpoint();
    let ctx = Context::new()
        .with_timeout(Duration::from_millis(1500))
        .with_value(RequestId::new("hop-1").expect("an id"));
    let seen = ctx
        .scope(client.invoke(Seen::default()))
        .await
        .expect("an answer");
    assert_eq!(seen.request_id.as_deref(), Some("hop-1"));
    let left = seen.timeout_ms.expect("the deadline travelled");
    assert!(left > 0 && left < 1500, "{left} ms left");

    // A call whose deadline has passed is not sent at all.
    let expired = Context::new().with_timeout(Duration::ZERO);
    let err = expired
        .scope(client.invoke(Seen::default()))
        .await
        .expect_err("no time left");
    assert!(matches!(
        err.find::<ClientError>(),
        Some(ClientError::Timeout { .. })
    ));
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
}

#[tokio::test]
async fn a_remote_error_is_cut_to_512_characters_whatever_its_shape() {
    for body in [
        format!("{{\"error\":\"{}\"}}", "x".repeat(100_000)),
        format!("{{\"err\":\"{}\"}}", "y".repeat(100_000)),
        "z".repeat(100_000),
    ] {
        let app = Router::new().route(
            "/sum",
            axum::routing::post(move || {
                let body = body.clone();
                async move { (StatusCode::INTERNAL_SERVER_ERROR, body) }
            }),
        );
        let addr = spawn(app).await;
        let err = sum_client(addr, "/sum")
            .endpoint()
            .invoke(SumRequest { a: 1, b: 1 })
            .await
            .expect_err("500");
        let message = err.to_string();
        let prefix = "500 Internal Server Error: ";
        assert!(message.starts_with(prefix), "{message}");
        assert_eq!(
            message[prefix.len()..].chars().count(),
            513,
            "512 and the ellipsis"
        );
        assert!(message.ends_with('…'));
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let followed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = followed.clone();
    let app = Router::new()
        .route(
            "/sum",
            axum::routing::post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "/elsewhere")],
                )
            }),
        )
        .route(
            "/elsewhere",
            axum::routing::post(move || {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                async { r#"{"v":0}"# }
            }),
        );
    let addr = spawn(app).await;
    let err = sum_client(addr, "/sum")
        .endpoint()
        .invoke(SumRequest { a: 1, b: 1 })
        .await
        .expect_err("a redirect is an error");
    assert_eq!(
        err.find::<ClientError>().and_then(ClientError::status),
        Some(StatusCode::TEMPORARY_REDIRECT)
    );
    assert!(!followed.load(std::sync::atomic::Ordering::SeqCst));
}
