//! How the [request context](crate::context) crosses HTTP: the headers a server reads it from
//! and a client writes it to.
//!
//! | header | context | example |
//! |---|---|---|
//! | `X-Request-Timeout` | the deadline, as the time left, in Go's duration syntax | `X-Request-Timeout: 1.5s` |
//! | `X-Request-Id` | the [`RequestId`] | `X-Request-Id: 7f3a9c` |
//! | `traceparent`, `tracestate` | the [`TraceParent`]: the caller's span (W3C Trace Context) | `traceparent: 00-4bf9…4736-00f0…02b7-01` |
//! | `b3`, or `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags` | the same, in Zipkin's B3 (read when there is no `traceparent`; `b3` is sent too) | `b3: 80f1…eff7-e457…6bd1-1` |
//!
//! HTTP has no standard header for a deadline; gRPC sends `grpc-timeout` with the time left,
//! and so does this one, readable by a person with curl (`-H 'X-Request-Timeout: 2s'`). A time
//! left rather than a point in time, so that the two machines' clocks need not agree. A client
//! sends what is left when it sends, in whole milliseconds rounded down, so that the callee's
//! deadline never falls after the caller's.
//!
//! A client sends W3C's headers and B3's single header, which Go kit's Zipkin tracing reads; a
//! server reads either, so a trace passes through Go kit services and ours alike.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::context::trace::{self, TraceParent};
use crate::context::{Context, RequestId};
use crate::duration::{self, ParseDurationError};

/// The header that carries the time left until the request's deadline.
pub const REQUEST_TIMEOUT: HeaderName = HeaderName::from_static("x-request-timeout");

/// The header that carries the request's id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

// ANCHOR: extract
/// The context a request's headers describe, on top of `ctx`: its deadline made sooner by
/// `X-Request-Timeout`, and its `X-Request-Id`. A request id that is not a safe
/// [`RequestId`] is ignored; a timeout that does not parse is an error, for the caller to hear
/// about rather than have its deadline silently dropped.
pub fn extract(ctx: Context, headers: &HeaderMap) -> Result<Context, InvalidTimeout> {
    // One pass over the names: cheaper than two hashed lookups of names most requests lack.
    let (mut timeout, mut id, mut tracing) = (None, None, false);
    for (name, value) in headers {
        if *name == REQUEST_TIMEOUT {
            timeout.get_or_insert(value);
        } else if *name == REQUEST_ID {
            id.get_or_insert(value);
        } else if is_trace_header(name) {
            tracing = true;
        }
    }
    let mut ctx = ctx;
    if let Some(value) = timeout {
        let text = value.to_str().map_err(|_| InvalidTimeout::NotText)?;
        let timeout = duration::parse(text.trim()).map_err(InvalidTimeout::Duration)?;
        ctx = ctx.with_timeout(timeout);
    }
    if let Some(id) = id
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::new)
    {
        ctx = ctx.with_value(id);
    }
    if tracing && let Some(parent) = trace_parent(headers) {
        ctx = ctx.with_value(parent);
    }
    Ok(ctx)
}
// ANCHOR_END: extract

/// Whether `name` is one of the headers that carry a caller's span.
fn is_trace_header(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == trace::TRACEPARENT || name == trace::B3 || name.starts_with("x-b3-")
}

/// The caller's span from W3C's headers, or else from B3's single header, or else from B3's
/// several.
pub fn trace_parent(headers: &HeaderMap) -> Option<TraceParent> {
    TraceParent::extract(|key| headers.get(key).and_then(|value| value.to_str().ok()))
}

/// Writes `ctx`'s deadline (the time left) and request id into an outgoing request's headers.
/// Returns `false`, writing nothing, when the deadline has already passed: the call should not
/// be made.
pub fn inject(ctx: &Context, headers: &mut HeaderMap) -> bool {
    if let Some(left) = ctx.remaining() {
        let millis = left.as_millis();
        if millis == 0 {
            return false;
        }
        // Written on every call made within a deadline: the digits without `core::fmt`, into
        // the `String` the header value then keeps rather than copies.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(millis);
        let mut text = String::with_capacity(digits.len() + 2);
        text.push_str(digits);
        text.push_str("ms");
        if let Ok(value) = HeaderValue::try_from(text) {
            headers.insert(REQUEST_TIMEOUT, value);
        }
    }
    if let Some(id) = ctx.get::<RequestId>()
        && let Ok(value) = HeaderValue::from_str(id.as_str())
    {
        headers.insert(REQUEST_ID, value);
    }
    if let Some(parent) = ctx.get::<TraceParent>() {
        if let Ok(value) = HeaderValue::try_from(parent.to_traceparent()) {
            headers.insert(trace::TRACEPARENT, value);
        }
        if let Ok(value) = HeaderValue::try_from(parent.to_b3()) {
            headers.insert(trace::B3, value);
        }
        if let Some(state) = &parent.state
            && let Ok(value) = HeaderValue::from_str(state)
        {
            headers.insert(trace::TRACESTATE, value);
        }
    }
    true
}

