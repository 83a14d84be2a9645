//! A request body into addsvc's JSON-RPC server.
//!
//! Rules: every answer is a JSON-RPC answer (a JSON object or array, or no body for
//! notifications) with a status the server documents; and the server never amplifies: the
//! answer is never much larger than the request, however many calls a batch holds.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::fixture::{addsvc, body, logger, runtime};

/// What an answer may add to the request's own size: the fixed parts of a few error objects.
const SLACK: usize = 16 * 1024;

/// Posts `data` to the JSON-RPC endpoint; see the module's rules.
pub fn run(data: &[u8]) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .unwrap_or_else(|err| panic!("request: {err}"));
    let limit = 2 * data.len() + SLACK;
    let (status, answer) = runtime().block_on(async {
        let response = app()
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        (status, body(response.into_body(), limit).await)
    });
    let Some(answer) = answer else {
        panic!(
            "a {}-byte request was answered {status} with more than {limit} bytes",
            data.len()
        );
    };
    match status {
        StatusCode::NO_CONTENT => assert!(answer.is_empty(), "{answer:?}"),
        StatusCode::OK | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT => {
            let value: serde_json::Value = serde_json::from_slice(&answer)
                .unwrap_or_else(|err| panic!("answer is not JSON ({err}): {answer:?}"));
            assert!(value.is_object() || value.is_array(), "{value}");
        }
        other => panic!("unexpected status {other}: {answer:?}"),
    }
}

fn app() -> &'static Router {
    static APP: OnceLock<Router> = OnceLock::new();
    APP.get_or_init(|| addsvc::transport::jsonrpc::app(addsvc(), &logger()))
}
