//! Serving a [`Registry`]'s metrics over HTTP for Prometheus to scrape.

use axum::Router;
use axum::routing::get;
use http::header;

use super::routing::method_not_allowed;
use crate::metrics::{CONTENT_TYPE, Registry};

/// A router serving `registry`'s metrics on `GET /metrics`, in Prometheus's text format with its
/// content type (other methods get a JSON 405); merge it into the service's router (Go kit's
/// `http.Handle("/metrics", promhttp.Handler())`).
///
/// ```
/// use kit_core::metrics::Registry;
/// use kit_core::transport::http::metrics_router;
///
/// let registry = Registry::new();
/// let app: axum::Router = axum::Router::new().merge(metrics_router(&registry));
/// ```
pub fn metrics_router(registry: &Registry) -> Router {
    let registry = registry.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], registry.render()) }
            }),
        )
        .method_not_allowed_fallback(method_not_allowed)
}
