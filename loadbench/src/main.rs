//! The ceiling the load benchmark measures kit-core against: `POST /uppercase` doing the same
//! JSON work as stringsvc1 (read `{"s":"..."}`, upper-case it, answer `{"v":"...","err":null}`)
//! in a bare axum handler, with none of kit-core's layers; and `POST /sum` doing addsvc's
//! (read `{"a":1,"b":2}`, check and add, answer `{"v":3}`).
//!
//! Run with: `cargo run --release -p loadbench --bin bare-axum -- 127.0.0.1:8080`

use axum::Json;
use axum::Router;
use axum::routing::post;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct UppercaseRequest {
    #[serde(default)]
    s: String,
}

#[derive(Serialize)]
struct UppercaseResponse {
    v: String,
    err: Option<&'static str>,
}

#[derive(Deserialize)]
struct SumRequest {
    #[serde(default)]
    a: i64,
    #[serde(default)]
    b: i64,
}

#[derive(Serialize)]
struct SumResponse {
    v: i64,
}

#[derive(Serialize)]
struct ErrorResponse {
    error: &'static str,
}

async fn sum(Json(req): Json<SumRequest>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (max, min) = (i64::from(i32::MAX), i64::from(i32::MIN));
    let refused = |error| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(ErrorResponse { error }),
        )
    };
    if req.a == 0 && req.b == 0 {
        return refused("can't sum two zeroes").into_response();
    }
    if (req.b > 0 && req.a > max - req.b) || (req.b < 0 && req.a < min - req.b) {
        return refused("integer overflow").into_response();
    }
    Json(SumResponse { v: req.a + req.b }).into_response()
}

async fn uppercase(Json(req): Json<UppercaseRequest>) -> Json<UppercaseResponse> {
    if req.s.is_empty() {
        return Json(UppercaseResponse {
            v: String::new(),
            err: Some("Empty string"),
        });
    }
    Json(UppercaseResponse {
        v: req.s.to_uppercase(),
        err: None,
    })
}

/// The services' allocator, so that the ceiling and the services differ only in what is
/// measured.
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit_core::allocator::purge_in_background();
    // The address, alone or after `--listen` as the services take it.
    let addr = std::env::args()
        .skip(1)
        .find(|arg| arg != "--listen")
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let app = Router::new()
        .route("/uppercase", post(uppercase))
        .route("/sum", post(sum));
    match axum::serve(listener, app).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
