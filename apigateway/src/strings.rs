//! `/stringsvc/uppercase` and `/stringsvc/count`: stringsvc's JSON API, answered by stringsvc's
//! instances over HTTP.

use axum::Router;
use axum::routing::{MethodRouter, get_service};
use http::Method;
use kit_core::circuitbreaker::CircuitBreakerLayer;
use kit_core::context::DeadlineLayer;
use kit_core::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
use kit_core::error::{Classify, Error, ErrorKind};
use kit_core::lb::{RoundRobin, retry};
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use kit_core::ratelimit::{ErroringLimiterLayer, Limiter};
use kit_core::sd::{Endpointer, Instancer};
use kit_core::transport::http::{
    Client, Pool, Server, decode_json_request, decode_json_response, encode_json_request,
    encode_json_response,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stringsvc1::endpoint::{CountRequest, CountResponse, UppercaseRequest, UppercaseResponse};
use stringsvc3::proxying::InstanceError;
use stringsvc3::transport::encode_uppercase_failure;

use crate::{Options, observed};

/// An instance's business error, passed on in its own words: the request's fault, which any
/// instance would find too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Classify for Refused {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

// ANCHOR: routes
/// stringsvc's routes, answered by the instances: `uppercase` with its answer's shape for every
/// failure (`{"v":"","err":"<why>"}`, 400 for a business error, 503 or 504 when no instance
/// answered), `count` with kit-core's `{"error":"<why>"}`.
pub fn routes(
    instancer: &impl Instancer,
    options: &Options,
    logger: &Logger,
    registry: &Registry,
) -> Router {
    // One connection pool for every instance.
    let http = Pool::with_connect_timeout(options.attempt_timeout());
    let upper = balanced::<UppercaseRequest, UppercaseResponse>(
        instancer,
        "/uppercase",
        options,
        http.clone(),
    );
    let uppercase = endpoint_fn(move |request: UppercaseRequest| {
        // One clone of the balanced endpoint a call, made by `invoke`.
        let call = upper.invoke(request);
        async move {
            match call.await {
                // Go kit's clients read an empty `err` as no error, and so do we.
                Ok(UppercaseResponse { err: Some(err), .. }) if !err.is_empty() => {
                    Err(Error::from(Refused(err)))
                }
                Ok(answer) => Ok(UppercaseResponse {
                    v: answer.v,
                    err: None,
                }),
                Err(err) => Err(Error::from(err)),
            }
        }
    });
    let count = balanced::<CountRequest, CountResponse>(instancer, "/count", options, http);
    let uppercase = Server::new(
        observed(uppercase, "/stringsvc/uppercase", logger, registry),
        decode_json_request,
        encode_json_response,
    )
    .name("uppercase")
    .error_encoder(encode_uppercase_failure);
    let count = Server::new(
        observed(count, "/stringsvc/count", logger, registry),
        decode_json_request,
        encode_json_response,
    )
    .name("count");
    Router::new()
        .route("/stringsvc/uppercase", get_or_post(uppercase))
        .route("/stringsvc/count", get_or_post(count))
}
// ANCHOR_END: routes

/// Routes `GET` (Go kit's gateway's method) and `POST` to `server`.
fn get_or_post<Req, Resp>(server: Server<Req, Resp>) -> MethodRouter
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    get_service(server.clone()).post_service(server)
}

/// `path` on every instance, each behind its limiter, breaker and attempt deadline, round
/// robin, with retries on the next instance.
fn balanced<Req, Resp>(
    instancer: &impl Instancer,
    path: &'static str,
    options: &Options,
    http: Pool,
) -> Endpoint<Req, Resp>
where
    Req: Serialize + Clone + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    let per_instance = options.clone();
    let endpointer = Endpointer::new(instancer, move |instance: &str| {
        instance_endpoint(instance, path, &per_instance, http.clone())
    });
    retry(
        options.max_attempts,
        options.retry_timeout,
        RoundRobin::new(endpointer),
    )
}

// ANCHOR: instance
/// One instance's `path`: `GET` with a JSON body, as Go kit's gateway calls it, behind the
/// instance's own rate limiter (outside the breaker, so that its refusals are not the
/// instance's failures), circuit breaker and the attempt's share of the retry deadline.
fn instance_endpoint<Req, Resp>(
    instance: &str,
    path: &'static str,
    options: &Options,
    http: Pool,
) -> Result<Endpoint<Req, Resp>, InstanceError>
where
    Req: Serialize + Clone + Send + Sync + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    let mut url = stringsvc3::proxying::instance_url(instance)?;
    url.set_path(path);
    let client = Client::new(
        Method::GET,
        url,
        encode_json_request,
        decode_json_response::<Resp>,
    )
    .pool(http)
    // The span of each attempt is named as the route it serves: `uppercase`, `count`.
    .name(path.trim_start_matches('/'))
    .endpoint();
    let limiter = Limiter::new(options.rate, options.burst);
    Ok(Endpoint::new(
        ServiceBuilder::new()
            .layer(ErroringLimiterLayer::new(limiter))
            .layer(CircuitBreakerLayer::new(options.breaker.clone()))
            .layer(DeadlineLayer::new(options.attempt_timeout()))
            .service(client),
    ))
}
// ANCHOR_END: instance
