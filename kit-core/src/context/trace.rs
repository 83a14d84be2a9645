//! The trace a request belongs to, as it crosses process boundaries: W3C Trace Context
//! (`traceparent`, `tracestate`), and Zipkin's B3 headers (single and multi) that Go kit's
//! tracing sends.
//!
//! A [`TraceParent`] in the [request context](super::Context) names the span the work in hand is
//! part of: the caller's span, as a server reads it from a request, then the server's own span
//! once tracing (the `trace` feature) starts one. A client sends the one it finds, so a trace
//! crosses a service even when that service does not trace itself.
//!
//! This module only reads and writes the header values; each transport's `propagation` module
//! says where they go.

use std::fmt;
use std::sync::Arc;

/// The W3C header naming the caller's trace and span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendors' trace state along with `traceparent`.
pub const TRACESTATE: &str = "tracestate";
/// Zipkin's single B3 header: `{trace}-{span}[-{sampled}[-{parent}]]`.
pub const B3: &str = "b3";
/// Zipkin's multi-header B3: the trace id.
pub const X_B3_TRACEID: &str = "x-b3-traceid";
/// Zipkin's multi-header B3: the caller's span id.
pub const X_B3_SPANID: &str = "x-b3-spanid";
/// Zipkin's multi-header B3: whether the caller samples the trace (`1` or `0`).
pub const X_B3_SAMPLED: &str = "x-b3-sampled";
/// Zipkin's multi-header B3: `1` for a debug trace, which is sampled.
pub const X_B3_FLAGS: &str = "x-b3-flags";

/// The longest `tracestate` kept (W3C allows 32 members, each at most 256 bytes; 512 bytes is
/// what implementations must pass on at least).
const MAX_TRACESTATE: usize = 512;

/// A span in a trace, as another process names it: a 16-byte trace id, an 8-byte span id, and
/// whether the trace is sampled (recorded); plus the W3C trace state that goes with it.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace's id: the same in every span of the trace, in every process.
    pub trace_id: [u8; 16],
    /// The span's id.
    pub span_id: [u8; 8],
    /// Whether the trace is being recorded; a callee follows its caller's decision.
    pub sampled: bool,
    /// The W3C `tracestate` that came with it, passed on as it is.
    pub state: Option<Arc<str>>,
}

impl TraceParent {
    /// Reads a `traceparent` value: `00-{32 hex}-{16 hex}-{2 hex}`. Ids of all zeros, the
    /// invalid version `ff`, and anything but lower-case hex are refused; a later version is read
    /// by its first four fields, as the specification asks.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let bytes = value.as_bytes();
        if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        let version = hex_array::<1>(&value[0..2])?;
        if version[0] == 0xff || (version[0] == 0 && bytes.len() != 55) {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = hex_array::<16>(&value[3..35])?;
        let span_id = hex_array::<8>(&value[36..52])?;
        let flags = hex_array::<1>(&value[53..55])?;
        Self::valid(trace_id, span_id, flags[0] & 1 == 1)
    }

    /// Reads a single `b3` header: `{trace id}-{span id}`, then optionally `-{sampling}` (`1`,
    /// `0` or `d` for debug) and `-{parent span id}`. A 16-digit trace id is widened to 32.
    /// `b3: 0` alone (do not sample, no ids) carries no span to continue and gives `None`.
    pub fn from_b3(value: &str) -> Option<Self> {
        let mut parts = value.split('-');
        let trace_id = b3_trace_id(parts.next()?)?;
        let span_id = hex_array::<8>(parts.next()?)?;
        let sampled = match parts.next() {
            None => true,
            Some("1" | "d") => true,
            Some("0") => false,
            Some(_) => return None,
        };
        if let Some(parent) = parts.next() {
            hex_array::<8>(parent)?;
        }
        if parts.next().is_some() {
            return None;
        }
        Self::valid(trace_id, span_id, sampled)
    }

