//! The JSON-RPC client: one method of a remote server as an endpoint.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{self, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::Service;
use url::Url;

use super::error::ErrorObject;
use crate::context::{Context, DeadlineExceeded};
use crate::endpoint::Endpoint;
use crate::error::{BoxError, Classify, Error, ErrorExt as _, ErrorKind};
use crate::json;
use crate::trace::Call;
use crate::transport::http::Pool;
use crate::transport::http::pool::SendError;
use crate::transport::http::propagation;

type EncodeFn<Req> = Arc<dyn Fn(Req) -> Result<Value, BoxError> + Send + Sync>;
type DecodeFn<Resp> =
    Arc<dyn Fn(Result<Value, ErrorObject>) -> Result<Resp, BoxError> + Send + Sync>;

/// The largest answer the client reads: 16 MiB.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Calls one method of a JSON-RPC server (Go kit's `jsonrpc.NewClient`): `POST` of
/// `{"jsonrpc":"2.0","method":…,"params":…,"id":N}` with ids counting up from 1, and the
/// answer's `result` or `error` handed to the decoder.
///
/// The decoder sees the error object too, so that a service whose business errors travel as
/// error objects can turn them back into its own values (see [`decode_result`] for the plain
/// case, where an error object fails the call with the kind of its code).
///
/// As kit-core's HTTP client, it sends the request's deadline and id in `X-Request-Timeout`
/// and `X-Request-Id`, ends the call at that deadline, and does not send a call whose deadline
/// has passed.
pub struct Client<Req, Resp> {
    inner: Arc<Inner<Req, Resp>>,
}

struct Inner<Req, Resp> {
    pool: Pool,
    url: Url,
    /// `url` as hyper takes it, made once.
    uri: Result<Uri, Arc<http::uri::InvalidUri>>,
    method: String,
    encode: EncodeFn<Req>,
    decode: DecodeFn<Resp>,
    ids: AtomicU64,
    timeout: Option<Duration>,
}

/// Why a JSON-RPC call failed before an answer could be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be sent or its answer not read.
    #[error("{url}: {source}")]
    Transport {
        /// The server's URL.
        url: Url,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The server's URL is not one an HTTP request can be sent to.
    #[error("{url}: {source}")]
    Url {
        /// The server's URL.
        url: Url,
        /// Why.
        #[source]
        source: Arc<http::uri::InvalidUri>,
    },
    /// The server answered with an HTTP status and no JSON-RPC answer.
    #[error("{url}: {status}")]
    Status {
        /// The server's URL.
        url: Url,
        /// The status.
        status: StatusCode,
    },
    /// The answer is not a JSON-RPC response to this call.
    #[error("{url}: invalid answer: {reason}")]
    Answer {
        /// The server's URL.
        url: Url,
        /// What is wrong with it.
        reason: String,
    },
    /// The answer was larger than the client reads.
    #[error("{url}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The server's URL.
        url: Url,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl Classify for ClientError {
    /// A call that timed out is [`DeadlineExceeded`](ErrorKind::DeadlineExceeded); any other
    /// failure is the server's, [`Unavailable`](ErrorKind::Unavailable).
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Url { .. } => ErrorKind::Internal,
            _ => ErrorKind::Unavailable,
        }
    }
}

impl<Req, Resp> Client<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// A client of `method` at `url`, sending params made by `encode` and reading answers with
    /// `decode`. `pool` holds the connections; share one between the clients of a server.
    pub fn new<E, D>(pool: Pool, url: Url, method: &str, encode: E, decode: D) -> Self
    where
        E: Fn(Req) -> Result<Value, BoxError> + Send + Sync + 'static,
        D: Fn(Result<Value, ErrorObject>) -> Result<Resp, BoxError> + Send + Sync + 'static,
    {
        Client {
            inner: Arc::new(Inner {
                pool,
                uri: url.as_str().parse().map_err(Arc::new),
                url,
                method: method.to_owned(),
                encode: Arc::new(encode),
                decode: Arc::new(decode),
                ids: AtomicU64::new(1),
                timeout: None,
            }),
        }
    }

    /// Limits how long a call may take; there is no limit unless set (or the request's own).
    pub fn timeout(self, timeout: Duration) -> Self {
        let inner = &self.inner;
        Client {
            inner: Arc::new(Inner {
                pool: inner.pool.clone(),
                url: inner.url.clone(),
                uri: inner.uri.clone(),
                method: inner.method.clone(),
                encode: inner.encode.clone(),
                decode: inner.decode.clone(),
                ids: AtomicU64::new(inner.ids.load(Ordering::Relaxed)),
                timeout: Some(timeout),
            }),
        }
    }

    /// This client as an [`Endpoint`].
    pub fn endpoint(self) -> Endpoint<Req, Resp> {
        Endpoint::new(self)
    }
}

