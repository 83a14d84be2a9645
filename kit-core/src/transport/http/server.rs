//! The HTTP server side of an endpoint (Go kit's `httptransport.Server`).

use std::any::Any;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use http::{Method, Uri, header};
use http_body::Body as _;
use http_body_util::Limited;
use pin_project_lite::pin_project;
use tower::Service;
use tracing::Instrument;

use super::decode::{BodyLimit, DecodeError};
use super::drain;
use super::encode::encode_error;
use super::{Request, Response, propagation};
use crate::context::{Context, DeadlineExceeded, RequestId};
use crate::duration::GoDuration;
use crate::endpoint::{Endpoint, EndpointExt};
use crate::error::{BoxError, Classify, Error, ErrorExt as _, ErrorKind};
use crate::shutdown::CutOff;
use crate::trace::Call;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type DecodeFn<Req> = Arc<dyn Fn(Request) -> BoxFuture<Result<Req, BoxError>> + Send + Sync>;
type EncodeFn<Resp> = Arc<dyn Fn(Resp) -> Result<Response, BoxError> + Send + Sync>;
type BeforeFn = Arc<dyn Fn(&mut http::request::Parts) + Send + Sync>;
type AfterFn = Arc<dyn Fn(&Context, &mut Response) + Send + Sync>;
type ErrorEncoderFn =
    Arc<dyn Fn(&(dyn StdError + Send + Sync + 'static)) -> Response + Send + Sync>;
type ErrorHandlerFn = Arc<dyn Fn(&BoxError) + Send + Sync>;
type FinalizerFn = Arc<dyn Fn(&Context, &Finished) + Send + Sync>;

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
/// For each request, in order: the [`before`](Self::before) hooks see the request head and may
/// put values in its extensions; the server makes the request's [`Context`] from them and from
/// the headers that carry a caller's deadline and request id (see
/// [`propagation`](super::propagation)); in that context, the decoder turns the request into the
/// endpoint's request type, the endpoint runs, and the encoder turns its response into an HTTP
/// response; the [`after`](Self::after) hooks adjust that response. An error from the decoder,
/// the endpoint or the encoder goes to the [`error_handler`](Self::error_handler), then the
/// [`error_encoder`](Self::error_encoder) answers it, by default as `{"error":"<message>"}` with
/// the status of the error's kind (see [`status_code`](super::status_code)). Last, the
/// [`finalizer`](Self::finalizer)s see the status, size and duration.
///
/// A request whose deadline passes is cut off and answered 504 ([`DeadlineExceeded`]), and one
/// whose deadline has passed when it arrives is answered so without being decoded; one whose
/// client disconnects is dropped, with everything it was waiting for. A request that
/// carries a deadline or a request id is handled, hooks and finalizers included, inside a
/// `tracing` span named `request` with fields `request_id` and `timeout` (the time it had left
/// when it arrived, to the millisecond), so that every line logged while handling it says which
/// request it belongs to.
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
    name: Option<&'static str>,
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
                name: None,
            }),
        }
    }

    /// Adds a hook that sees the request head before decoding (Go kit's `ServerBefore`).
    ///
    /// Hooks run in the order added. They can read headers and put request-scoped values into
    /// the request's extensions: those become values of the request's [`Context`], where the
    /// decoder, endpoint middlewares, the service, the after hooks and the finalizers find them.
    pub fn before(
        mut self,
        hook: impl Fn(&mut http::request::Parts) + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().before.push(Arc::new(hook));
        self
    }

    /// Adds a hook that adjusts a successful response, typically its headers (Go kit's
    /// `ServerAfter`). It also sees the request's [`Context`]. Error responses skip it.
    pub fn after(mut self, hook: impl Fn(&Context, &mut Response) + Send + Sync + 'static) -> Self {
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
        finalizer: impl Fn(&Context, &Finished) + Send + Sync + 'static,
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

    /// Names the endpoint this server serves (`uppercase`, `sum`): the name of its requests'
    /// spans when tracing is on (see `kit_core::trace`). Unnamed, spans are named by the HTTP
    /// method alone, as OpenTelemetry's conventions say when the route is not known.
    pub fn name(mut self, name: &'static str) -> Self {
        self.inner_mut().name = Some(name);
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
    /// Serves `request`: the before-hooks, the request's context and the decoder's first step
    /// now, the rest in the future returned.
    ///
    /// That future is built of plain structs around one `async` block rather than of nested
    /// `async fn`s, each of which would keep its own copy of what it was given: it is allocated
    /// and moved into place once per request, so its size is paid for on every one.
    fn serve(
        self: &Arc<Self>,
        request: Request,
    ) -> impl Future<Output = Response> + use<Req, Resp> {
        let observing = !self.after.is_empty() || !self.finalizers.is_empty();
        let started = observing.then(Instant::now);
        let (mut parts, body) = request.into_parts();
        for hook in &self.before {
            hook(&mut parts);
        }
        // Only requests that have hooks to show them to pay for copying these.
        let observed = started.map(|started| (parts.method.clone(), parts.uri.clone(), started));

        // ANCHOR: context
        // What the before-hooks put in the request's extensions becomes the context's values;
        // without hooks there is nothing to copy (the router's own extensions stay behind).
        let outer = Context::current();
        let values = if self.before.is_empty() {
            outer
        } else {
            outer.with_values(parts.extensions.clone())
        };
        let (ctx, invalid) = match propagation::extract(values, &parts.headers) {
            Ok(ctx) => (ctx, None),
            Err(invalid) => (Context::current(), Some(invalid)),
        };
        // With tracing on, the request's span, a child of the caller's; the context names it.
        let (ctx, call) = Call::http_server(ctx, &parts.method, parts.uri.path(), self.name);
        let decoding = match invalid {
            Some(invalid) => Err(Error::from(DecodeError::Header(invalid.into())).into()),
            // Out of time before it starts: not worth decoding.
            None if ctx.deadline().is_some() && ctx.is_expired() => {
                Err(Error::from(DeadlineExceeded).into())
            }
            None => self.decoding(&ctx, parts, body),
        };
        // Everything from here on, the hooks and the finalizers included, runs in the request's
        // context and, when it carries an id or a deadline, in its span.
        let span = request_span(&ctx).unwrap_or_else(tracing::Span::none);
        let responding = Respond {
            handling: CatchUnwind {
                inner: self.handling(decoding, ctx.deadline()),
            },
            server: Arc::clone(self),
            ctx: ctx.clone(),
            observed,
            call,
        };
        ctx.scope(responding).instrument(span)
        // ANCHOR_END: context
    }

    /// Checks the request's declared size and starts decoding it, in the request's context.
    fn decoding(
        &self,
        ctx: &Context,
        mut parts: http::request::Parts,
        body: Body,
    ) -> Result<BoxFuture<Result<Req, BoxError>>, BoxError> {
        let limit = self.body_limit;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(Error::from(DecodeError::TooLarge { limit }).into());
        }
        parts.extensions.insert(BodyLimit(limit));
        let request = Request::from_parts(parts, Body::new(Limited::new(body, limit)));
        // A decoder may do part of its work before its future is first polled: that part too
        // runs in the request's context, and a panic there is an error like any other.
        ctx.clone()
            .sync_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| (self.decode)(request))))
            .map_err(|_| Error::from(Panicked).into())
    }

    /// Decodes, calls the endpoint and encodes, within `deadline` and the server's drain.
    fn handling(
        self: &Arc<Self>,
        decoding: Result<BoxFuture<Result<Req, BoxError>>, BoxError>,
        deadline: Option<tokio::time::Instant>,
    ) -> Bounded<impl Future<Output = Result<Response, BoxError>> + use<Req, Resp>> {
        let server = Arc::clone(self);
        let handle = async move {
            let timeout = server.read_timeout;
            let request = tokio::time::timeout(timeout, decoding?)
                .await
                .map_err(|_| Error::from(DecodeError::Timeout { timeout }))?
                .map_err(decoder_failure)?;
            let response = server.endpoint.invoke(request).await?;
            (server.encode)(response)
        };
        Bounded {
            handle,
            deadline: deadline.map(tokio::time::sleep_until),
        }
    }

    /// Answers `error`, after showing it to the error handler.
    fn fail(
        &self,
        error: BoxError,
        ctx: &Context,
        observed: Option<(Method, Uri, Instant)>,
    ) -> Response {
        if let Some(handler) = &self.error_handler {
            handler(&error);
        }
        let response = (self.error_encoder)(error.as_ref());
        self.finish(ctx, observed, response)
    }

    /// Shows the finished request to the finalizers.
    fn finish(
        &self,
        ctx: &Context,
        observed: Option<(Method, Uri, Instant)>,
        response: Response,
    ) -> Response {
        if let Some((method, uri, started)) = observed {
            let finished = Finished {
                method,
                uri,
                status: response.status(),
                bytes: response.body().size_hint().exact(),
                duration: started.elapsed(),
            };
            for finalizer in &self.finalizers {
                finalizer(ctx, &finished);
            }
        }
        response
    }
}

