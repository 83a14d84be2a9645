//! The span of one call a transport serves or makes: started with the call's context, given
//! the outcome, ended when dropped.

use std::borrow::Cow;
use std::fmt;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _,
};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::trace::Span;

use crate::context::{Context, TraceParent};
use crate::error::ErrorKind;

/// A call's span, or nothing when tracing is off. Dropped without an outcome (the call was
/// abandoned), it ends with `error.type=canceled`.
pub(crate) struct Call {
    /// Boxed, so that the futures that hold a `Call` stay small when tracing is off.
    span: Option<Box<Span>>,
    /// The outcome is known.
    ended: bool,
    /// `error.type` is set.
    errored: bool,
    /// A server's span: failures that are the caller's leave its status alone.
    server: bool,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("traced", &self.span.is_some())
            .finish()
    }
}

impl Call {
    /// No span: what every call gets when tracing is off.
    pub(crate) const fn none() -> Self {
        Call {
            span: None,
            ended: false,
            errored: false,
            server: false,
        }
    }

    /// Starts a span as the child of the span `ctx` names, if any, and returns `ctx` naming the
    /// new span instead. `attributes` is only called when tracing is on.
    fn start(
        ctx: Context,
        kind: SpanKind,
        name: impl FnOnce() -> Cow<'static, str>,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> (Context, Call) {
        let Some(tracer) = super::tracer() else {
            return (ctx, Call::none());
        };
        let parent = ctx.get::<TraceParent>();
        let parent_cx = match parent {
            Some(parent) => {
                opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                    TraceId::from_bytes(parent.trace_id),
                    SpanId::from_bytes(parent.span_id),
                    if parent.sampled {
                        TraceFlags::SAMPLED
                    } else {
                        TraceFlags::default()
                    },
                    true,
                    parent
                        .state
                        .as_deref()
                        .and_then(|state| state.parse::<TraceState>().ok())
                        .unwrap_or_default(),
                ))
            }
            None => opentelemetry::Context::new(),
        };
        let span = tracer
            .span_builder(name())
            .with_kind(kind.clone())
            .with_attributes(attributes())
            .start_with_context(tracer, &parent_cx);
        let started = span.span_context();
        let current = TraceParent {
            trace_id: started.trace_id().to_bytes(),
            span_id: started.span_id().to_bytes(),
            sampled: started.is_sampled(),
            state: parent.and_then(|parent| parent.state.clone()),
        };
        (
            ctx.with_value(current),
            Call {
                span: Some(Box::new(span)),
                ended: false,
                errored: false,
                server: kind == SpanKind::Server,
            },
        )
    }

    /// The span of a request an HTTP server answers, named `name` or else by the method.
    #[cfg_attr(not(feature = "http-server"), allow(dead_code))]
    pub(crate) fn http_server(
        ctx: Context,
        method: &http::Method,
        path: &str,
        name: Option<&'static str>,
    ) -> (Context, Call) {
        Call::start(
            ctx,
            SpanKind::Server,
            || name.map_or_else(|| Cow::Owned(method.as_str().to_owned()), Cow::Borrowed),
            || {
                vec![
                    KeyValue::new("http.request.method", method.as_str().to_owned()),
                    KeyValue::new("url.path", path.to_owned()),
                ]
            },
        )
    }

    /// The span of a request an HTTP client sends, named `name` or else by the method.
    #[cfg_attr(not(feature = "http-client"), allow(dead_code))]
    pub(crate) fn http_client(
        ctx: Context,
        method: &http::Method,
        url: &str,
        host: Option<&str>,
        port: Option<u16>,
        name: Option<&'static str>,
    ) -> (Context, Call) {
        Call::start(
            ctx,
            SpanKind::Client,
            || name.map_or_else(|| Cow::Owned(method.as_str().to_owned()), Cow::Borrowed),
            || {
                let mut attributes = vec![
                    KeyValue::new("http.request.method", method.as_str().to_owned()),
                    KeyValue::new("url.full", url.to_owned()),
                ];
                if let Some(host) = host {
                    attributes.push(KeyValue::new("server.address", host.to_owned()));
                }
                if let Some(port) = port {
                    attributes.push(KeyValue::new("server.port", i64::from(port)));
                }
                attributes
            },
        )
    }

    /// The span of an RPC: `system` is `grpc` or `jsonrpc`, `path` the gRPC method's path
    /// (`/pb.Add/Sum`) or the JSON-RPC method.
    pub(crate) fn rpc(
        ctx: Context,
        server: bool,
        system: &'static str,
        path: &str,
    ) -> (Context, Call) {
        let path = path.trim_start_matches('/');
        let (service, method) = match path.rsplit_once('/') {
            Some((service, method)) => (Some(service), method),
            None => (None, path),
        };
        Call::start(
            ctx,
            if server {
                SpanKind::Server
            } else {
                SpanKind::Client
            },
            || Cow::Owned(path.to_owned()),
            || {
                let mut attributes = vec![
                    KeyValue::new("rpc.system", system),
                    KeyValue::new("rpc.method", method.to_owned()),
                ];
                if let Some(service) = service {
                    attributes.push(KeyValue::new("rpc.service", service.to_owned()));
                }
                attributes
            },
        )
    }

    /// The span of an endpoint's own work, inside its transport's (see
    /// [`TraceLayer`](super::TraceLayer)).
    pub(crate) fn internal(ctx: Context, name: &'static str) -> (Context, Call) {
        Call::start(ctx, SpanKind::Internal, || Cow::Borrowed(name), Vec::new)
    }

    /// Whether there is a span to describe.
    pub(crate) fn is_traced(&self) -> bool {
        self.span.is_some()
    }

    fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// The call failed with an error of `kind`: `error.type`, and status error with `message`,
    /// unless this is a server's span and the failure is the caller's (a bad request, a missing
    /// resource, a refusal), which OpenTelemetry's conventions leave unset: those are the
    /// server doing its job.
    pub(crate) fn failed(&mut self, kind: ErrorKind, message: &dyn fmt::Display) {
        self.ended = true;
        if std::mem::replace(&mut self.errored, true) {
            return;
        }
        let servers_fault = matches!(
            kind,
            ErrorKind::Unknown
                | ErrorKind::DeadlineExceeded
                | ErrorKind::Unimplemented
                | ErrorKind::Internal
                | ErrorKind::Unavailable
                | ErrorKind::DataLoss
        );
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new("error.type", kind.as_str()));
            if !self.server || servers_fault {
                span.set_status(Status::error(message.to_string()));
            }
        }
    }

    /// The HTTP status of the answer. A server's span fails on a 5xx, a client's on any 4xx or
    /// 5xx, as the semantic conventions say; the status is the `error.type` unless a failure
    /// said more.
    #[cfg_attr(
        not(any(feature = "http-server", feature = "http-client")),
        allow(dead_code)
    )]
    pub(crate) fn http_status(&mut self, status: u16, server: bool) {
        let Some(span) = &mut self.span else {
            return;
        };
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        let failed = status >= 500 || (!server && status >= 400);
        if failed && !self.errored {
            self.errored = true;
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(""));
        }
        self.ended = true;
    }

    /// The gRPC status code of the answer (0 is OK). A client's span fails on any other code; a
    /// server's on those that say the server failed, as the semantic conventions say. The
    /// failure's kind, from [`failed`](Self::failed), is its `error.type`.
    pub(crate) fn grpc_status(&mut self, code: i32, server: bool) {
        self.set("rpc.grpc.status_code", i64::from(code));
        // Unknown, DeadlineExceeded, Unimplemented, Internal, Unavailable, DataLoss.
        let server_failure = matches!(code, 2 | 4 | 12 | 13 | 14 | 15);
        let failed = if server { server_failure } else { code != 0 };
        if failed
            && !self.errored
            && let Some(span) = &mut self.span
        {
            span.set_status(Status::error(""));
        }
        self.ended = true;
    }

    /// The JSON-RPC error code the answer carries.
    #[cfg_attr(
        not(all(
            feature = "jsonrpc",
            any(feature = "http-server", feature = "http-client")
        )),
        allow(dead_code)
    )]
    pub(crate) fn jsonrpc_error(&mut self, code: i64) {
        self.set("rpc.jsonrpc.error_code", code);
    }

    /// The call finished without a failure.
    pub(crate) fn succeeded(&mut self) {
        self.ended = true;
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(span) = &mut self.span {
            if !self.ended && !self.errored {
                span.set_attribute(KeyValue::new("error.type", ErrorKind::Canceled.as_str()));
                span.set_status(Status::error("canceled"));
            }
            span.end();
        }
    }
}
