//! JSON-RPC on the real binary: Go kit's calls, the specification's error codes, batches and
//! notifications, and garbage.

mod support;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::http::{post_json, send};

use support::Addsvc;

async fn call(svc: &Addsvc, body: &str) -> (StatusCode, String) {
    let answer = post_json(&svc.jsonrpc_url("/"), body).await;
    (answer.status, answer.body)
}

async fn call_json(svc: &Addsvc, body: &str) -> Value {
    let (status, body) = call(svc, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn answers_go_kits_calls_byte_for_byte() {
    let svc = Addsvc::start(&[]);
    assert_eq!(
        call(
            &svc,
            r#"{"jsonrpc":"2.0","method":"sum","params":{"a":1,"b":2},"id":1}"#
        )
        .await,
        (
            StatusCode::OK,
            "{\"jsonrpc\":\"2.0\",\"result\":{\"v\":3},\"id\":1}\n".to_owned()
        )
    );
    // Go kit v0.10's client: an empty "jsonrpc", capitalised params, ids from 0.
    assert_eq!(
        call_json(
            &svc,
            r#"{"jsonrpc":"","method":"concat","params":{"A":"1","B":"2"},"id":0}"#
        )
        .await,
        json!({"jsonrpc":"2.0","result":{"v":"12"},"id":0})
    );
    // Any path, string ids, floats.
    let answer = post_json(
        &svc.jsonrpc_url("/rpc/anything"),
        r#"{"method":"sum","params":{"a":-5,"b":2},"id":"abc"}"#,
    )
    .await;
    assert_eq!(
        answer.json(),
        json!({"jsonrpc":"2.0","result":{"v":-3},"id":"abc"})
    );
    assert_eq!(
        call_json(&svc, r#"{"method":"sum","params":{"a":1,"b":1},"id":1.5}"#).await["id"],
        json!(1.5)
    );
    svc.service.stop();
}

#[tokio::test]
async fn business_errors_are_error_objects_with_the_id() {
    let svc = Addsvc::start(&[]);
    for (body, code, message) in [
        (
            r#"{"method":"sum","params":{"a":0,"b":0},"id":7}"#,
            -32003,
            "can't sum two zeroes",
        ),
        (
            r#"{"method":"sum","params":{"a":2147483647,"b":1},"id":7}"#,
            -32011,
            "integer overflow",
        ),
        (
            r#"{"method":"concat","params":{"a":"hello","b":"world!"},"id":7}"#,
            -32011,
            "result exceeds maximum size",
        ),
    ] {
        assert_eq!(
            call_json(&svc, body).await,
            json!({"jsonrpc":"2.0","error":{"code":code,"message":message},"id":7}),
            "{body}"
        );
    }
    svc.service.stop();
}

#[tokio::test]
async fn garbage_gets_the_specifications_codes() {
    let svc = Addsvc::start(&[]);
    let code = |v: &Value| v["error"]["code"].as_i64();
    let parse = call_json(&svc, "{not json").await;
    assert_eq!((code(&parse), &parse["id"]), (Some(-32700), &Value::Null));
    for body in [
        "42",
        r#"{"params":{},"id":3}"#,
        r#"{"method":5,"id":3}"#,
        r#"{"method":"sum","id":{}}"#,
        "[]",
        r#"{"jsonrpc":"1.0","method":"sum","id":3}"#,
        r#"{"method":"sum","params":3,"id":3}"#,
    ] {
        let answer = call_json(&svc, body).await;
        assert_eq!(code(&answer), Some(-32600), "{body}: {answer}");
    }
    let unknown = call_json(&svc, r#"{"method":"nope","id":9}"#).await;
    assert_eq!((code(&unknown), &unknown["id"]), (Some(-32601), &json!(9)));
    assert_eq!(unknown["error"]["message"], "method \"nope\" was not found");
    for params in [r#"{"a":"one","b":2}"#, r#"[1,2]"#, r#"{"a":1.5}"#] {
        let body = format!(r#"{{"method":"sum","params":{params},"id":4}}"#);
        let answer = call_json(&svc, &body).await;
        assert_eq!(
            (code(&answer), &answer["id"]),
            (Some(-32602), &json!(4)),
            "{params}"
        );
    }
    // Not POST: 405, still a JSON-RPC answer.
    let get = send(Method::GET, &svc.jsonrpc_url("/"), "", &[]).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(code(&get.json()), Some(-32600));
    // Over 1 MiB: 413.
    let too_large = support::post_declaring(svc.jsonrpc, "/", 2 << 20).await;
    assert!(too_large.starts_with("HTTP/1.1 413 "), "{too_large}");
    assert!(too_large.contains("\"code\":-32600"), "{too_large}");
    // Still serving.
    assert_eq!(
        call_json(&svc, r#"{"method":"sum","params":{"a":1,"b":2},"id":1}"#).await["result"],
        json!({"v":3})
    );
    svc.service.stop();
}

#[tokio::test]
async fn batches_and_notifications() {
    let svc = Addsvc::start(&[]);
    let batch = call_json(
        &svc,
        r#"[{"jsonrpc":"2.0","method":"sum","params":{"a":1,"b":2},"id":1},
            {"jsonrpc":"2.0","method":"sum","params":{"a":5,"b":5}},
            {"jsonrpc":"2.0","method":"concat","params":{"a":"x","b":"y"},"id":"c"},
            {"jsonrpc":"2.0","method":"nope","id":2},
            7]"#,
    )
    .await;
    assert_eq!(
        batch,
        json!([
            {"jsonrpc":"2.0","result":{"v":3},"id":1},
            {"jsonrpc":"2.0","result":{"v":"xy"},"id":"c"},
            {"jsonrpc":"2.0","error":{"code":-32601,"message":"method \"nope\" was not found"},"id":2},
            {"jsonrpc":"2.0","error":{"code":-32600,"message":"a call is a JSON object"},"id":null}
        ])
    );
    // Notifications alone: nothing to answer, 204; but they ran (the log says so).
    let (status, body) = call(
        &svc,
        r#"{"jsonrpc":"2.0","method":"sum","params":{"a":20,"b":22}}"#,
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let (status, _) = call(
        &svc,
        r#"[{"method":"sum","params":{"a":1,"b":2}},{"method":"nope"}]"#,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let output = svc.service.stop();
    assert!(
        output.contains("method=Sum a=20 b=22 v=42 err=null"),
        "{output}"
    );
}

/// A batch is answered call by call, so its answer could be many times its size (`1,` is
/// answered with an error object of ninety bytes): batches hold at most 100 calls.
#[tokio::test]
async fn a_batch_of_more_than_100_calls_is_refused_whole() {
    let svc = Addsvc::start(&[]);
    let calls = |n: usize| format!("[{}]", vec!["1"; n].join(","));
    let answer = call_json(&svc, &calls(100)).await;
    assert_eq!(answer.as_array().map(Vec::len), Some(100), "{answer}");
    let (status, body) = call(&svc, &calls(3000)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"a batch holds at most 100 calls; this one holds 3000"},"id":null})
    );
    svc.service.stop();
}

#[tokio::test]
async fn the_rate_limit_is_an_error_object_too() {
    let svc = Addsvc::start(&["--sum-rate", "1", "--sum-burst", "1"]);
    let body = r#"{"method":"sum","params":{"a":1,"b":2},"id":1}"#;
    assert_eq!(call_json(&svc, body).await["result"], json!({"v":3}));
    assert_eq!(
        call_json(&svc, body).await,
        json!({"jsonrpc":"2.0","error":{"code":-32008,"message":"rate limit exceeded"},"id":1})
    );
    svc.service.stop();
}
