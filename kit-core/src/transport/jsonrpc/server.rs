//! The JSON-RPC server: one HTTP handler for every method.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ErrorObject, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR};
use crate::context::{Context, DeadlineExceeded};
use crate::endpoint::{Endpoint, EndpointExt, Failer};
use crate::error::{BoxError, Classify as _, Error};
use crate::json;
use crate::trace::Call;
use crate::transport::http::propagation;
use crate::transport::http::{DEFAULT_BODY_LIMIT, DEFAULT_READ_TIMEOUT, Request, Response};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type MethodFn = Arc<dyn Fn(Value) -> BoxFuture<Result<Value, ErrorObject>> + Send + Sync>;
type ErrorHandlerFn = Arc<dyn Fn(&ErrorObject) + Send + Sync>;

/// A JSON-RPC 2.0 server: named methods, each answered by an endpoint (Go kit's
/// `jsonrpc.NewServer(EndpointCodecMap{...})`). Serve it with [`router`](Self::router), which
/// answers on every path, as Go kit's does.
///
/// ```
/// use kit_core::endpoint::endpoint_fn;
/// use kit_core::transport::jsonrpc::{Server, decode_params, encode_result};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Deserialize)]
/// #[serde(default)]
/// struct SumRequest { a: i64, b: i64 }
/// #[derive(Serialize)]
/// struct SumResponse { v: i64 }
///
/// let sum = endpoint_fn(|r: SumRequest| async move {
///     Ok::<_, std::convert::Infallible>(SumResponse { v: r.a + r.b })
/// });
/// let app: axum::Router = Server::new()
///     .method("sum", sum, decode_params, encode_result)
///     .router();
/// ```
pub struct Server {
    methods: HashMap<String, MethodFn>,
    body_limit: usize,
    max_batch: usize,
    error_handler: Option<ErrorHandlerFn>,
}

/// The most calls a batch may hold unless [`Server::max_batch`] says otherwise.
///
/// Each call of a batch is answered, and the answer to a call is larger than the smallest call
/// (`1,`, two bytes, is answered with an error object of about ninety): without a bound, a
/// batch of a megabyte would be answered with forty-five. Bounded, the answers add at most a
/// few kilobytes to what the calls themselves hold.
pub const DEFAULT_MAX_BATCH: usize = 100;

impl Server {
    /// A server with no method yet, a body limit of 1 MiB and batches of at most
    /// [`DEFAULT_MAX_BATCH`] calls.
    pub fn new() -> Self {
        Server {
            methods: HashMap::new(),
            body_limit: DEFAULT_BODY_LIMIT,
            max_batch: DEFAULT_MAX_BATCH,
            error_handler: None,
        }
    }

    /// Answers `name` with `endpoint`: `decode` turns the call's params (an object, or `null`
    /// when there are none) into its request, `encode` its response into the result.
    pub fn method<Req, Resp, D, E>(
        mut self,
        name: &str,
        endpoint: Endpoint<Req, Resp>,
        decode: D,
        encode: E,
    ) -> Self
    where
        Req: Send + 'static,
        Resp: Send + 'static,
        D: Fn(Value) -> Result<Req, BoxError> + Send + Sync + 'static,
        E: Fn(Resp) -> Result<Value, ErrorObject> + Send + Sync + 'static,
    {
        let (decode, encode) = (Arc::new(decode), Arc::new(encode));
        let call: MethodFn = Arc::new(move |params: Value| {
            let (endpoint, decode, encode) = (endpoint.clone(), decode.clone(), encode.clone());
            Box::pin(async move {
                let request = decode(params).map_err(|e| {
                    ErrorObject::new(INVALID_PARAMS, format!("invalid params: {e}"))
                })?;
                match endpoint.invoke(request).await {
                    Ok(response) => encode(response),
                    Err(err) => Err(ErrorObject::from_error(err.as_ref())),
                }
            })
        });
        self.methods.insert(name.to_owned(), call);
        self
    }

    /// Sets the largest request body accepted, in bytes (1 MiB unless set); larger ones are
    /// answered 413 with a `-32600` error.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Sets the most calls a batch may hold ([`DEFAULT_MAX_BATCH`] unless set); a larger batch
    /// is answered with one `-32600` error, none of its calls made.
    pub fn max_batch(mut self, calls: usize) -> Self {
        self.max_batch = calls.max(1);
        self
    }

