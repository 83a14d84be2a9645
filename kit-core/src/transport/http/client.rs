//! The HTTP client side of an endpoint (Go kit's `httptransport.Client`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::Service;
use url::Url;

use super::pool::{self, Pool, SendError};
use super::propagation;
use crate::context::Context;
use crate::endpoint::Endpoint;
use crate::error::{BoxError, Classify, Error, ErrorKind};
use crate::json;
use crate::trace::Call;

type EncodeFn<Req> =
    Arc<dyn Fn(&mut http::Request<Bytes>, Req) -> Result<(), BoxError> + Send + Sync>;
type DecodeFn<Resp> = Arc<dyn Fn(http::Response<Bytes>) -> Result<Resp, BoxError> + Send + Sync>;
type BeforeFn = Arc<dyn Fn(&mut http::Request<Bytes>) + Send + Sync>;

/// The largest response body a client reads unless [`Client::max_response_bytes`] says otherwise:
/// 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Calls a remote endpoint over HTTP: encode the request, send it, decode the response.
///
/// A `Client` is a tower service, so [`Client::endpoint`] turns it into an [`Endpoint`] that the
/// rest of a program (middleware, load balancers) treats like a local one.
///
/// ```
/// use http::Method;
/// use kit_core::transport::http::{Client, decode_json_response, encode_json_request};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize)]
/// struct UppercaseRequest { s: String }
/// #[derive(Deserialize)]
/// struct UppercaseResponse { v: String, err: Option<String> }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let uppercase = Client::new(
///     Method::POST,
///     "http://localhost:8080/uppercase".parse()?,
///     encode_json_request::<UppercaseRequest>,
///     decode_json_response::<UppercaseResponse>,
/// )
/// .timeout(Duration::from_secs(2))
/// .endpoint();
/// # let _ = uppercase;
/// # Ok(())
/// # }
/// ```
///
/// Unlike Go kit's client, this one checks the status: an answer outside 2xx is a
/// [`ClientError::Status`] that carries the status and the remote's error message, read from a
/// JSON `{"error":…}` (kit-core servers) or `{"err":…}` body, or else from the body's text, and
/// cut to 512 characters. Redirects are not followed: a 3xx is such an error too, since a
/// redirect would send the request, body and all, wherever the remote says.
///
/// Each call carries the request's [context](crate::context) on to the remote: what is left of
/// the deadline (or of the client's own [`timeout`](Self::timeout), if sooner) and the request
/// id, in the headers of [`propagation`](super::propagation). The call itself ends at that
/// deadline, and a call whose deadline has already passed is not sent.
pub struct Client<Req, Resp> {
    inner: Arc<Inner<Req, Resp>>,
}

struct Inner<Req, Resp> {
    /// Its own, or shared through [`Client::pool`]: requests reuse its connections.
    pool: Pool,
    method: Method,
    url: Url,
    /// `url` as hyper takes it, made once rather than on every call.
    uri: Result<Uri, Arc<http::uri::InvalidUri>>,
    encode: EncodeFn<Req>,
    decode: DecodeFn<Resp>,
    before: Vec<BeforeFn>,
    timeout: Option<Duration>,
    max_response_bytes: usize,
    name: Option<&'static str>,
}

