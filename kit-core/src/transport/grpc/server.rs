//! The gRPC server side of an endpoint (Go kit's `grpctransport.Server`).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll};

use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{propagation, status};
use crate::context::{Context, DeadlineExceeded, RequestId};
use crate::endpoint::{Endpoint, EndpointExt};
use crate::error::{BoxError, Classify, Error, ErrorExt as _, ErrorKind};
use crate::trace::Call;

type DecodeFn<M, Req> = Arc<dyn Fn(M) -> Result<Req, BoxError> + Send + Sync>;
type EncodeFn<Resp, R> = Arc<dyn Fn(Resp) -> Result<R, BoxError> + Send + Sync>;
type BeforeFn = Arc<dyn Fn(&MetadataMap, Context) -> Context + Send + Sync>;
type ErrorHandlerFn = Arc<dyn Fn(&BoxError) + Send + Sync>;

/// Answers one gRPC method with an endpoint: decode the request message, call the endpoint,
/// encode the reply message (Go kit's `grpctransport.NewServer(e, dec, enc)`).
///
/// `M` and `R` are the method's generated message types, `Req` and `Resp` the endpoint's. A
/// tonic service implements its generated trait by handing each call to [`serve`](Self::serve).
///
/// For each call, in order: the call's [`Context`] is made from its metadata (the deadline from
/// `grpc-timeout`, the `x-request-id`, see [`propagation`]) and the [`before`](Self::before)
/// hooks; in that context the decoder, the endpoint and the encoder run. An error from any of
/// them goes to the [`error_handler`](Self::error_handler) and is answered with the
/// [status](super::status) of its kind: a rate limiter's refusal is `ResourceExhausted`, an open
/// circuit breaker `Unavailable`, a decoder's failure `InvalidArgument` unless it says otherwise.
/// A call whose deadline passes is cut off with `DeadlineExceeded`; a panic is answered
/// `Internal` ([`Panicked`]) and the server carries on.
pub struct Server<M, R, Req, Resp> {
    inner: Arc<Inner<M, R, Req, Resp>>,
}

struct Inner<M, R, Req, Resp> {
    endpoint: Endpoint<Req, Resp>,
    decode: DecodeFn<M, Req>,
    encode: EncodeFn<Resp, R>,
    before: Vec<BeforeFn>,
    error_handler: Option<ErrorHandlerFn>,
    method: Option<&'static str>,
}

impl<M, R, Req, Resp> Server<M, R, Req, Resp>
where
    M: Send + 'static,
    R: Send + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// A server for `endpoint`, turning request messages into requests with `decode` and
    /// responses into reply messages with `encode`.
    pub fn new<D, E>(endpoint: Endpoint<Req, Resp>, decode: D, encode: E) -> Self
    where
        D: Fn(M) -> Result<Req, BoxError> + Send + Sync + 'static,
        E: Fn(Resp) -> Result<R, BoxError> + Send + Sync + 'static,
    {
        Server {
            inner: Arc::new(Inner {
                endpoint,
                decode: Arc::new(decode),
                encode: Arc::new(encode),
                before: Vec::new(),
                error_handler: None,
                method: None,
            }),
        }
    }

    /// Adds a hook that sees the call's metadata and may add values to its [`Context`] (Go
    /// kit's `ServerBefore`). Hooks run in the order added, after the deadline and request id
    /// are read.
    pub fn before(
        mut self,
        hook: impl Fn(&MetadataMap, Context) -> Context + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().before.push(Arc::new(hook));
        self
    }

    /// Sets a hook that sees every error before it is answered, to log or count it (Go kit's
    /// `ServerErrorHandler`).
    pub fn error_handler(mut self, handler: impl Fn(&BoxError) + Send + Sync + 'static) -> Self {
        self.inner_mut().error_handler = Some(Arc::new(handler));
        self
    }

    /// The builder methods run before the server is shared, so this clones nothing in practice.
    fn inner_mut(&mut self) -> &mut Inner<M, R, Req, Resp> {
        Arc::make_mut(&mut self.inner)
    }

    /// Names the gRPC method this server answers (`/pb.Add/Sum`): its calls' spans are named
    /// and described by it when tracing is on (see `kit_core::trace`). A tonic service's
    /// generated code does not tell the handler which method it is.
    pub fn method(mut self, path: &'static str) -> Self {
        self.inner_mut().method = Some(path);
        self
    }

    /// Answers one call.
    pub async fn serve(&self, request: Request<M>) -> Result<Response<R>, Status> {
        let (metadata, _extensions, message) = request.into_parts();
        let inner = &self.inner;
        let mut call = Call::none();
        let result = match propagation::extract(Context::current(), &metadata) {
            Err(invalid) => Err(Error::from(invalid).into()),
            Ok(ctx) => {
                let ctx = inner
                    .before
                    .iter()
                    .fold(ctx, |ctx, hook| hook(&metadata, ctx));
                // With tracing on, the call's span, a child of the caller's.
                let (ctx, traced) = Call::rpc(ctx, true, "grpc", inner.method.unwrap_or("grpc"));
                call = traced;
                let span = request_span(&ctx);
                let answering = ctx.clone().scope(inner.answer(&ctx, message));
                let caught = CatchUnwind(Box::pin(answering));
                let result = match span {
                    Some(span) => caught.instrument(span).await,
                    None => caught.await,
                };
                result.unwrap_or_else(|_| Err(Error::from(Panicked).into()))
            }
        };
        match result {
            Ok(reply) => {
                call.grpc_status(0, true);
                Ok(Response::new(reply))
            }
            Err(error) => {
                if let Some(handler) = &inner.error_handler {
                    handler(&error);
                }
                let status = status(error.as_ref());
                if call.is_traced() {
                    call.failed((*error).kind(), &error);
                    call.grpc_status(status.code() as i32, true);
                }
                Err(status)
            }
        }
    }
}