    // ANCHOR: extract
    /// The caller's span from whatever carries it (HTTP headers, gRPC metadata), each field read
    /// through `field`: W3C's `traceparent` (with its `tracestate`), or else B3's single `b3`,
    /// or else B3's several `x-b3-*` (what Go kit's Zipkin tracing sends).
    pub fn extract<'a>(field: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        if let Some(parent) = field(TRACEPARENT).and_then(Self::from_traceparent) {
            return Some(match field(TRACESTATE) {
                Some(state) => parent.with_state(state),
                None => parent,
            });
        }
        if let Some(parent) = field(B3).and_then(Self::from_b3) {
            return Some(parent);
        }
        Self::from_b3_multi(
            field(X_B3_TRACEID)?,
            field(X_B3_SPANID)?,
            field(X_B3_SAMPLED),
            field(X_B3_FLAGS),
        )
    }
    // ANCHOR_END: extract

    /// Reads the multi-header B3 form: `X-B3-TraceId`, `X-B3-SpanId`, and optionally
    /// `X-B3-Sampled` (`1`, `0`, or `true`/`false` from old Zipkin libraries) and `X-B3-Flags`
    /// (`1`: debug, so sampled). Absent sampling means the caller left the decision to us:
    /// sampled.
    pub fn from_b3_multi(
        trace_id: &str,
        span_id: &str,
        sampled: Option<&str>,
        flags: Option<&str>,
    ) -> Option<Self> {
        let trace_id = b3_trace_id(trace_id)?;
        let span_id = hex_array::<8>(span_id)?;
        let sampled = match (flags, sampled) {
            (Some("1"), _) => true,
            (_, None) => true,
            (_, Some("1" | "true")) => true,
            (_, Some("0" | "false")) => false,
            (_, Some(_)) => return None,
        };
        Self::valid(trace_id, span_id, sampled)
    }

    fn valid(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<Self> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceParent {
            trace_id,
            span_id,
            sampled,
            state: None,
        })
    }

    /// This parent with the `tracestate` value that came with it, when it is one worth passing
    /// on: at most 512 bytes of visible ASCII and spaces.
    pub fn with_state(mut self, state: &str) -> Self {
        let state = state.trim();
        let acceptable = !state.is_empty()
            && state.len() <= MAX_TRACESTATE
            && state.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        self.state = acceptable.then(|| Arc::from(state));
        self
    }

    /// The `traceparent` value naming this span: version `00`.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{}",
            self.trace_id_hex(),
            self.span_id_hex(),
            if self.sampled { "01" } else { "00" }
        )
    }

    /// The single `b3` header value naming this span, for Zipkin-traced services (Go kit's):
    /// `{trace}-{span}-{1|0}`.
    pub fn to_b3(&self) -> String {
        format!(
            "{}-{}-{}",
            self.trace_id_hex(),
            self.span_id_hex(),
            if self.sampled { "1" } else { "0" }
        )
    }

    /// The trace id as 32 lower-case hex digits, as logs and tracing backends show it.
    pub fn trace_id_hex(&self) -> Hex<'_> {
        Hex(&self.trace_id)
    }

    /// The span id as 16 lower-case hex digits.
    pub fn span_id_hex(&self) -> Hex<'_> {
        Hex(&self.span_id)
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceParent")
            .field("trace_id", &self.trace_id_hex().to_string())
            .field("span_id", &self.span_id_hex().to_string())
            .field("sampled", &self.sampled)
            .field("state", &self.state)
            .finish()
    }
}

/// Bytes written as lower-case hex digits, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 64];
        let mut len = 0;
        for &byte in self.0.iter().take(32) {
            buf[len] = DIGITS[usize::from(byte >> 4)];
            buf[len + 1] = DIGITS[usize::from(byte & 0xf)];
            len += 2;
        }
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

/// A B3 trace id: 32 hex digits, or 16 (Zipkin's older 64-bit ids), widened with zeros.
fn b3_trace_id(text: &str) -> Option<[u8; 16]> {
    match text.len() {
        32 => hex_array::<16>(text),
        16 => {
            let low = hex_array::<8>(text)?;
            let mut id = [0u8; 16];
            id[8..].copy_from_slice(&low);
            Some(id)
        }
        _ => None,
    }
}

/// Exactly `2 * N` lower-case hex digits as `N` bytes. (B3 ids are lower-case too.)
fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const W3C: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips_and_refuses_what_the_specification_refuses() {
        let parent = TraceParent::from_traceparent(W3C).expect("the specification's example");
        assert_eq!(
            parent.trace_id_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id_hex().to_string(), "00f067aa0ba902b7");
        assert!(parent.sampled);
        assert_eq!(parent.to_traceparent(), W3C);
        let unsampled = TraceParent::from_traceparent(&W3C.replace("-01", "-00")).expect("valid");
        assert!(!unsampled.sampled);
        // A later version may add fields after a dash.
        assert!(TraceParent::from_traceparent(&format!("cc{}-more", &W3C[2..])).is_some());
        for bad in [
            "",
            &W3C[..54],
            &format!("{W3C}-more"),
            &format!("ff{}", &W3C[2..]),
            &W3C.to_uppercase(),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::from_traceparent(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn b3_single_and_multi_give_the_same_parent() {
        let single = TraceParent::from_b3(
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )
        .expect("Zipkin's example");
        let multi = TraceParent::from_b3_multi(
            "80f198ee56343ba864fe8b2a57d3eff7",
            "e457b5a2e4d86bd1",
            Some("1"),
            None,
        )
        .expect("the same in several headers");
        assert_eq!(single, multi);
        assert_eq!(
            TraceParent::from_b3(&single.to_b3()),
            Some(single.clone()),
            "written as read"
        );
        assert_eq!(
            single.to_traceparent(),
            "00-80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-01"
        );
        // 64-bit trace ids are widened; no sampling flag means the callee decides: sampled.
        let short = TraceParent::from_b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1").expect("valid");
        assert_eq!(
            short.trace_id_hex().to_string(),
            "000000000000000064fe8b2a57d3eff7"
        );
        assert!(short.sampled);
        let debug = TraceParent::from_b3_multi(
            "64fe8b2a57d3eff7",
            "e457b5a2e4d86bd1",
            Some("0"),
            Some("1"),
        )
        .expect("valid");
        assert!(debug.sampled, "debug overrides");
        let denied = TraceParent::from_b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1-0").expect("valid");
        assert!(!denied.sampled);
        for bad in [
            "0",
            "1",
            "64fe8b2a57d3eff7",
            "64fe8b2a57d3eff7-e457b5a2e4d86bd1-x",
        ] {
            assert!(TraceParent::from_b3(bad).is_none(), "{bad:?}");
        }
        assert!(TraceParent::from_b3_multi("64fe", "e457b5a2e4d86bd1", None, None).is_none());
    }

    #[test]
    fn tracestate_is_kept_when_it_is_safe_to_pass_on() {
        let parent = TraceParent::from_traceparent(W3C).expect("valid");
        let with = parent
            .clone()
            .with_state("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
        assert_eq!(
            with.state.as_deref(),
            Some("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        );
        assert!(parent.clone().with_state("a=é").state.is_none());
        assert!(parent.with_state(&"a".repeat(600)).state.is_none());
    }
}
