//! How the [request context](crate::context) crosses gRPC: the metadata a server reads it from
//! and a client writes it to.
//!
//! | metadata | context | example |
//! |---|---|---|
//! | `grpc-timeout` | the deadline, as the time left, in gRPC's own syntax | `grpc-timeout: 1500m` |
//! | `x-request-id` | the [`RequestId`] | `x-request-id: 7f3a9c` |
//! | `traceparent`, `tracestate`, `b3` (and B3's `x-b3-*`, read only) | the caller's span, [`TraceParent`] | `traceparent: 00-4bf9…4736-00f0…02b7-01` |
//!
//! `grpc-timeout` is the standard one, which every gRPC client sends for a call with a deadline
//! (Go's `context.WithTimeout` around a call does): at most 8 digits and a unit, `H`, `M`, `S`,
//! `m` (milliseconds), `u` or `n`. A client sends what is left when it sends, rounded down.

use std::time::Duration;

use tonic::metadata::{MetadataMap, MetadataValue};

use crate::context::trace::{self, TraceParent};
use crate::context::{Context, RequestId};
use crate::error::{Classify, ErrorKind};

/// The metadata key that carries the time left until the call's deadline.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// The metadata key that carries the request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// The context a call's metadata describes, on top of `ctx`: its deadline made sooner by
/// `grpc-timeout`, and its `x-request-id`. An id that is not a safe [`RequestId`] is ignored; a
/// timeout that does not parse is an error.
pub fn extract(ctx: Context, metadata: &MetadataMap) -> Result<Context, InvalidTimeout> {
    let mut ctx = ctx;
    if let Some(value) = metadata.get(GRPC_TIMEOUT) {
        let text = value.to_str().map_err(|_| InvalidTimeout(String::new()))?;
        ctx = ctx.with_timeout(parse_timeout(text)?);
    }
    if let Some(id) = metadata
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .and_then(RequestId::new)
    {
        ctx = ctx.with_value(id);
    }
    if let Some(parent) = trace_parent(metadata) {
        ctx = ctx.with_value(parent);
    }
    Ok(ctx)
}

/// The caller's span from W3C's metadata, or else from B3's single key, or else from B3's
/// several (what Go kit's Zipkin gRPC tracing sends).
pub fn trace_parent(metadata: &MetadataMap) -> Option<TraceParent> {
    TraceParent::extract(|key| metadata.get(key).and_then(|value| value.to_str().ok()))
}

/// Writes `ctx`'s deadline (the time left) and request id into a call's metadata. Returns
/// `false`, writing nothing, when the deadline has already passed: the call should not be made.
pub fn inject(ctx: &Context, metadata: &mut MetadataMap) -> bool {
    if let Some(left) = ctx.remaining() {
        let Some(timeout) = format_timeout(left) else {
            return false;
        };
        if let Ok(value) = MetadataValue::try_from(timeout.as_str()) {
            metadata.insert(GRPC_TIMEOUT, value);
        }
    }
    if let Some(id) = ctx.get::<RequestId>()
        && let Ok(value) = MetadataValue::try_from(id.as_str())
    {
        metadata.insert(REQUEST_ID, value);
    }
    if let Some(parent) = ctx.get::<TraceParent>() {
        if let Ok(value) = MetadataValue::try_from(parent.to_traceparent()) {
            metadata.insert(trace::TRACEPARENT, value);
        }
        if let Ok(value) = MetadataValue::try_from(parent.to_b3()) {
            metadata.insert(trace::B3, value);
        }
        if let Some(state) = &parent.state
            && let Ok(value) = MetadataValue::try_from(&**state)
        {
            metadata.insert(trace::TRACESTATE, value);
        }
    }
    true
}

/// `left` in `grpc-timeout` syntax, in the finest unit that fits in 8 digits, rounded down;
/// `None` when nothing is left.
pub fn format_timeout(left: Duration) -> Option<String> {
    const MAX: u128 = 99_999_999;
    let nanos = left.as_nanos();
    if nanos == 0 {
        return None;
    }
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    units
        .iter()
        .find(|(per, _)| nanos / per <= MAX)
        .map(|(per, unit)| format!("{}{unit}", nanos / per))
        .or_else(|| Some(format!("{MAX}H")))
}

/// Reads a `grpc-timeout` value: 1 to 8 digits and a unit.
pub fn parse_timeout(text: &str) -> Result<Duration, InvalidTimeout> {
    let invalid = || InvalidTimeout(text.to_owned());
    let unit = text.chars().last().ok_or_else(invalid)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let value: u64 = digits.parse().map_err(|_| invalid())?;
    Ok(match unit {
        'H' => Duration::from_secs(value * 3600),
        'M' => Duration::from_secs(value * 60),
        'S' => Duration::from_secs(value),
        'm' => Duration::from_millis(value),
        'u' => Duration::from_micros(value),
        'n' => Duration::from_nanos(value),
        _ => return Err(invalid()),
    })
}

/// A `grpc-timeout` that does not say how long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid grpc-timeout {0:?}: expected 1 to 8 digits and a unit (H, M, S, m, u, n)")]
pub struct InvalidTimeout(String);

impl Classify for InvalidTimeout {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_and_write_grpc_syntax() {
        assert_eq!(parse_timeout("1500m"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("2S"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("1H"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_timeout("7n"), Ok(Duration::from_nanos(7)));
        for bad in ["", "m", "123456789m", "1x", "-1S", "1.5S", "S1"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
        assert_eq!(format_timeout(Duration::ZERO), None);
        assert_eq!(
            format_timeout(Duration::from_millis(1500)).as_deref(),
            Some("1500000u")
        );
        assert_eq!(
            format_timeout(Duration::from_nanos(99)).as_deref(),
            Some("99n")
        );
        assert_eq!(
            format_timeout(Duration::from_secs(10_000)).as_deref(),
            Some("10000000m")
        );
        assert_eq!(
            format_timeout(Duration::from_secs(86_400 * 365 * 100)).as_deref(),
            Some("52560000M")
        );
        // What is written reads back as no later than it was.
        for millis in [1, 999, 1000, 123_456, 99_999_999] {
            let left = Duration::from_millis(millis);
            let text = format_timeout(left).expect("time left");
            assert!(parse_timeout(&text).expect("valid") <= left, "{text}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_context_survives_the_round_trip() {
        let sent = Context::new()
            .with_timeout(Duration::from_millis(250))
            .with_value(RequestId::new("req-9").expect("an id"));
        let mut metadata = MetadataMap::new();
        assert!(inject(&sent, &mut metadata));
        let received = extract(Context::new(), &metadata).expect("valid");
        assert_eq!(received.remaining(), Some(Duration::from_millis(250)));
        assert_eq!(
            received.get::<RequestId>().map(RequestId::as_str),
            Some("req-9")
        );
        let mut b3 = MetadataMap::new();
        b3.insert(
            trace::B3,
            MetadataValue::from_static("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
        );
        let continued = extract(Context::new(), &b3).expect("valid");
        let mut sent = MetadataMap::new();
        assert!(inject(&continued, &mut sent));
        assert_eq!(
            sent.get(trace::TRACEPARENT).and_then(|v| v.to_str().ok()),
            Some("00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01")
        );
        let mut bad = MetadataMap::new();
        bad.insert(GRPC_TIMEOUT, MetadataValue::from_static("soon"));
        assert!(extract(Context::new(), &bad).is_err());
    }
}