pin_project! {
    /// A request's handling, ended early with [`DeadlineExceeded`] when its deadline passes, or
    /// with [`CutOff`] when the server's drain deadline does.
    struct Bounded<F> {
        #[pin]
        handle: F,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
    }
}

impl<F> Future for Bounded<F>
where
    F: Future<Output = Result<Response, BoxError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(handled) = this.handle.poll(cx) {
            return Poll::Ready(handled);
        }
        if let Some(deadline) = this.deadline.as_pin_mut()
            && deadline.poll(cx).is_ready()
        {
            return Poll::Ready(Err(Error::from(DeadlineExceeded).into()));
        }
        // The connection's task polls this request again when the drain deadline passes.
        if drain::passed() {
            return Poll::Ready(Err(Error::from(CutOff).into()));
        }
        Poll::Pending
    }
}

pin_project! {
    /// Waits for a request's handling, then answers: the after-hooks, or the error handler and
    /// encoder, then the finalizers.
    struct Respond<Req, Resp, F> {
        #[pin]
        handling: CatchUnwind<F>,
        server: Arc<Inner<Req, Resp>>,
        ctx: Context,
        observed: Option<(Method, Uri, Instant)>,
        call: Call,
    }
}

impl<Req, Resp, F> Future for Respond<Req, Resp, F>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    F: Future<Output = Result<Response, BoxError>>,
{
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Response> {
        let this = self.project();
        // A panic in the decoder, endpoint or encoder becomes an error like any other, so the
        // error handler, the error encoder and the finalizers all see it.
        let handled = match this.handling.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(handled)) => handled,
            Poll::Ready(Err(_)) => Err(Error::from(Panicked).into()),
        };
        let observed = this.observed.take();
        let response = match handled {
            Ok(mut response) => {
                for hook in &this.server.after {
                    hook(this.ctx, &mut response);
                }
                this.server.finish(this.ctx, observed, response)
            }
            Err(error) => {
                if this.call.is_traced() {
                    this.call.failed((*error).kind(), &error);
                }
                this.server.fail(error, this.ctx, observed)
            }
        };
        this.call.http_status(response.status().as_u16(), true);
        Poll::Ready(response)
    }
}

