//! The HTTP transport: which routes reach which endpoint, and how bodies are read and written.

use axum::Router;
use axum::routing::{MethodRouter, get_service};
use kit_core::transport::http::{
    Server, decode_json_request, encode_json_response, method_not_allowed, not_found,
};

use crate::endpoint::{
    CountRequest, CountResponse, UppercaseRequest, UppercaseResponse, make_count_endpoint,
    make_uppercase_endpoint,
};
use crate::service::StringService;

// ANCHOR: app
/// The service's HTTP API: `POST /uppercase` and `POST /count`, with JSON bodies.
pub fn app<S>(svc: S) -> Router
where
    S: StringService + Clone + Send + Sync + 'static,
{
    routes(uppercase_server(svc.clone()), count_server(svc))
}

/// `uppercase` over HTTP: its endpoint, with kit-core's JSON codecs.
pub fn uppercase_server<S>(svc: S) -> Server<UppercaseRequest, UppercaseResponse>
where
    S: StringService + Send + Sync + 'static,
{
    Server::new(
        make_uppercase_endpoint(svc),
        decode_json_request,
        encode_json_response,
    )
    .name("uppercase")
}

/// `count` over HTTP.
pub fn count_server<S>(svc: S) -> Server<CountRequest, CountResponse>
where
    S: StringService + Send + Sync + 'static,
{
    Server::new(
        make_count_endpoint(svc),
        decode_json_request,
        encode_json_response,
    )
    .name("count")
}

/// The routes: `/uppercase` and `/count`.
///
/// `GET` with a JSON body works too, because that is how Go kit's own proxy (the tutorial's third
/// stage) calls an instance; any other method gets 405, and an unknown path 404, both with a JSON
/// error.
pub fn routes(
    uppercase: Server<UppercaseRequest, UppercaseResponse>,
    count: Server<CountRequest, CountResponse>,
) -> Router {
    Router::new()
        .route("/uppercase", get_or_post(uppercase))
        .route("/count", get_or_post(count))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}
// ANCHOR_END: app

/// Routes `GET` (and so `HEAD`) and `POST` to `server`.
fn get_or_post<Req, Resp>(server: Server<Req, Resp>) -> MethodRouter
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    get_service(server.clone()).post_service(server)
}
