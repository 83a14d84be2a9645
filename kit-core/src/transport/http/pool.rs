//! The connections a client sends its requests on: hyper's HTTP/1 client and its pool.
//!
//! kit-core's clients (HTTP and JSON-RPC) call services, not web sites: they need no proxy
//! settings, no cookies, no redirects and no TLS, and they know their URL when they are built.
//! A general-purpose client pays for those on every call: reqwest, which kit-core used before,
//! parsed each request's URL twice (once to turn it into a `Uri`, once in its redirect policy,
//! even with redirects off) and moved a large future through several layers, about 28,000
//! instructions a call, a quarter of what forwarding one request cost stringsvc3's proxy. Here
//! the URL becomes a `Uri` once, when the client is built, and a call is hyper's pool checkout,
//! one write and one read.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::body::{Collect, collect};
use crate::error::BoxError;

/// How long to wait for a TCP connection unless [`Pool::with_connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle connection stays in the pool before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A pool of HTTP/1 connections, shared by the clients of the same instances so that their
/// calls reuse connections. Cloning it is cheap and shares the pool.
///
/// Only `http://` URLs: a call to any other scheme fails as a transport error. Redirects are not
/// followed: a 3xx is an answer like any other.
#[derive(Clone, Debug)]
pub struct Pool {
    hyper: Hyper<HttpConnector, Full<Bytes>>,
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

impl Pool {
    /// A pool whose connections must be made within [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> Self {
        Pool::with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)
    }

    /// A pool whose connections must be made within `timeout`.
    pub fn with_connect_timeout(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        // Small JSON requests should leave at once, not wait for Nagle's algorithm.
        connector.set_nodelay(true);
        let hyper = Hyper::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(connector);
        Pool { hyper }
    }

    /// Sends `request` and reads its whole answer, of at most `max_bytes`, by `deadline`.
    pub(crate) async fn send(
        &self,
        request: http::Request<Bytes>,
        deadline: Option<Instant>,
        max_bytes: usize,
    ) -> Result<Answer, SendError> {
        let exchange = async {
            let response = self
                .hyper
                .request(request.map(Full::new))
                .await
                .map_err(|error| SendError::Transport(error.into()))?;
            let (parts, body) = response.into_parts();
            let bytes = collect(body, Some(max_bytes))
                .await
                .map_err(|error| match error {
                    Collect::TooLarge => SendError::TooLarge,
                    Collect::Failed(error) => SendError::Transport(error.into()),
                })?;
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body: bytes,
            })
        };
        match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, exchange)
                .await
                .unwrap_or(Err(SendError::Timeout)),
            None => exchange.await,
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why a request got no whole answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The deadline passed first.
    Timeout,
    /// The request could not be sent or its answer not read.
    Transport(BoxError),
    /// The answer's body was larger than allowed.
    TooLarge,
}

/// Whether `error`, or one of its causes, is a failure to connect: nothing was sent, so the
/// call is safe to try on another instance whatever it does.
pub(crate) fn is_connect(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// What went wrong, in a few words: the innermost cause, an I/O error as its kind (`connection
/// refused`, `connection reset`). The layers' wrappers add nothing a reader can act on.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    // An operating-system error reads best as its kind; others (a failed DNS lookup, say)
    // carry their message in their text.
    match innermost.downcast_ref::<std::io::Error>() {
        Some(io) if io.raw_os_error().is_some() => io.kind().to_string(),
        _ => innermost.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_named_by_its_kind() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let request = http::Request::post(format!("http://{addr}/x"))
            .body(Bytes::new())
            .expect("request");
        let Err(SendError::Transport(error)) = Pool::new().send(request, None, 1024).await else {
            panic!("a closed port should refuse");
        };
        assert!(is_connect(error.as_ref()), "{error:?}");
        assert_eq!(root_cause(error.as_ref()), "connection refused");
    }

    #[tokio::test]
    async fn another_scheme_is_a_transport_error() {
        let request = http::Request::get("https://127.0.0.1:1/x")
            .body(Bytes::new())
            .expect("request");
        let answer = Pool::new().send(request, None, 1024).await;
        assert!(matches!(answer, Err(SendError::Transport(_))), "{answer:?}");
    }
}
