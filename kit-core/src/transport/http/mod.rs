//! Endpoints over HTTP: a [`Server`] that serves an endpoint, a [`Client`] that calls one.
//!
//! This is Go kit's `transport/http`, on axum for the server and hyper's client for the client:
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `NewServer(e, dec, enc, opts...)` | [`Server::new`], mounted on an axum `Router` |
//! | `ServerBefore`, `ServerAfter`, `ServerFinalizer` | [`Server::before`], [`Server::after`], [`Server::finalizer`] |
//! | `ServerErrorEncoder`, `DefaultErrorEncoder` | [`Server::error_encoder`], [`encode_error`] (JSON, not text) |
//! | `ServerErrorHandler` | [`Server::error_handler`] |
//! | `EncodeJSONResponse` | [`encode_json_response`], [`encode_json_response_or_error`] |
//! | `NewClient(method, url, enc, dec, opts...)` | [`Client::new`] |
//! | `ClientBefore`, `SetClient` | [`Client::before`], [`Client::pool`] |
//! | `EncodeJSONRequest` | [`encode_json_request`] |
//!
//! A round trip, server and client, over a real socket:
//!
//! ```
//! use axum::{Router, routing::post_service};
//! use http::Method;
//! use kit_core::endpoint::{endpoint_fn, EndpointExt};
//! use kit_core::transport::http::{
//!     Client, Server, decode_json_request, decode_json_response, encode_json_request,
//!     encode_json_response,
//! };
//! use serde::{Deserialize, Serialize};
//! use std::convert::Infallible;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Greeting { name: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), kit_core::BoxError> {
//! let hello = endpoint_fn(|g: Greeting| async move {
//!     Ok::<_, Infallible>(Greeting { name: format!("hello, {}", g.name) })
//! });
//! let app = Router::new().route(
//!     "/hello",
//!     post_service(Server::new(hello, decode_json_request, encode_json_response)),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/hello", listener.local_addr()?).parse()?;
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let client = Client::new(
//!     Method::POST,
//!     url,
//!     encode_json_request::<Greeting>,
//!     decode_json_response::<Greeting>,
//! )
//! .endpoint();
//! let answer = client.invoke(Greeting { name: "gopher".into() }).await?;
//! assert_eq!(answer.name, "hello, gopher");
//! # Ok(())
//! # }
//! ```

// The module's documentation links both halves; with only one built, those to the other dangle.
#![cfg_attr(
    not(all(feature = "http-server", feature = "http-client")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(any(feature = "http-server", feature = "http-client"))]
mod body;
#[cfg(feature = "http-client")]
mod client;
#[cfg(feature = "http-server")]
mod decode;
#[cfg(feature = "http-server")]
mod drain;
#[cfg(feature = "http-server")]
mod encode;
#[cfg(feature = "http-server")]
mod guard;
#[cfg(feature = "http-server")]
mod head_timeout;
#[cfg(feature = "http-server")]
mod joined;
#[cfg(all(feature = "http-server", feature = "metrics"))]
mod metrics;
#[cfg(feature = "http-client")]
pub(crate) mod pool;
#[cfg(feature = "http-server")]
mod preface;
pub mod propagation;
#[cfg(feature = "http-server")]
mod routing;
#[cfg(feature = "http-server")]
mod serve;
#[cfg(feature = "http-server")]
mod server;
mod status;

#[cfg(feature = "http-client")]
pub use client::{
    Client, ClientError, DEFAULT_MAX_RESPONSE_BYTES, decode_json_response, encode_json_request,
    kind_of_status,
};
#[cfg(feature = "http-server")]
pub use decode::{BodyLimit, DecodeError, decode_json_request, read_body};
#[cfg(feature = "http-server")]
pub use encode::{
    encode_error, encode_json_response, encode_json_response_or_error, json_response,
};
#[cfg(all(feature = "http-server", feature = "metrics"))]
pub use metrics::metrics_router;
#[cfg(feature = "http-client")]
pub use pool::{DEFAULT_CONNECT_TIMEOUT, Pool};
#[cfg(feature = "http-server")]
pub use routing::{method_not_allowed, not_found};
#[cfg(feature = "http-server")]
pub use serve::{
    CUT_OFF_GRACE, DEFAULT_MAX_CONNECTIONS, HEADER_READ_TIMEOUT, MAX_HEAD_BYTES, SETTLE,
    ServeOptions, serve, serve_with,
};
#[cfg(feature = "http-server")]
pub use server::{DEFAULT_BODY_LIMIT, DEFAULT_READ_TIMEOUT, Finished, Panicked, Server};
pub use status::{status_code, status_for};
/// The URL a client calls.
#[cfg(feature = "http-client")]
pub use url::Url;

/// The HTTP request a [`Server`] receives (axum's request type).
#[cfg(feature = "http-server")]
pub type Request = http::Request<axum::body::Body>;

/// The HTTP response a [`Server`] produces (axum's response type).
#[cfg(feature = "http-server")]
pub type Response = http::Response<axum::body::Body>;