    /// Sets a hook that sees every error answered, to log or count it (Go kit's
    /// `ServerErrorLogger`).
    pub fn error_handler(mut self, handler: impl Fn(&ErrorObject) + Send + Sync + 'static) -> Self {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// The server as a router that answers on every path.
    pub fn router(self) -> Router {
        let server = Arc::new(self);
        Router::new().fallback(move |request: Request| {
            let server = server.clone();
            async move { server.handle(request).await }
        })
    }

    async fn handle(&self, request: Request) -> Response {
        if request.method() != Method::POST {
            let mut response = self.answer(
                StatusCode::METHOD_NOT_ALLOWED,
                &Reply::failure(
                    Value::Null,
                    ErrorObject::new(INVALID_REQUEST, "JSON-RPC calls must be POSTed"),
                ),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let ctx = match propagation::extract(Context::current(), request.headers()) {
            Ok(ctx) => ctx,
            Err(invalid) => {
                let error = ErrorObject::new(INVALID_REQUEST, invalid.to_string());
                return self.answer(StatusCode::OK, &Reply::failure(Value::Null, error));
            }
        };
        let too_large = || {
            let error = ErrorObject::new(
                INVALID_REQUEST,
                format!(
                    "request body is too large: the limit is {} bytes",
                    self.body_limit
                ),
            );
            self.answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                &Reply::failure(Value::Null, error),
            )
        };
        // A declared length over the limit is refused before a byte of the body is read.
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.body_limit as u64) {
            return too_large();
        }
        let body = Limited::new(request.into_body(), self.body_limit);
        let read = tokio::time::timeout(DEFAULT_READ_TIMEOUT, body.collect()).await;
        let bytes = match read {
            Err(_) => {
                let error = ErrorObject::new(
                    INVALID_REQUEST,
                    format!(
                        "request body was not received within {}s",
                        DEFAULT_READ_TIMEOUT.as_secs()
                    ),
                );
                return self.answer(
                    StatusCode::REQUEST_TIMEOUT,
                    &Reply::failure(Value::Null, error),
                );
            }
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(_)) => {
                let error = ErrorObject::new(
                    INVALID_REQUEST,
                    format!(
                        "request body is too large or unreadable: the limit is {} bytes",
                        self.body_limit
                    ),
                );
                return self.answer(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &Reply::failure(Value::Null, error),
                );
            }
        };
        let parsed: Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(err) => {
                let error = ErrorObject::new(PARSE_ERROR, format!("parse error: {err}"));
                return self.answer(StatusCode::OK, &Reply::failure(Value::Null, error));
            }
        };
        ctx.clone()
            .scope(async move {
                match parsed {
                    Value::Array(calls) if calls.is_empty() => {
                        let error = ErrorObject::new(INVALID_REQUEST, "empty batch");
                        self.answer(StatusCode::OK, &Reply::failure(Value::Null, error))
                    }
                    Value::Array(calls) if calls.len() > self.max_batch => {
                        let error = ErrorObject::new(
                            INVALID_REQUEST,
                            format!(
                                "a batch holds at most {} calls; this one holds {}",
                                self.max_batch,
                                calls.len()
                            ),
                        );
                        self.report(&error);
                        self.answer(StatusCode::OK, &Reply::failure(Value::Null, error))
                    }
                    Value::Array(calls) => {
                        // One at a time: a batch costs the server no more at once than the
                        // calls would one by one.
                        let mut replies = Vec::with_capacity(calls.len());
                        for call in calls {
                            replies.extend(self.call(&ctx, call).await);
                        }
                        if replies.is_empty() {
                            no_content()
                        } else {
                            self.answer(StatusCode::OK, &replies)
                        }
                    }
                    call => match self.call(&ctx, call).await {
                        Some(reply) => self.answer(StatusCode::OK, &reply),
                        None => no_content(),
                    },
                }
            })
            .await
    }

    /// One call of a request or a batch; `None` for a notification, which is not answered.
    async fn call(&self, ctx: &Context, call: Value) -> Option<Reply> {
        let Value::Object(mut call) = call else {
            let error = ErrorObject::new(INVALID_REQUEST, "a call is a JSON object");
            return Some(Reply::failure(Value::Null, error));
        };
        let id = match call.remove("id") {
            None => None,
            Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => Some(id),
            Some(_) => {
                let error =
                    ErrorObject::new(INVALID_REQUEST, "id must be a number, a string or null");
                return Some(Reply::failure(Value::Null, error));
            }
        };
        let answer = |result: Result<Value, ErrorObject>| {
            let id = id.clone()?;
            Some(match result {
                Ok(value) => Reply::success(id, value),
                Err(error) => Reply::failure(id, error),
            })
        };
        match call.get("jsonrpc") {
            None => {}
            Some(Value::String(version)) if version == "2.0" || version.is_empty() => {}
            Some(_) => {
                let error = ErrorObject::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"");
                self.report(&error);
                return answer(Err(error));
            }
        }
        let params = match call.remove("params") {
            None | Some(Value::Null) => Value::Null,
            Some(params @ Value::Object(_)) => params,
            Some(Value::Array(_)) => {
                let error = ErrorObject::new(
                    INVALID_PARAMS,
                    "params must be an object: methods take their parameters by name",
                );
                self.report(&error);
                return answer(Err(error));
            }
            Some(_) => {
                let error = ErrorObject::new(INVALID_REQUEST, "params must be an object");
                self.report(&error);
                return answer(Err(error));
            }
        };
        let method = match call.get("method") {
            Some(Value::String(method)) => method.as_str(),
            _ => {
                let error = ErrorObject::new(INVALID_REQUEST, "method must be a string");
                self.report(&error);
                return answer(Err(error));
            }
        };
        let Some(handler) = self.methods.get(method) else {
            let error =
                ErrorObject::new(METHOD_NOT_FOUND, format!("method {method:?} was not found"));
            self.report(&error);
            return answer(Err(error));
        };
        // With tracing on, the call's span, a child of the caller's: one per call of a batch.
        let (ctx, mut traced) = Call::rpc(ctx.clone(), true, "jsonrpc", method);
        let calling = ctx.clone().sync_scope(|| handler(params));
        let deadline = ctx.deadline();
        let result = ctx
            .scope(async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, calling)
                        .await
                        .unwrap_or_else(|_| {
                            Err(ErrorObject::from_error(&Error::from(DeadlineExceeded)))
                        }),
                    None => calling.await,
                }
            })
            .await;
        match &result {
            Ok(_) => traced.succeeded(),
            Err(error) => {
                self.report(error);
                traced.jsonrpc_error(error.code);
                traced.failed(error.kind(), &error.message);
            }
        }
        answer(result)
    }

    fn report(&self, error: &ErrorObject) {
        if let Some(handler) = &self.error_handler {
            handler(error);
        }
    }

    fn answer<T: Serialize + ?Sized>(&self, status: StatusCode, body: &T) -> Response {
        let mut bytes = json::to_vec(body).unwrap_or_else(|_| {
            br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"cannot encode the answer"},"id":null}"#
                .to_vec()
        });
        bytes.push(b'\n');
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

