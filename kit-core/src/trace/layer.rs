//! An endpoint middleware that traces each call of the endpoint it wraps (Go kit's
//! `tracing/opentelemetry.TraceEndpoint`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use super::Call;
use crate::context::Context;
use crate::error::{BoxError, ErrorExt as _};

/// Runs each call of an endpoint in a span of its own, named `name` (`Sum`), a child of the span
/// the call is part of: the transport's, for a server's endpoint. The transport's span says how
/// the call arrived; this one how long the endpoint's own work took, and how it ended
/// (`error.type` and status error when it fails). Work the endpoint starts, calls to other
/// services included, becomes this span's children.
///
/// With tracing off, it calls the endpoint as it is.
#[derive(Debug, Clone, Copy)]
pub struct TraceLayer {
    name: &'static str,
}

impl TraceLayer {
    /// Spans named `name`.
    pub fn new(name: &'static str) -> Self {
        TraceLayer { name }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            name: self.name,
        }
    }
}

/// The service [`TraceLayer`] wraps around an endpoint.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    name: &'static str,
}

impl<S, Req> Service<Req> for Traced<S>
where
    S: Service<Req, Error = BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = TracedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let (ctx, call) = Call::internal(Context::current(), self.name);
        let inner = ctx.clone().sync_scope(|| self.inner.call(request));
        TracedFuture {
            inner: ctx.scope(inner),
            call,
        }
    }
}

pin_project! {
    /// The response future of [`Traced`]: the endpoint's, in the span's context.
    #[derive(Debug)]
    pub struct TracedFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Context, F>,
        call: Call,
    }
}

impl<F, T> Future for TracedFuture<F>
where
    F: Future<Output = Result<T, BoxError>>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        match &result {
            Ok(_) => this.call.succeeded(),
            Err(error) => this.call.failed((**error).kind(), error),
        }
        Poll::Ready(result)
    }
}