/// A decoder's error that does not say its kind is the caller's: the request could not be read.
fn decoder_failure(error: BoxError) -> BoxError {
    match Error::from(error) {
        error if error.kind() == ErrorKind::Unknown => {
            Error::new(ErrorKind::InvalidArgument, error.into_inner()).into()
        }
        error => error.into(),
    }
}

/// The span a request is handled in, when it carries something worth putting on every log line.
fn request_span(ctx: &Context) -> Option<tracing::Span> {
    let id = ctx.get::<RequestId>();
    let timeout = ctx.remaining();
    if id.is_none() && timeout.is_none() {
        return None;
    }
    // At the error level so that it is kept whatever the filter keeps: a warning logged while
    // handling the request must still say which request it was.
    let span = tracing::error_span!(
        "request",
        request_id = tracing::field::Empty,
        timeout = tracing::field::Empty
    );
    if let Some(id) = id {
        span.record("request_id", id.as_str());
    }
    if let Some(timeout) = timeout {
        // To the millisecond, as the headers carry it: `2s`, not `1.999984829s`.
        let millis = (timeout.as_micros() + 500) / 1000;
        let rounded = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        span.record("timeout", tracing::field::display(GoDuration(rounded)));
    }
    Some(span)
}

/// The error a request ends with when its decoder, endpoint or encoder panicked.
#[derive(Debug, thiserror::Error)]
#[error("internal error: the request handler panicked")]
pub struct Panicked;

impl Classify for Panicked {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

pin_project! {
    /// Resolves to `Err` instead of unwinding when the inner future panics.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

pin_project! {
    /// What [`Server`] answers: the served response, or a 500 if serving panicked outside the
    /// handling (a hook, the error encoder).
    struct Answer<F> {
        #[pin]
        serving: Option<CatchUnwind<F>>,
    }
}

impl<F: Future<Output = Response>> Future for Answer<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let answer = match self.project().serving.as_pin_mut() {
            Some(serving) => match serving.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(answer) => answer.ok(),
            },
            None => None,
        };
        // The panic hook has already reported the panic.
        Poll::Ready(Ok(
            answer.unwrap_or_else(|| encode_error(&Error::from(Panicked)))
        ))
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

    fn poll_ready(&mut self, _cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The endpoint's readiness is awaited per request, inside the response future, which is
        // where axum drives it anyway.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Panics in the handling itself are caught inside `serve`; this catches the rest (a
        // panicking hook or error encoder), answering with a 500 rather than a dropped
        // connection.
        let serving = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.serve(request)));
        Box::pin(Answer {
            serving: serving.ok().map(|inner| CatchUnwind { inner }),
        })
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
            name: self.name,
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