impl<Req, Resp> Inner<Req, Resp> {
    async fn call(&self, req: Req) -> Result<Resp, BoxError> {
        let ctx = match self.timeout {
            Some(timeout) => Context::current().with_timeout(timeout),
            None => Context::current(),
        };
        // With tracing on, the call's span, a child of the request's.
        let (ctx, mut call) = Call::rpc(ctx, false, "jsonrpc", &self.method);
        let result = self.send(&ctx, req).await;
        match &result {
            Ok(_) => call.succeeded(),
            Err(error) if call.is_traced() => {
                if let Some(remote) = (**error).find::<ErrorObject>() {
                    call.jsonrpc_error(remote.code);
                }
                call.failed((**error).kind(), error);
            }
            Err(_) => {}
        }
        result
    }

    async fn send(&self, ctx: &Context, req: Req) -> Result<Resp, BoxError> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let envelope = serde_json::json!({
            "jsonrpc": "2.0",
            "method": self.method,
            "params": (self.encode)(req)?,
            "id": id,
        });
        let mut body = json::to_vec(&envelope)?;
        body.push(b'\n');
        let uri = self.uri.as_ref().map_err(|source| {
            Error::from(ClientError::Url {
                url: self.url.clone(),
                source: source.clone(),
            })
        })?;
        let mut request = http::Request::new(Bytes::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        if !propagation::inject(ctx, request.headers_mut()) {
            return Err(Error::from(DeadlineExceeded).into());
        }
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );

        let answer = self
            .pool
            .send(request, ctx.deadline(), MAX_RESPONSE_BYTES)
            .await
            .map_err(|error| -> BoxError {
                match error {
                    SendError::Timeout => Error::from(DeadlineExceeded).into(),
                    SendError::TooLarge => Error::from(ClientError::TooLarge {
                        url: self.url.clone(),
                        limit: MAX_RESPONSE_BYTES,
                    })
                    .into(),
                    SendError::Transport(source) => Error::from(ClientError::Transport {
                        url: self.url.clone(),
                        source,
                    })
                    .into(),
                }
            })?;
        let (status, bytes) = (answer.status, answer.body);
        let answer = match serde_json::from_slice::<Answer>(&bytes) {
            Ok(answer) => answer,
            Err(_) if !status.is_success() => {
                return Err(Error::from(ClientError::Status {
                    url: self.url.clone(),
                    status,
                })
                .into());
            }
            Err(err) => {
                return Err(Error::from(ClientError::Answer {
                    url: self.url.clone(),
                    reason: err.to_string(),
                })
                .into());
            }
        };
        let invalid = |reason: &str| -> BoxError {
            Error::from(ClientError::Answer {
                url: self.url.clone(),
                reason: reason.to_owned(),
            })
            .into()
        };
        // A server that could not read the call answers its error with a null id.
        match (&answer.id, &answer.error) {
            (Value::Number(n), _) if n.as_u64() == Some(id) => {}
            (Value::Null, Some(_)) => {}
            _ => return Err(invalid("the id is not the call's")),
        }
        match (answer.result, answer.error) {
            (_, Some(error)) => (self.decode)(Err(error)),
            (Some(result), None) => (self.decode)(Ok(result)),
            (None, None) => Err(invalid("neither a result nor an error")),
        }
    }
}

/// A response object, as any server writes it.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
    #[serde(default)]
    id: Value,
}

/// The plain decoder: a result decoded into `T` with Go's rules, an error object as the call's
/// failure, of the kind its code says.
pub fn decode_result<T: DeserializeOwned>(
    answer: Result<Value, ErrorObject>,
) -> Result<T, BoxError> {
    match answer {
        Ok(value) => Ok(json::from_slice(&serde_json::to_vec(&value)?)?),
        Err(error) => Err(Error::from(error).into()),
    }
}

impl<Req, Resp> Service<Req> for Client<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    type Response = Resp;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Resp, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.call(req).await })
    }
}

impl<Req, Resp> Clone for Client<Req, Resp> {
    fn clone(&self) -> Self {
        Client {
            inner: self.inner.clone(),
        }
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url.as_str())
            .field("method", &self.inner.method)
            .finish_non_exhaustive()
    }
}
