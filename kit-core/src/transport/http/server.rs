//! The HTTP server side of an endpoint (Go kit's `httptransport.Server`).

use std::any::Any;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Extensions, Method, Uri, header};
use http_body::Body as _;
use http_body_util::Limited;
use tower::Service;

use super::codec::{BodyLimit, DecodeError, encode_error};
use super::{Request, Response};
use crate::BoxError;
use crate::endpoint::{Endpoint, EndpointExt};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type DecodeFn<Req> = Arc<dyn Fn(Request) -> BoxFuture<Result<Req, BoxError>> + Send + Sync>;
type EncodeFn<Resp> = Arc<dyn Fn(Resp) -> Result<Response, BoxError> + Send + Sync>;
type BeforeFn = Arc<dyn Fn(&mut http::request::Parts) + Send + Sync>;
type AfterFn = Arc<dyn Fn(&Extensions, &mut Response) + Send + Sync>;
type ErrorEncoderFn =
    Arc<dyn Fn(&(dyn StdError + Send + Sync + 'static)) -> Response + Send + Sync>;
type ErrorHandlerFn = Arc<dyn Fn(&BoxError) + Send + Sync>;
type FinalizerFn = Arc<dyn Fn(&Extensions, &Finished) + Send + Sync>;

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// How long a request's body may take to arrive and be decoded unless
/// [`Server::read_timeout`] says otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves one endpoint over HTTP: decode the request, call the endpoint, encode the response.
///
/// `Server` is a tower service of HTTP requests that never fails (every error becomes a
/// response), so an axum [`Router`](axum::Router) mounts it directly, on any method or on chosen
/// ones:
///
/// ```
/// use axum::{Router, routing::post_service};
/// use kit_core::endpoint::endpoint_fn;
/// use kit_core::transport::http::{Server, decode_json_request, encode_json_response};
/// use serde::{Deserialize, Serialize};
/// use std::convert::Infallible;
///
/// #[derive(Deserialize)]
/// struct SumRequest { a: i64, b: i64 }
/// #[derive(Serialize)]
/// struct SumResponse { v: i64 }
///
/// let sum = endpoint_fn(|req: SumRequest| async move {
///     Ok::<_, Infallible>(SumResponse { v: req.a + req.b })
/// });
/// let app: Router = Router::new().route(
///     "/sum",
///     post_service(Server::new(sum, decode_json_request, encode_json_response)),
/// );
/// ```
///
/// For each request, in order: the [`before`](Self::before) hooks see the request head; the
/// decoder turns the request into the endpoint's request type; the endpoint runs; the encoder
/// turns its response into an HTTP response; the [`after`](Self::after) hooks adjust that
/// response. An error from the decoder, the endpoint or the encoder goes to the
/// [`error_handler`](Self::error_handler), then the [`error_encoder`](Self::error_encoder) answers
/// it, by default as `{"error":"<message>"}` with the status the error declares (see
/// [`status_code`](crate::error::status_code)). Last, the [`finalizer`](Self::finalizer)s see
/// the status, size and duration.
///
/// Bodies over the [`body_limit`](Self::body_limit) (1 MiB unless set) are refused with 413
/// before the endpoint runs, and a body that takes longer than the
/// [`read_timeout`](Self::read_timeout) (30 seconds unless set) to arrive gets 408. A panic while
/// handling a request is answered with a 500 (the error [`Panicked`]) instead of a dropped
/// connection.
pub struct Server<Req, Resp> {
    /// Shared, so that the per-request clone axum makes costs one reference count.
    inner: Arc<Inner<Req, Resp>>,
}

struct Inner<Req, Resp> {
    endpoint: Endpoint<Req, Resp>,
    decode: DecodeFn<Req>,
    encode: EncodeFn<Resp>,
    before: Vec<BeforeFn>,
    after: Vec<AfterFn>,
    error_encoder: ErrorEncoderFn,
    error_handler: Option<ErrorHandlerFn>,
    finalizers: Vec<FinalizerFn>,
    body_limit: usize,
    read_timeout: Duration,
}

/// What a [finalizer](Server::finalizer) learns about a request once it is answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Finished {
    /// The request's method.
    pub method: Method,
    /// The request's URI.
    pub uri: Uri,
    /// The status of the response.
    pub status: http::StatusCode,
    /// The size of the response body in bytes, when known before it is sent.
    pub bytes: Option<u64>,
    /// The time from receiving the request to having the response ready.
    pub duration: Duration,
}

impl<Req, Resp> Server<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// A server for `endpoint`, reading requests with `decode` and writing responses with
    /// `encode` (Go kit's `NewServer(e, dec, enc)`).
    pub fn new<D, Fut, E>(endpoint: Endpoint<Req, Resp>, decode: D, encode: E) -> Self
    where
        D: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Req, BoxError>> + Send + 'static,
        E: Fn(Resp) -> Result<Response, BoxError> + Send + Sync + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                endpoint,
                decode: Arc::new(move |request| Box::pin(decode(request))),
                encode: Arc::new(encode),
                before: Vec::new(),
                after: Vec::new(),
                error_encoder: Arc::new(encode_error),
                error_handler: None,
                finalizers: Vec::new(),
                body_limit: DEFAULT_BODY_LIMIT,
                read_timeout: DEFAULT_READ_TIMEOUT,
            }),
        }
    }

    /// Adds a hook that sees the request head before decoding (Go kit's `ServerBefore`).
    ///
    /// Hooks run in the order added. They can read headers and put request-scoped values into
    /// the request's extensions, where the decoder, the after hooks and the finalizers find them.
    pub fn before(
        mut self,
        hook: impl Fn(&mut http::request::Parts) + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().before.push(Arc::new(hook));
        self
    }

    /// Adds a hook that adjusts a successful response, typically its headers (Go kit's
    /// `ServerAfter`). It also sees the request's extensions. Error responses skip it.
    pub fn after(
        mut self,
        hook: impl Fn(&Extensions, &mut Response) + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().after.push(Arc::new(hook));
        self
    }

    /// Replaces the error encoder, which turns a failed request into a response (Go kit's
    /// `ServerErrorEncoder`). The default is [`encode_error`].
    pub fn error_encoder(
        mut self,
        encoder: impl Fn(&(dyn StdError + Send + Sync + 'static)) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().error_encoder = Arc::new(encoder);
        self
    }

    /// Sets a hook that sees every error before it is encoded, to log or count it (Go kit's
    /// `ServerErrorHandler`).
    pub fn error_handler(mut self, handler: impl Fn(&BoxError) + Send + Sync + 'static) -> Self {
        self.inner_mut().error_handler = Some(Arc::new(handler));
        self
    }

    /// Adds a hook that runs once the response is ready, successful or not (Go kit's
    /// `ServerFinalizer`): the place for access logs and request metrics.
    pub fn finalizer(
        mut self,
        finalizer: impl Fn(&Extensions, &Finished) + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().finalizers.push(Arc::new(finalizer));
        self
    }

    /// Sets the largest request body accepted, in bytes; larger ones get 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.inner_mut().body_limit = bytes;
        self
    }

    /// Sets how long the body may take to arrive and be decoded (30 seconds unless set); a
    /// client that stalls longer gets 408 Request Timeout.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().read_timeout = timeout;
        self
    }

    /// The builder methods run before the server is shared, so this clones nothing in practice.
    fn inner_mut(&mut self) -> &mut Inner<Req, Resp> {
        Arc::make_mut(&mut self.inner)
    }
}

