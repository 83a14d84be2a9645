//! A request body, gRPC's framing and protobuf, into addsvc's gRPC services.
//!
//! The first byte chooses the method (`pb.Add`'s two, the health check, server reflection);
//! the rest is the request's body, as a client would stream it.
//!
//! Rules: every call is answered the gRPC way (HTTP 200, `application/grpc`, a `grpc-status`),
//! never with more than a bounded amount beyond what was sent (reflection's answers are the
//! service's descriptors, a few kilobytes), and nothing panics.

use std::sync::OnceLock;

use http::{Method, Request, StatusCode, header};
use tonic::service::Routes;
use tower::ServiceExt;

use crate::fixture::{addsvc, logger, runtime};

/// What an answer may add to the request's own size: reflection's descriptors.
const SLACK: usize = 64 * 1024;

const METHODS: [&str; 4] = [
    "/pb.Add/Sum",
    "/pb.Add/Concat",
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
];

/// Calls the method `data[0]` chooses with the body `data[1..]`; see the module's rules.
pub fn run(data: &[u8]) {
    let Some((&choice, message)) = data.split_first() else {
        return;
    };
    let request = Request::builder()
        .method(Method::POST)
        .uri(METHODS[usize::from(choice) % METHODS.len()])
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(axum::body::Body::from(message.to_vec()))
        .unwrap_or_else(|err| panic!("request: {err}"));
    let limit = 2 * data.len() + SLACK;
    let routes = routes().clone();
    let (status, grpc_status, answer) = runtime().block_on(async {
        let response = routes
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let in_headers = response.headers().contains_key("grpc-status");
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            response.into_body(),
            limit,
        ))
        .await
        .ok();
        let in_trailers = body
            .as_ref()
            .and_then(|collected| collected.trailers())
            .is_some_and(|trailers| trailers.contains_key("grpc-status"));
        (
            status,
            in_headers || in_trailers,
            body.map(|collected| collected.to_bytes()),
        )
    });
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer.is_some(),
        "a {}-byte call was answered with more than {limit} bytes",
        data.len()
    );
    assert!(grpc_status, "no grpc-status in the answer");
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        runtime().block_on(async {
            let (routes, _health) = addsvc::transport::grpc::routes(addsvc(), &logger())
                .await
                .unwrap_or_else(|err| panic!("routes: {err}"));
            routes
        })
    })
}