/// Why a call through a [`Client`] failed.
///
/// Its message says what went wrong, not where: the remote's address is not in it, because a
/// service that passes the message on to its own callers (a proxy, a gateway) should not tell
/// them its internal addresses. The address is in [`url`](Self::url), and a [`LoggingLayer`]
/// with a peer puts it in the log.
///
/// [`LoggingLayer`]: crate::log::LoggingLayer
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The remote answered with a status outside 2xx (redirects included: they are not
    /// followed).
    #[error("{status}: {message}")]
    Status {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: Url,
        /// The status the remote answered with.
        status: StatusCode,
        /// The remote's error message, cut to 512 characters.
        message: String,
    },
    /// No complete answer came within the client's timeout or the request's deadline.
    #[error("timed out")]
    Timeout {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: Url,
    },
    /// The request could not be sent or its answer not received: refused connection, reset,
    /// unknown host.
    #[error("{message}")]
    Transport {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: Url,
        /// What went wrong, with its causes.
        message: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The answer's body was larger than the client accepts.
    #[error("response body is larger than {limit} bytes")]
    TooLarge {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: Url,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The request could not be encoded.
    #[error("cannot encode request: {0}")]
    Encode(#[source] BoxError),
    /// The answer could not be decoded.
    #[error("cannot decode response: {source}")]
    Decode {
        /// The request's method.
        method: Method,
        /// The request's URL.
        url: Url,
        /// Why decoding failed.
        #[source]
        source: BoxError,
    },
    /// The client's URL is not one an HTTP request can be sent to.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(#[source] Arc<http::uri::InvalidUri>),
}

impl Classify for ClientError {
    /// [`DeadlineExceeded`](ErrorKind::DeadlineExceeded) for a timeout,
    /// [`Internal`](ErrorKind::Internal) for a request we could not encode or a client we could
    /// not set up; for an answer outside 2xx, the kind its status says ([`kind_of_status`]), so
    /// that a remote's 504 stays a deadline and its 429 a limit; and
    /// [`Unavailable`](ErrorKind::Unavailable) for everything else the remote got wrong: from
    /// where the caller stands, the service it depends on failed.
    fn kind(&self) -> ErrorKind {
        match self {
            ClientError::Timeout { .. } => ErrorKind::DeadlineExceeded,
            ClientError::Encode(_) | ClientError::Setup(_) => ErrorKind::Internal,
            ClientError::Status { status, .. } => kind_of_status(*status),
            _ => ErrorKind::Unavailable,
        }
    }
}

/// The kind of failure an HTTP status describes, read back from a remote's answer: the
/// inverse of `status_for` where the status says something a caller can act on, and
/// [`Unavailable`](ErrorKind::Unavailable) for the remote's own failures (500, 502, 503).
pub fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        400 | 422 => ErrorKind::InvalidArgument,
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::DeadlineExceeded,
        409 => ErrorKind::AlreadyExists,
        412 => ErrorKind::FailedPrecondition,
        413 | 429 => ErrorKind::ResourceExhausted,
        499 => ErrorKind::Canceled,
        501 => ErrorKind::Unimplemented,
        _ => ErrorKind::Unavailable,
    }
}

impl ClientError {
    /// The status a server that proxies this call answers with: 504 for a timeout, 500 for a
    /// request we could not encode or a client we could not set up, 502 for everything the
    /// upstream got wrong.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ClientError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ClientError::Encode(_) | ClientError::Setup(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The URL the call went to, when it got that far.
    pub fn url(&self) -> Option<&Url> {
        match self {
            ClientError::Status { url, .. }
            | ClientError::Timeout { url, .. }
            | ClientError::Transport { url, .. }
            | ClientError::TooLarge { url, .. }
            | ClientError::Decode { url, .. } => Some(url),
            ClientError::Encode(_) | ClientError::Setup(_) => None,
        }
    }

    /// Whether the call failed to connect: nothing reached the remote, so trying another
    /// instance is safe whatever the call does.
    pub fn is_connect(&self) -> bool {
        match self {
            ClientError::Transport { source, .. } => pool::is_connect(source.as_ref()),
            _ => false,
        }
    }

    /// The remote's status, for [`ClientError::Status`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl<Req, Resp> Client<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// A client that sends `method` requests to `url`, writing the body with `encode` and
    /// reading the answer with `decode` (Go kit's `NewClient(method, url, enc, dec)`).
    pub fn new<E, D>(method: Method, url: Url, encode: E, decode: D) -> Self
    where
        E: Fn(&mut http::Request<Bytes>, Req) -> Result<(), BoxError> + Send + Sync + 'static,
        D: Fn(http::Response<Bytes>) -> Result<Resp, BoxError> + Send + Sync + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                pool: Pool::new(),
                method,
                uri: url.as_str().parse().map_err(Arc::new),
                url,
                encode: Arc::new(encode),
                decode: Arc::new(decode),
                before: Vec::new(),
                timeout: None,
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                name: None,
            }),
        }
    }

    /// Limits how long a whole call may take, from connecting to reading the last byte.
    /// There is no limit unless set.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().timeout = Some(timeout);
        self
    }

    /// Limits how long connecting may take (5 seconds unless set).
    ///
    /// This gives the client its own connection pool with that timeout, replacing any pool
    /// given to [`pool`](Self::pool); set the timeout on that pool instead
    /// ([`Pool::with_connect_timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.inner_mut().pool = Pool::with_connect_timeout(timeout);
        self
    }

    /// Sends requests on `pool`'s connections, shared with the other clients given it
    /// (including its connect timeout, which replaces any set with
    /// [`connect_timeout`](Self::connect_timeout)).
    pub fn pool(mut self, pool: Pool) -> Self {
        self.inner_mut().pool = pool;
        self
    }

    /// Limits the size of the answers read, in bytes (16 MiB unless set).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.inner_mut().max_response_bytes = bytes;
        self
    }

    /// Adds a hook that adjusts each request before it is sent, typically its headers (Go kit's
    /// `ClientBefore`).
    pub fn before(
        mut self,
        hook: impl Fn(&mut http::Request<Bytes>) + Send + Sync + 'static,
    ) -> Self {
        self.inner_mut().before.push(Arc::new(hook));
        self
    }

    /// Names the endpoint this client calls (`uppercase`): the name of its calls' spans when
    /// tracing is on (see `kit_core::trace`); unnamed, they are named by the HTTP method.
    pub fn name(mut self, name: &'static str) -> Self {
        self.inner_mut().name = Some(name);
        self
    }

    /// This client as an [`Endpoint`].
    pub fn endpoint(self) -> Endpoint<Req, Resp> {
        Endpoint::new(self)
    }

    fn inner_mut(&mut self) -> &mut Inner<Req, Resp> {
        Arc::make_mut(&mut self.inner)
    }
}