impl<Req, Resp> Inner<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    async fn serve(&self, request: Request) -> Response {
        let observing = !self.after.is_empty() || !self.finalizers.is_empty();
        let started = observing.then(Instant::now);
        let (mut parts, body) = request.into_parts();
        for hook in &self.before {
            hook(&mut parts);
        }
        // Only requests that have hooks to show them to pay for copying these.
        let observed = started.map(|started| {
            (
                parts.extensions.clone(),
                parts.method.clone(),
                parts.uri.clone(),
                started,
            )
        });

        // A panic in the decoder, endpoint or encoder becomes an error like any other, so the
        // error handler, the error encoder and the finalizers all see it.
        let handled = CatchUnwind(Box::pin(self.handle(parts, body)))
            .await
            .unwrap_or_else(|_| Err(Panicked.into()));
        let response = match handled {
            Ok(mut response) => {
                if let Some((extensions, ..)) = &observed {
                    for hook in &self.after {
                        hook(extensions, &mut response);
                    }
                }
                response
            }
            Err(error) => {
                if let Some(handler) = &self.error_handler {
                    handler(&error);
                }
                (self.error_encoder)(error.as_ref())
            }
        };

        if let Some((extensions, method, uri, started)) = observed {
            let finished = Finished {
                method,
                uri,
                status: response.status(),
                bytes: response.body().size_hint().exact(),
                duration: started.elapsed(),
            };
            for finalizer in &self.finalizers {
                finalizer(&extensions, &finished);
            }
        }
        response
    }

    async fn handle(
        &self,
        mut parts: http::request::Parts,
        body: Body,
    ) -> Result<Response, BoxError> {
        let limit = self.body_limit;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(DecodeError::TooLarge { limit }.into());
        }
        parts.extensions.insert(BodyLimit(limit));
        let request = Request::from_parts(parts, Body::new(Limited::new(body, limit)));

        let timeout = self.read_timeout;
        let request = tokio::time::timeout(timeout, (self.decode)(request))
            .await
            .map_err(|_| DecodeError::Timeout { timeout })??;
        let response = self.endpoint.invoke(request).await?;
        (self.encode)(response)
    }
}

/// The error a request ends with when its decoder, endpoint or encoder panicked.
#[derive(Debug, thiserror::Error)]
#[error("internal error: the request handler panicked")]
pub struct Panicked;

/// Resolves to `Err` instead of unwinding when the inner future panics.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

impl<Req, Resp> Service<Request> for Server<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The endpoint's readiness is awaited per request, inside the response future, which is
        // where axum drives it anyway.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.inner.clone();
        // Panics in the handling itself are caught inside `serve`; this catches the rest (a
        // panicking hook or error encoder), answering with a 500 rather than a dropped
        // connection. The panic hook has already reported it.
        let serve = CatchUnwind(Box::pin(async move { inner.serve(request).await }));
        Box::pin(async move { Ok(serve.await.unwrap_or_else(|_| encode_error(&Panicked))) })
    }
}

impl<Req, Resp> Clone for Server<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<Req, Resp> Clone for Inner<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            decode: self.decode.clone(),
            encode: self.encode.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
            error_encoder: self.error_encoder.clone(),
            error_handler: self.error_handler.clone(),
            finalizers: self.finalizers.clone(),
            body_limit: self.body_limit,
            read_timeout: self.read_timeout,
        }
    }
}

impl<Req, Resp> fmt::Debug for Server<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("before", &self.inner.before.len())
            .field("after", &self.inner.after.len())
            .field("finalizers", &self.inner.finalizers.len())
            .field("body_limit", &self.inner.body_limit)
            .finish_non_exhaustive()
    }
}
