//! The service's OpenAPI 3 document, generated from the code and served at `GET /openapi.json`.
//!
//! Each route's description is a `#[utoipa::path]` attribute on the function that builds its
//! server (see [`transport`](crate::transport)), and the schemas of bodies are derived from the
//! types that are read and written ([`Profile`], [`Address`], the responses), so the document
//! changes with the code. A test compares the document's operations with the routes the
//! router serves, so neither can gain a route the other lacks; an API fuzzer (schemathesis),
//! driven by the document against the real binary, checks that every answer is one the
//! document promises.

use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use http::{HeaderValue, Method, header};
use kit_core::metrics::Registry;
use kit_core::transport::http::{Response, metrics_router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::endpoint::{Empty, GetAddressResponse, GetAddressesResponse, GetProfileResponse};
use crate::service::{Address, Profile};
use crate::transport::Routes;

/// The body of every error answer: `{"error":"<message>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong: `not found`, `already exists`, `inconsistent IDs`, or a description of
    /// what is wrong with the request.
    pub error: String,
}

/// The body of a PATCH, as the document describes it: a [`Profile`] whose id may be empty.
/// (The server reads it as a `Profile`; only the rule for the id differs.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, ToSchema)]
#[serde(default)]
pub struct ProfilePatch {
    /// Empty (or `null`), or the id in the path.
    #[schema(nullable)]
    pub id: String,
    /// A new name; empty (or `null`) keeps the name.
    #[schema(nullable)]
    pub name: String,
    /// New addresses, replacing all of them; empty (or `null`) keeps them.
    #[schema(nullable)]
    pub addresses: Vec<Address>,
}

// ANCHOR: document
/// The document: every route of [`transport::routes`](crate::transport::routes), `/metrics`
/// and `/openapi.json`, with the schemas they use.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "profilesvc",
        description = "Profiles and their addresses: Go kit's profilesvc example. Ids are any text but the empty string; in a path, percent-encode them (`/` as `%2F`)."
    ),
    paths(
        crate::transport::post_profile,
        crate::transport::get_profile,
        crate::transport::put_profile,
        crate::transport::patch_profile,
        crate::transport::delete_profile,
        crate::transport::get_addresses,
        crate::transport::get_address,
        crate::transport::post_address,
        crate::transport::delete_address,
        metrics,
        openapi_json,
    ),
    components(schemas(
        Profile,
        ProfilePatch,
        Address,
        Empty,
        GetProfileResponse,
        GetAddressesResponse,
        GetAddressResponse,
        ErrorBody
    )),
    tags(
        (name = "profiles", description = "Whole profiles."),
        (name = "addresses", description = "The addresses of a profile."),
        (name = "operations", description = "Metrics and this document."),
    )
)]
pub struct ApiDoc;
// ANCHOR_END: document

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(ApiDoc::openapi)
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "OpenApi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of this service.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BODY.get_or_init(|| {
        // A document of strings and maps always serializes.
        let mut body = serde_json::to_vec(document()).unwrap_or_default();
        body.push(b'\n');
        body
    });
    let mut response = Response::new(axum::body::Body::from(body.as_slice()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /metrics`: the service's metrics, for Prometheus.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "Metrics",
    tag = "operations",
    responses((status = 200, description = "Every metric, in Prometheus's text format.", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String))
)]
pub fn metrics(registry: &Registry) -> Router {
    metrics_router(registry)
}

/// `routes` with `/metrics` for `registry` and `/openapi.json` added.
pub fn with_operations(routes: Routes, registry: &Registry) -> Routes {
    routes
        .merge(metrics(registry), &[(Method::GET, "/metrics")])
        .merge(
            Router::new().route("/openapi.json", get(openapi_json)),
            &[(Method::GET, "/openapi.json")],
        )
}