impl<Req, Resp> Inner<Req, Resp> {
    async fn call(&self, req: Req) -> Result<Resp, ClientError> {
        // ANCHOR: context
        // The request being handled on this task, if any, with this client's own timeout: the
        // call ends at the sooner of the two, and the callee is told how long it has.
        let ctx = match self.timeout {
            Some(timeout) => Context::current().with_timeout(timeout),
            None => Context::current(),
        };
        // ANCHOR_END: context
        // With tracing on, the call's span, a child of the request's; the context names it, so
        // the callee's span becomes its child.
        let (ctx, mut call) = Call::http_client(
            ctx,
            &self.method,
            self.url.as_str(),
            self.url.host_str(),
            self.url.port_or_known_default(),
            self.name,
        );
        let result = self.send(&ctx, &mut call, req).await;
        if let Err(error) = &result
            && call.is_traced()
        {
            call.failed(error.kind(), error);
        }
        result
    }

    async fn send(&self, ctx: &Context, call: &mut Call, req: Req) -> Result<Resp, ClientError> {
        let uri = self
            .uri
            .as_ref()
            .map_err(|e| ClientError::Setup(e.clone()))?;
        let mut request = http::Request::new(Bytes::new());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri.clone();
        // ANCHOR: inject
        if !propagation::inject(ctx, request.headers_mut()) {
            return Err(self.timed_out());
        }
        // ANCHOR_END: inject
        (self.encode)(&mut request, req).map_err(ClientError::Encode)?;
        for hook in &self.before {
            hook(&mut request);
        }

        let answer = self
            .pool
            .send(request, ctx.deadline(), self.max_response_bytes)
            .await
            .map_err(|error| match error {
                SendError::Timeout => self.timed_out(),
                SendError::TooLarge => ClientError::TooLarge {
                    method: self.method.clone(),
                    url: self.url.clone(),
                    limit: self.max_response_bytes,
                },
                SendError::Transport(source) => ClientError::Transport {
                    method: self.method.clone(),
                    url: self.url.clone(),
                    message: pool::root_cause(source.as_ref()),
                    source,
                },
            })?;
        let status = answer.status;
        call.http_status(status.as_u16(), false);
        if !status.is_success() {
            return Err(ClientError::Status {
                method: self.method.clone(),
                url: self.url.clone(),
                status,
                message: remote_message(status, &answer.body),
            });
        }
        let mut response = http::Response::new(answer.body);
        *response.status_mut() = status;
        *response.headers_mut() = answer.headers;
        (self.decode)(response).map_err(|source| ClientError::Decode {
            method: self.method.clone(),
            url: self.url.clone(),
            source,
        })
    }

    fn timed_out(&self) -> ClientError {
        ClientError::Timeout {
            method: self.method.clone(),
            url: self.url.clone(),
        }
    }
}

/// The longest remote message kept, in characters: enough to explain, too short to amplify.
const MAX_MESSAGE: usize = 512;

/// The remote's explanation of a failed call: the `error` or `err` string of a JSON body, else
/// the body's text, else the status's reason; cut to [`MAX_MESSAGE`] characters whichever it is,
/// so that a remote cannot make its callers' answers and log lines as large as its own.
fn remote_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: Option<String>,
        err: Option<String>,
    }
    if let Ok(ErrorBody { error, err }) = serde_json::from_slice::<ErrorBody>(body)
        && let Some(message) = error.or(err)
    {
        return cut(message.trim());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    } else {
        cut(text)
    }
}

/// `text` cut to [`MAX_MESSAGE`] characters, with `…` when something was cut.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Encodes a request as a JSON body (Go kit's `EncodeJSONRequest`): `Content-Type:
/// application/json` and the JSON followed by a newline, as Go's `json.Encoder` writes it.
pub fn encode_json_request<T: Serialize>(
    request: &mut http::Request<Bytes>,
    body: T,
) -> Result<(), BoxError> {
    let mut bytes = json::to_vec(&body)?;
    bytes.push(b'\n');
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    *request.body_mut() = bytes.into();
    Ok(())
}

/// Decodes a JSON response body into `T`, with the same Go-compatible rules as the server (see
/// [`json`](crate::json)).
pub fn decode_json_response<T: DeserializeOwned>(
    response: http::Response<Bytes>,
) -> Result<T, BoxError> {
    Ok(json::from_slice(response.body())?)
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
        // The pool queues requests itself; there is nothing to wait for here.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.call(req).await.map_err(|e| Error::from(e).into()) })
    }
}

impl<Req, Resp> Clone for Client<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<Req, Resp> Clone for Inner<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            method: self.method.clone(),
            url: self.url.clone(),
            uri: self.uri.clone(),
            encode: self.encode.clone(),
            decode: self.decode.clone(),
            before: self.before.clone(),
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
            name: self.name,
        }
    }
}

impl<Req, Resp> fmt::Debug for Client<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("method", &self.inner.method)
            .field("url", &self.inner.url.as_str())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}