impl<M, R, Req, Resp> Inner<M, R, Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    async fn answer(&self, ctx: &Context, message: M) -> Result<R, BoxError> {
        if ctx.is_expired() {
            return Err(Error::from(DeadlineExceeded).into());
        }
        let work = async {
            let request = (self.decode)(message).map_err(decoder_failure)?;
            let response = self.endpoint.invoke(request).await?;
            (self.encode)(response)
        };
        match ctx.deadline() {
            Some(deadline) => tokio::time::timeout_at(deadline, work)
                .await
                .unwrap_or_else(|_| Err(Error::from(DeadlineExceeded).into())),
            None => work.await,
        }
    }
}

/// A decoder's error that does not say its kind is the caller's: the message was not valid.
fn decoder_failure(error: BoxError) -> BoxError {
    match Error::from(error) {
        error if error.kind() == ErrorKind::Unknown => {
            Error::new(ErrorKind::InvalidArgument, error.into_inner()).into()
        }
        error => error.into(),
    }
}

/// The span a call is handled in, when it carries a request id or a deadline, so that every
/// line logged while handling it says which call it belongs to.
fn request_span(ctx: &Context) -> Option<tracing::Span> {
    let id = ctx.get::<RequestId>();
    let timeout = ctx.remaining();
    if id.is_none() && timeout.is_none() {
        return None;
    }
    let span = tracing::error_span!(
        "request",
        request_id = tracing::field::Empty,
        timeout = tracing::field::Empty
    );
    if let Some(id) = id {
        span.record("request_id", id.as_str());
    }
    if let Some(timeout) = timeout {
        let millis = (timeout.as_micros() + 500) / 1000;
        let rounded = std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
        span.record(
            "timeout",
            tracing::field::display(crate::duration::GoDuration(rounded)),
        );
    }
    Some(span)
}

/// The error a call ends with when its decoder, endpoint or encoder panicked: over gRPC,
/// `Internal`. (Go kit's gRPC server does not recover, and the whole process dies.)
#[derive(Debug, thiserror::Error)]
#[error("internal error: the request handler panicked")]
pub struct Panicked;

impl Classify for Panicked {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// Resolves to `Err` instead of unwinding when the inner future panics.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

impl<M, R, Req, Resp> Clone for Server<M, R, Req, Resp> {
    fn clone(&self) -> Self {
        Server {
            inner: self.inner.clone(),
        }
    }
}

impl<M, R, Req, Resp> Clone for Inner<M, R, Req, Resp> {
    fn clone(&self) -> Self {
        Inner {
            endpoint: self.endpoint.clone(),
            decode: self.decode.clone(),
            encode: self.encode.clone(),
            before: self.before.clone(),
            error_handler: self.error_handler.clone(),
            method: self.method,
        }
    }
}

impl<M, R, Req, Resp> fmt::Debug for Server<M, R, Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("before", &self.inner.before.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::endpoint_fn;
    use std::time::Duration;
    use tonic::Code;
    use tonic::metadata::MetadataValue;

    fn doubler() -> Server<u32, u64, u32, u64> {
        let endpoint: Endpoint<u32, u64> = endpoint_fn(|n: u32| async move {
            match n {
                0 => Err(Error::new(
                    ErrorKind::ResourceExhausted,
                    "rate limit exceeded",
                )),
                1 => panic!("one"),
                2 => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(0)
                }
                n => Ok(u64::from(n) * 2),
            }
        });
        Server::new(
            endpoint,
            |n: u32| {
                if n == 7 {
                    Err("seven is not a number".into())
                } else {
                    Ok(n)
                }
            },
            Ok,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn errors_become_the_status_of_their_kind() {
        let server = doubler();
        let ok = server.serve(Request::new(21)).await.expect("doubled");
        assert_eq!(ok.into_inner(), 42);
        let limited = server.serve(Request::new(0)).await.expect_err("limited");
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert_eq!(limited.message(), "rate limit exceeded");
        let invalid = server
            .serve(Request::new(7))
            .await
            .expect_err("undecodable");
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let panicked = server.serve(Request::new(1)).await.expect_err("panicked");
        assert_eq!(panicked.code(), Code::Internal);

        let mut slow = Request::new(2);
        slow.metadata_mut()
            .insert("grpc-timeout", MetadataValue::from_static("50m"));
        let started = tokio::time::Instant::now();
        let late = server.serve(slow).await.expect_err("too slow");
        assert_eq!(late.code(), Code::DeadlineExceeded);
        assert_eq!(started.elapsed(), Duration::from_millis(50));

        let mut garbled = Request::new(3);
        garbled
            .metadata_mut()
            .insert("grpc-timeout", MetadataValue::from_static("soon"));
        let refused = server.serve(garbled).await.expect_err("bad timeout");
        assert_eq!(refused.code(), Code::InvalidArgument);
    }
}