/// An `X-Request-Timeout` header that does not say how long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidTimeout {
    /// The value is not text.
    #[error("invalid X-Request-Timeout header: not text")]
    NotText,
    /// The value is not a duration.
    #[error("invalid X-Request-Timeout header: {0}")]
    Duration(#[source] ParseDurationError),
}

impl crate::error::Classify for InvalidTimeout {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidArgument
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[tokio::test(start_paused = true)]
    async fn a_context_survives_the_round_trip() {
        let sent = Context::new()
            .with_timeout(Duration::from_millis(1500))
            .with_value(RequestId::new("abc-1").expect("an id"));
        let mut map = HeaderMap::new();
        assert!(inject(&sent, &mut map));
        assert_eq!(map[&REQUEST_TIMEOUT], "1500ms");
        assert_eq!(map[&REQUEST_ID], "abc-1");
        let received = extract(Context::new(), &map).expect("valid headers");
        assert_eq!(received.remaining(), Some(Duration::from_millis(1500)));
        assert_eq!(
            received.get::<RequestId>().map(RequestId::as_str),
            Some("abc-1")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_left_is_rounded_down_and_an_expired_call_is_not_sent() {
        let ctx = Context::new().with_timeout(Duration::from_micros(2999));
        let mut map = HeaderMap::new();
        assert!(inject(&ctx, &mut map));
        assert_eq!(map[&REQUEST_TIMEOUT], "2ms");
        tokio::time::advance(Duration::from_micros(2500)).await;
        let mut map = HeaderMap::new();
        assert!(!inject(&ctx, &mut map), "less than a millisecond left");
        assert!(map.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_header_can_only_make_the_deadline_sooner() {
        let ctx = Context::new().with_timeout(Duration::from_secs(1));
        let later = extract(ctx.clone(), &headers(&[(&REQUEST_TIMEOUT, "1m")])).expect("valid");
        assert_eq!(later.remaining(), Some(Duration::from_secs(1)));
        let sooner = extract(ctx, &headers(&[(&REQUEST_TIMEOUT, "250ms")])).expect("valid");
        assert_eq!(sooner.remaining(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn the_callers_span_is_read_from_w3c_or_b3_and_sent_as_w3c() {
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut map = HeaderMap::new();
        map.insert(trace::TRACEPARENT, HeaderValue::from_static(w3c));
        map.insert(trace::TRACESTATE, HeaderValue::from_static("rojo=1"));
        // W3C wins over B3 when a caller sends both.
        map.insert(
            trace::B3,
            HeaderValue::from_static("64fe8b2a57d3eff7-e457b5a2e4d86bd1"),
        );
        let ctx = extract(Context::new(), &map).expect("valid");
        let mut sent = HeaderMap::new();
        assert!(inject(&ctx, &mut sent));
        assert_eq!(sent[trace::TRACEPARENT], w3c);
        assert_eq!(sent[trace::TRACESTATE], "rojo=1");
        assert_eq!(
            sent[trace::B3],
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"
        );

        let mut multi = HeaderMap::new();
        for (name, value) in [
            ("X-B3-TraceId", "463ac35c9f6413ad48485a3953bb6124"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-Sampled", "1"),
        ] {
            multi.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                HeaderValue::from_static(value),
            );
        }
        let ctx = extract(Context::new(), &multi).expect("valid");
        let mut sent = HeaderMap::new();
        assert!(inject(&ctx, &mut sent));
        assert_eq!(
            sent[trace::TRACEPARENT],
            "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01"
        );
        // A malformed header is no parent, and no error: the request goes on untraced.
        let mut bad = HeaderMap::new();
        bad.insert(trace::TRACEPARENT, HeaderValue::from_static("00-zz"));
        let ctx = extract(Context::new(), &bad).expect("still valid");
        assert!(ctx.get::<TraceParent>().is_none());
    }

    #[test]
    fn bad_timeouts_are_refused_and_bad_ids_ignored() {
        let err = extract(Context::new(), &headers(&[(&REQUEST_TIMEOUT, "soon")]))
            .expect_err("not a duration");
        assert_eq!(
            err.to_string(),
            "invalid X-Request-Timeout header: invalid duration \"soon\": expected a number before each unit"
        );
        let ctx = extract(Context::new(), &headers(&[(&REQUEST_ID, "has space")]))
            .expect("an id is optional");
        assert!(ctx.get::<RequestId>().is_none());
    }
}