fn no_content() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A response object, its members in Go kit's order.
#[derive(Debug, Serialize)]
struct Reply {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
    id: Value,
}

impl Reply {
    fn success(id: Value, result: Value) -> Self {
        Reply {
            jsonrpc: "2.0",
            result: Some(result),
            error: None,
            id,
        }
    }

    fn failure(id: Value, error: ErrorObject) -> Self {
        Reply {
            jsonrpc: "2.0",
            result: None,
            error: Some(error),
            id,
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut methods: Vec<&String> = self.methods.keys().collect();
        methods.sort();
        f.debug_struct("Server")
            .field("methods", &methods)
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

/// Decodes a call's params into `T` with Go's rules ([`json`](crate::json)): names match
/// case-insensitively, unknown ones are ignored, `null` (no params) is the zero request.
pub fn decode_params<T: DeserializeOwned>(params: Value) -> Result<T, BoxError> {
    let bytes = serde_json::to_vec(&params)?;
    Ok(json::from_slice(&bytes)?)
}

/// Encodes a response as the call's result.
pub fn encode_result<T: Serialize>(response: T) -> Result<Value, ErrorObject> {
    serde_json::to_value(response).map_err(|e| {
        ErrorObject::new(
            super::INTERNAL_ERROR,
            format!("cannot encode the result: {e}"),
        )
    })
}

/// Like [`encode_result`], but a response that [failed](Failer) is answered as that error:
/// an error object with its message and the code of its kind.
pub fn encode_result_or_error<T: Serialize + Failer>(response: T) -> Result<Value, ErrorObject> {
    match response.failed() {
        Some(error) => Err(ErrorObject::new(
            super::code_for(error.kind()),
            error.to_string(),
        )),
        None => encode_result(response),
    }
}
