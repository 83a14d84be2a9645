//! What the accept loop answers before any route sees a request: framings it will not guess
//! at, encodings it cannot read, and `Connection: close` once the server drains. (A protocol it
//! does not speak, HTTP/2, is turned away before hyper sees the connection: `preface`.)
//!
//! hyper accepts `Transfer-Encoding: foo, chunked` and `chunked, chunked` as chunked, and lets a
//! `Content-Encoding: gzip` body through to a decoder that reads it as plain bytes. Each is a way
//! for two HTTP implementations to disagree about where a request ends (the root of request
//! smuggling) or about what it says, so a kit-core server refuses them plainly: 501 for a
//! transfer coding other than `chunked`, 415 for a content coding other than `identity`, each
//! with a JSON error, and the connection closed after the answer. (A request with both
//! `Content-Length` and `Transfer-Encoding` hyper reads as chunked and closes its connection
//! after, as RFC 9112 asks.)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::Service;

use super::Response;
use super::encode::error_response;
use super::head_timeout::Activity;
use crate::shutdown::Shutdown;

/// The router of one connection, behind the checks of this module.
#[derive(Debug, Clone)]
pub(super) struct Guard<S> {
    inner: S,
    shutdown: Shutdown,
    /// Whether a request is being handled on this connection, and since when it is free: what
    /// keeps it from being closed to make room for another when the listener is full, and what
    /// its header read timeout counts from.
    activity: Arc<Activity>,
}

impl<S> Guard<S> {
    pub(super) fn new(inner: S, shutdown: Shutdown, activity: Arc<Activity>) -> Self {
        Guard {
            inner,
            shutdown,
            activity,
        }
    }
}

impl<S, B> Service<http::Request<B>> for Guard<S>
where
    S: Service<http::Request<B>, Response = Response, Error = Infallible>,
{
    type Response = http::Response<Answer>;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.activity.begin();
        let busy = Busy(self.activity.clone());
        if let Some(refusal) = refusal(request.headers()) {
            return GuardFuture {
                inner: None,
                refusal: Some(refusal),
                shutdown: self.shutdown.clone(),
                busy: Some(busy),
            };
        }
        GuardFuture {
            inner: Some(self.inner.call(request)),
            refusal: None,
            shutdown: self.shutdown.clone(),
            busy: Some(busy),
        }
    }
}

pin_project! {
    /// The response future of [`Guard`]: the route's answer, told to close the connection if
    /// the server has begun to drain by then; or the refusal.
    pub(super) struct GuardFuture<F> {
        #[pin]
        inner: Option<F>,
        refusal: Option<Response>,
        shutdown: Shutdown,
        busy: Option<Busy>,
    }
}

/// Tells its connection when the request's handling ends: when hyper has taken its answer's
/// body whole, or the request is dropped. (The connection is free once hyper has flushed it:
/// [`Flushes`](super::head_timeout::Flushes).)
#[derive(Debug)]
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.answered();
    }
}

pin_project! {
    /// The body of an answer, which keeps its connection busy until hyper has taken it whole
    /// (and drops it).
    pub(super) struct Answer {
        #[pin]
        body: Body,
        busy: Option<Busy>,
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<http::Response<Answer>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.as_pin_mut() {
            Some(future) => match future.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Pending => return Poll::Pending,
            },
            None => this.refusal.take().unwrap_or_else(|| {
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &"polled after completion",
                )
            }),
        };
        // A body refused as too large or too slow was not read whole, so the connection cannot
        // carry another request: say so, or the client sends its next request on a connection
        // about to close. Likewise once the server has begun to drain.
        if this.shutdown.is_requested()
            || matches!(
                response.status(),
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
            )
        {
            close(&mut response);
        }
        let busy = this.busy.take();
        Poll::Ready(Ok(response.map(|body| Answer { body, busy })))
    }
}

/// The answer to a request whose framing or encoding the server will not accept, if it is one.
fn refusal(headers: &HeaderMap) -> Option<Response> {
    // Most requests carry neither header: two lookups, and nothing collected.
    let mut transfer = headers.get_all(header::TRANSFER_ENCODING).iter();
    let chunked = match (transfer.next(), transfer.next()) {
        (None, _) => true,
        (Some(one), None) => one.as_bytes().eq_ignore_ascii_case(b"chunked"),
        _ => false,
    };
    if !chunked {
        let said = joined(headers, header::TRANSFER_ENCODING);
        let mut response = error_response(
            StatusCode::NOT_IMPLEMENTED,
            &format_args!(
                "Transfer-Encoding {said:?} is not supported: send Content-Length, or Transfer-Encoding: chunked alone"
            ),
        );
        close(&mut response);
        return Some(response);
    }
    let identity = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .all(|value| value.as_bytes().eq_ignore_ascii_case(b"identity"));
    if !identity {
        let said = joined(headers, header::CONTENT_ENCODING);
        let mut response = error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format_args!("Content-Encoding {said:?} is not supported: send the body as it is"),
        );
        response.headers_mut().insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        close(&mut response);
        return Some(response);
    }
    None
}

/// Every value of header `name`, as the client sent them.
fn joined(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

fn close(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_chunked_alone_and_no_content_coding_pass() {
        for ok in [
            headers(&[]),
            headers(&[("transfer-encoding", "chunked")]),
            headers(&[("transfer-encoding", "Chunked")]),
            headers(&[("content-encoding", "identity")]),
        ] {
            assert!(refusal(&ok).is_none(), "{ok:?}");
        }
        for (refused, status) in [
            (headers(&[("transfer-encoding", "foo, chunked")]), 501),
            (headers(&[("transfer-encoding", "chunked, chunked")]), 501),
            (
                headers(&[
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ]),
                501,
            ),
            (headers(&[("transfer-encoding", "gzip")]), 501),
            (headers(&[("content-encoding", "gzip")]), 415),
            (headers(&[("content-encoding", "identity, br")]), 415),
        ] {
            let response = refusal(&refused).unwrap_or_else(|| panic!("{refused:?} passed"));
            assert_eq!(response.status().as_u16(), status, "{refused:?}");
            assert_eq!(response.headers()[header::CONNECTION], "close");
        }
    }
}
