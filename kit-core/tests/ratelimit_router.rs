//! The erroring limiter under an axum router, over real sockets on 127.0.0.1: concurrent
//! requests each reach a fresh clone of the service, and the limit still holds, because the
//! token bucket is shared (tower's own `RateLimit` keeps its budget in one service value, limits
//! in `poll_ready`, and is not even `Clone`).

use std::num::NonZeroU32;
use std::time::Duration;

use axum::Router;
use axum::routing::post_service;
use http::StatusCode;
use kit_core::endpoint::{Endpoint, ServiceBuilder, endpoint_fn};
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::transport::http::{Server, decode_json_request, encode_json_response};
use serde::{Deserialize, Serialize};
use testkit::http::{TestServer, post_json};

#[derive(Debug, Deserialize)]
struct EchoRequest {
    n: u32,
}

#[derive(Debug, Serialize)]
struct EchoResponse {
    n: u32,
}

const BURST: u32 = 5;
const REQUESTS: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_erroring_limiter_limits_concurrent_requests_across_clones() {
    let echo: Endpoint<EchoRequest, EchoResponse> = endpoint_fn(|req: EchoRequest| async move {
        Ok::<_, std::convert::Infallible>(EchoResponse { n: req.n })
    });
    // One token an hour: nothing refills while the test runs.
    let limiter = Limiter::with_period(
        Duration::from_secs(3600),
        NonZeroU32::new(BURST).expect("not zero"),
    )
    .expect("a period");
    let limited = Endpoint::new(
        ServiceBuilder::new()
            .layer(ErroringLimiterLayer::new(limiter))
            .service(echo),
    );
    let app = Router::new().route(
        "/echo",
        post_service(Server::new(
            limited,
            decode_json_request,
            encode_json_response,
        )),
    );
    let server = TestServer::start(app).await;
    let url = server.url("/echo");

    let requests = (0..REQUESTS).map(|n| {
        let url = url.clone();
        tokio::spawn(async move {
            let answer = post_json(&url, &format!(r#"{{"n":{n}}}"#)).await;
            (n, answer.status, answer.body)
        })
    });
    let mut answers = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        answers.push(request.await.expect("join"));
    }

    let ok: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::OK)
        .collect();
    let limited: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(ok.len(), BURST as usize, "{answers:#?}");
    assert_eq!(limited.len(), (REQUESTS - BURST) as usize, "{answers:#?}");
    for (n, _, body) in ok {
        assert_eq!(*body, format!("{{\"n\":{n}}}\n"));
    }
    for (_, _, body) in limited {
        assert_eq!(*body, "{\"error\":\"rate limit exceeded\"}\n");
    }
}
