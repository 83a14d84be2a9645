//! The gRPC client side of an endpoint (Go kit's `grpctransport.Client`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};
use tonic::{Code, Request, Status};
use tower::Service;

use super::{kind_of_code, propagation};
use crate::context::{Context, DeadlineExceeded};
use crate::endpoint::Endpoint;
use crate::error::{BoxError, Classify, Error, ErrorExt as _, ErrorKind};
use crate::trace::Call;

type EncodeFn<Req, M> = Arc<dyn Fn(Req) -> Result<M, BoxError> + Send + Sync>;
type DecodeFn<R, Resp> = Arc<dyn Fn(R) -> Result<Resp, BoxError> + Send + Sync>;

/// A channel to `uri` (`http://host:port`) that connects on first use, within
/// `connect_timeout`, and reconnects after failures; share it between the [`Client`]s of one
/// instance, since its HTTP/2 connection carries many calls at once. Needs a Tokio runtime.
pub fn channel(uri: &str, connect_timeout: Duration) -> Result<Channel, BoxError> {
    Ok(TonicEndpoint::from_shared(uri.to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Calls one method of a remote gRPC service: encode the request as its message, call
/// `/<package>.<Service>/<Method>`, decode the reply (Go kit's `grpctransport.NewClient`).
///
/// Each call sends the request's [context](crate::context) on: what is left of the deadline
/// (or of the client's own [`timeout`](Self::timeout), if sooner) as `grpc-timeout`, and the
/// request id as `x-request-id`. The call ends at that deadline, and one whose deadline has
/// already passed is not sent. A failed call is a [`RemoteError`] whose kind is its status code's,
/// so that a remote's `ResourceExhausted` stays a limit and its `Unavailable` a failure a
/// retry may cure.
pub struct Client<Req, Resp, M, R> {
    inner: Arc<Inner<Req, Resp, M, R>>,
}

struct Inner<Req, Resp, M, R> {
    channel: Channel,
    path: PathAndQuery,
    encode: EncodeFn<Req, M>,
    decode: DecodeFn<R, Resp>,
    timeout: Option<Duration>,
}

/// A gRPC call that failed: the status the remote (or the channel) answered with.
///
/// Displays as Go's gRPC errors do: `rpc error: code = ResourceExhausted desc = rate limit
/// exceeded`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rpc error: code = {code:?} desc = {message}")]
pub struct RemoteError {
    /// The status code.
    pub code: Code,
    /// The status message.
    pub message: String,
}

impl From<Status> for RemoteError {
    fn from(status: Status) -> Self {
        RemoteError {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

impl Classify for RemoteError {
    /// The kind the code names ([`kind_of_code`]).
    fn kind(&self) -> ErrorKind {
        kind_of_code(self.code)
    }
}

impl<Req, Resp, M, R> Client<Req, Resp, M, R>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    M: prost::Message + Send + 'static,
    R: prost::Message + Default + Send + 'static,
{
    /// A client of `method` (`/pb.Add/Sum`) on `channel`, turning requests into messages with
    /// `encode` and reply messages into responses with `decode`.
    pub fn new<E, D>(channel: Channel, method: &'static str, encode: E, decode: D) -> Self
    where
        E: Fn(Req) -> Result<M, BoxError> + Send + Sync + 'static,
        D: Fn(R) -> Result<Resp, BoxError> + Send + Sync + 'static,
    {
        Client {
            inner: Arc::new(Inner {
                channel,
                path: PathAndQuery::from_static(method),
                encode: Arc::new(encode),
                decode: Arc::new(decode),
                timeout: None,
            }),
        }
    }

    /// Limits how long a call may take; there is no limit unless set (or the request's own).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.timeout = Some(timeout);
        } else {
            let inner = &self.inner;
            self.inner = Arc::new(Inner {
                channel: inner.channel.clone(),
                path: inner.path.clone(),
                encode: inner.encode.clone(),
                decode: inner.decode.clone(),
                timeout: Some(timeout),
            });
        }
        self
    }

    /// This client as an [`Endpoint`].
    pub fn endpoint(self) -> Endpoint<Req, Resp> {
        Endpoint::new(self)
    }
}

impl<Req, Resp, M, R> Inner<Req, Resp, M, R>
where
    M: prost::Message + Send + 'static,
    R: prost::Message + Default + Send + 'static,
{
    async fn call(&self, req: Req) -> Result<Resp, BoxError> {
        let ctx = match self.timeout {
            Some(timeout) => Context::current().with_timeout(timeout),
            None => Context::current(),
        };
        // With tracing on, the call's span, a child of the request's, sent on as the callee's
        // parent.
        let (ctx, mut call) = Call::rpc(ctx, false, "grpc", self.path.as_str());
        let result = self.send(&ctx, &mut call, req).await;
        if let Err(error) = &result
            && call.is_traced()
        {
            call.failed((**error).kind(), error);
        }
        result
    }

    async fn send(&self, ctx: &Context, call: &mut Call, req: Req) -> Result<Resp, BoxError> {
        let mut request = Request::new((self.encode)(req)?);
        if !propagation::inject(ctx, request.metadata_mut()) {
            return Err(Error::from(DeadlineExceeded).into());
        }
        let calling = async {
            let mut grpc = tonic::client::Grpc::new(self.channel.clone());
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("{}: {e}", self.path)))?;
            let codec = tonic_prost::ProstCodec::<M, R>::default();
            grpc.unary(request, self.path.clone(), codec).await
        };
        let reply = match ctx.deadline() {
            Some(deadline) => tokio::time::timeout_at(deadline, calling)
                .await
                .map_err(|_| Error::from(DeadlineExceeded))?,
            None => calling.await,
        };
        call.grpc_status(
            match &reply {
                Ok(_) => 0,
                Err(status) => status.code() as i32,
            },
            false,
        );
        let reply = reply.map_err(|status| Error::from(RemoteError::from(status)))?;
        (self.decode)(reply.into_inner())
    }
}

impl<Req, Resp, M, R> Service<Req> for Client<Req, Resp, M, R>
where
    Req: Send + 'static,
    Resp: Send + 'static,
    M: prost::Message + Send + 'static,
    R: prost::Message + Default + Send + 'static,
{
    type Response = Resp;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The channel queues calls itself; readiness is awaited per call.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.call(req).await })
    }
}

impl<Req, Resp, M, R> Clone for Client<Req, Resp, M, R> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<Req, Resp, M, R> fmt::Debug for Client<Req, Resp, M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("method", &self.inner.path.as_str())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}
