//! Logging: Go kit's `log` package on [`tracing`].
//!
//! Code that logs emits `tracing` events with structured fields; a [`Logger`] decides where they
//! go and how they look. As in Go kit, `main` builds the logger and hands it to whatever logs
//! (a middleware holds its `Logger` as Go kit's `loggingMiddleware` holds its `log.Logger`), so
//! a test can give each service its own logger and read exactly its lines.
//!
//! A logger is one `tracing` subscriber: a registry of spans, the filter, and the layer that
//! writes lines, plus any [other layers](LoggerBuilder::with_layer) the program adds (such as
//! one that exports spans to OpenTelemetry). Every layer sees the same spans and events, so a
//! line written inside a span carries that span's fields: the request id and deadline a server
//! puts on every request that has them (`request_id=42 timeout=1.99s method=uppercase ...`).
//! A line written inside a traced call (see `kit_core::trace`) carries the call's `trace_id`
//! and `span_id` after them, read from the request's [context](crate::context), so that a line
//! leads to its trace.
//! Spans belong to the subscriber that was the default where they were created: in a program
//! that [installs](Logger::install) its logger, that is this one for every span; a test that
//! gives a service a logger of its own makes it the thread's default
//! ([`Logger::set_default`]) for the request spans to reach its lines. A field named both by a
//! span and by the event is written twice, the span's first.
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `log.NewLogfmtLogger(os.Stderr)` | [`Logger::builder`]`(`[`Format::Logfmt`]`).to_stderr()` |
//! | `log.NewJSONLogger(w)` | [`Format::Json`] |
//! | `log.With(logger, "listen", addr)` | [`LoggerBuilder::context`] |
//! | `log.DefaultCaller` | [`LoggerBuilder::caller`] |
//! | `logger.Log("k", v, ...)` | `logger.in_scope(\|\| tracing::info!(k = v, ...))` |
//! | `nil` in a log line | [`or_null`] |
//! | `time.Duration` values | [`GoDuration`](crate::duration::GoDuration) |
//! | `log.NewNopLogger()` | [`Logger::discard`] |
//! | addsvc's endpoint `LoggingMiddleware` | [`LoggingLayer`] |
//!
//! Lines are written by a background thread, so a slow stderr never holds up a request: the
//! thread that logs appends its line to a buffer, and the writer, woken by the first line after
//! a quiet spell, lets more gather for [`LINGER`] and writes them with one system call. The
//! buffer holds [`QUEUE_LINES`] lines; when it is full, further lines are dropped rather than
//! blocking (counted by [`LogGuard::dropped_lines`]). Dropping the [`LogGuard`] writes the rest
//! and reports on stderr how many lines were dropped.
//!
//! `RUST_LOG` filters as usual (`RUST_LOG=warn` keeps warnings and errors only); the default
//! shows `info` and above.
//!
//! ```
//! use kit_core::duration::GoDuration;
//! use kit_core::log::{Format, Logger, or_null};
//! use std::time::Duration;
//!
//! let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().unwrap();
//! let err: Option<&str> = None;
//! logger.in_scope(|| {
//!     tracing::info!(
//!         method = "uppercase",
//!         input = "hello, world",
//!         err = %or_null(err),
//!         took = %GoDuration(Duration::from_nanos(2455)),
//!     )
//! });
//! assert_eq!(
//!     lines.contents(),
//!     "method=uppercase input=\"hello, world\" err=null took=2.455µs\n"
//! );
//! ```

mod background;
mod format;
mod layer;

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::Dispatch;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use background::LINGER;
pub use format::Format;
pub use layer::{Logging, LoggingFuture, LoggingLayer};

/// How many lines the background writer buffers before it starts dropping them.
///
/// The buffer grows with the lines it holds, and is given back beyond 64 KiB once written;
/// 8192 lines absorb a stall of several tenths of a second at tens of thousands of requests a
/// second.
pub const QUEUE_LINES: usize = 8192;

/// Where log events go, and how they are written.
///
/// Cheap to clone; every clone writes to the same place.
#[derive(Clone)]
pub struct Logger {
    dispatch: Dispatch,
}

impl Logger {
    /// Starts building a logger that writes lines in `format`.
    pub fn builder(format: Format) -> LoggerBuilder {
        LoggerBuilder {
            format,
            context: Vec::new(),
            caller: false,
            filter: None,
            queue_lines: QUEUE_LINES,
            layers: Vec::new(),
        }
    }

    /// A logger that writes nothing.
    pub fn discard() -> Self {
        Logger {
            dispatch: Dispatch::none(),
        }
    }

    /// The logger `tracing` events go to outside [`in_scope`](Self::in_scope): the one
    /// [`install`](Self::install)ed, if any.
    pub fn current() -> Self {
        Logger {
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
        }
    }

    /// Runs `f` with this logger receiving its `tracing` events.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        tracing::dispatcher::with_default(&self.dispatch, f)
    }

    /// Makes this logger receive the events and spans of this thread, until the guard is
    /// dropped: what [`install`](Self::install) does for a process, for one test.
    pub fn set_default(&self) -> tracing::dispatcher::DefaultGuard {
        tracing::dispatcher::set_default(&self.dispatch)
    }

    /// Makes this logger receive every event emitted outside [`in_scope`](Self::in_scope), from
    /// any thread, libraries' included. Works once per process.
    pub fn install(&self) -> Result<(), LogError> {
        tracing::dispatcher::set_global_default(self.dispatch.clone())
            .map_err(|_| LogError::AlreadyInstalled)
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger").finish_non_exhaustive()
    }
}

/// A layer of the logger's subscriber other than the line writer.
type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// Options for a [`Logger`], from [`Logger::builder`].
pub struct LoggerBuilder {
    format: Format,
    context: Vec<(String, String)>,
    caller: bool,
    filter: Option<String>,
    queue_lines: usize,
    layers: Vec<ExtraLayer>,
}

impl fmt::Debug for LoggerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggerBuilder")
            .field("format", &self.format)
            .field("context", &self.context)
            .field("caller", &self.caller)
            .field("filter", &self.filter)
            .field("queue_lines", &self.queue_lines)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl LoggerBuilder {
    /// Starts every line with `key=value`, as Go kit's `log.With(logger, key, value)`.
    pub fn context(mut self, key: impl Into<String>, value: impl fmt::Display) -> Self {
        self.context.push((key.into(), value.to_string()));
        self
    }

    /// Adds `caller=file.rs:LINE`, where the event was emitted, after the context (Go kit's
    /// `log.DefaultCaller`).
    pub fn caller(mut self, enabled: bool) -> Self {
        self.caller = enabled;
        self
    }

    /// Adds `layer` to the logger's subscriber, beside the layer that writes lines: it sees
    /// every span and event, whatever the filter keeps from the lines (the filter applies to the
    /// lines alone). This is where a layer that exports traces goes.
    pub fn with_layer(mut self, layer: impl Layer<Registry> + Send + Sync + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Filters events with these directives (as `RUST_LOG` takes them, e.g. `warn` or
    /// `info,hyper=warn`) instead of reading `RUST_LOG`.
    pub fn filter(mut self, directives: impl Into<String>) -> Self {
        self.filter = Some(directives.into());
        self
    }

    /// A logger that writes to stderr from a background thread (see the [module docs](self)).
    /// Keep the guard until the program ends: dropping it flushes the queued lines.
    pub fn to_stderr(self) -> Result<(Logger, LogGuard), LogError> {
        self.to_background(io::stderr())
    }

    /// Sets how many lines the background writer of [`to_stderr`](Self::to_stderr) and
    /// [`to_background`](Self::to_background) queues before it drops them ([`QUEUE_LINES`]
    /// unless set).
    pub fn queue_lines(mut self, lines: usize) -> Self {
        self.queue_lines = lines;
        self
    }

    /// A logger that writes to `writer` from a background thread, as
    /// [`to_stderr`](Self::to_stderr) does to stderr.
    pub fn to_background<W>(self, writer: W) -> Result<(Logger, LogGuard), LogError>
    where
        W: io::Write + Send + 'static,
    {
        let (lines, writer) = background::start(writer, self.queue_lines)
            .map_err(|e| LogError::Writer(e.to_string()))?;
        let logger = self.to_writer(lines)?;
        Ok((
            logger,
            LogGuard {
                writer: Some(writer),
            },
        ))
    }

    /// A logger that writes each line to `writer` on the thread that logs.
    pub fn to_writer<W>(self, writer: W) -> Result<Logger, LogError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let filter = match &self.filter {
            Some(directives) => EnvFilter::builder()
                .parse(directives)
                .map_err(|e| LogError::Filter(e.to_string()))?,
            None => EnvFilter::builder()
                .with_default_directive(LevelFilter::INFO.into())
                .from_env()
                .map_err(|e| LogError::Filter(format!("RUST_LOG: {e}")))?,
        };
        let lines = tracing_subscriber::fmt::layer()
            .fmt_fields(format::LineFields {
                format: self.format,
            })
            .event_format(format::LineFormat {
                format: self.format,
                context: format::LineFormat::context(self.format, &self.context),
                caller: self.caller,
            })
            .with_writer(writer)
            .with_filter(filter);
        // No extra layer must mean no layer at all: an empty list of layers is interested in
        // nothing, and would silence the lines too.
        let extra = (!self.layers.is_empty()).then_some(self.layers);
        let subscriber = tracing_subscriber::registry().with(extra).with(lines);
        Ok(Logger {
            dispatch: Dispatch::new(subscriber),
        })
    }

    /// A logger that keeps its lines in memory, for tests and examples.
    pub fn to_buffer(self) -> Result<(Logger, Buffer), LogError> {
        let buffer = Buffer::default();
        Ok((self.to_writer(buffer.clone())?, buffer))
    }
}

/// Keeps the background writer of [`LoggerBuilder::to_stderr`] running; dropping it flushes
/// the lines still queued, then says on stderr how many lines were dropped, if any were.
pub struct LogGuard {
    writer: Option<background::Writer>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        writer.finish(background::FLUSH_PATIENCE);
        let dropped = writer.dropped_lines();
        if dropped > 0 {
            eprintln!("{dropped} log lines were dropped because the log output could not keep up");
        }
    }
}

impl LogGuard {
    /// How many lines were dropped because the queue was full (a stderr slower than the logging).
    pub fn dropped_lines(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, background::Writer::dropped_lines)
    }
}

impl fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogGuard")
            .field("dropped_lines", &self.dropped_lines())
            .finish()
    }
}

/// Lines kept in memory by [`LoggerBuilder::to_buffer`].
#[derive(Debug, Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far.
    pub fn contents(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        self.contents().lines().map(str::to_owned).collect()
    }
}

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

/// Why a logger could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The filter directives (from `RUST_LOG` or [`LoggerBuilder::filter`]) do not parse.
    #[error("invalid log filter: {0}")]
    Filter(String),
    /// Another logger was installed for the process first.
    #[error("a global logger is already installed")]
    AlreadyInstalled,
    /// The background writer's thread could not be started.
    #[error("cannot start the log writer thread: {0}")]
    Writer(String),
}

/// A value for a log field that is written as `null` when absent, as Go kit writes a `nil`
/// error: `err = %or_null(result.err())`.
pub fn or_null<T: fmt::Display>(value: Option<T>) -> OrNull<T> {
    OrNull(value)
}

/// See [`or_null`].
#[derive(Debug, Clone, Copy)]
pub struct OrNull<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrNull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::duration::GoDuration;

    #[test]
    fn lines_in_both_formats() {
        for (format, expected) in [
            (
                Format::Logfmt,
                "method=count input=\"hello, world\" n=12 took=743ns\n",
            ),
            (
                Format::Json,
                "{\"method\":\"count\",\"input\":\"hello, world\",\"n\":12,\"took\":\"743ns\"}\n",
            ),
        ] {
            let (logger, lines) = Logger::builder(format).to_buffer().expect("logger");
            logger.in_scope(|| {
                tracing::info!(
                    method = "count",
                    input = "hello, world",
                    n = 12usize,
                    took = %GoDuration(std::time::Duration::from_nanos(743)),
                );
            });
            assert_eq!(lines.contents(), expected);
        }
    }

    /// Values rendered through `%` or `?` are written where they are rendered, and moved aside
    /// only when they need quotes or escapes: every path gives what a string value would.
    #[test]
    fn rendered_values_are_quoted_and_escaped_as_strings_are() {
        #[derive(Debug)]
        struct Failed(&'static str);
        impl fmt::Display for Failed {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Failed {}
        let none: Option<&str> = None;
        for (format, expected) in [
            (
                Format::Logfmt,
                concat!(
                    r#"plain=12.5ms spaced="a b" quoted="say \"hi\"" tab="a\tb" "#,
                    r#"text="null" nil=null debug="\"x y\"" sneaky="a\u2028b" "#,
                    r#"uni=HÉ err="null" err2="no such host""#,
                    "\n"
                ),
            ),
            (
                Format::Json,
                concat!(
                    r#"{"plain":"12.5ms","spaced":"a b","quoted":"say \"hi\"","tab":"a\tb","#,
                    r#""text":"null","nil":null,"debug":"\"x y\"","sneaky":"a\u2028b","#,
                    r#""uni":"HÉ","err":"null","err2":"no such host"}"#,
                    "\n"
                ),
            ),
        ] {
            let (logger, lines) = Logger::builder(format).to_buffer().expect("logger");
            logger.in_scope(|| {
                let err = Failed("null");
                let err2 = Failed("no such host");
                tracing::info!(
                    plain = %GoDuration(std::time::Duration::from_micros(12_500)),
                    spaced = %"a b",
                    quoted = %"say \"hi\"",
                    tab = %"a\tb",
                    text = "null",
                    nil = %or_null(none),
                    debug = ?"x y",
                    sneaky = %"a\u{2028}b",
                    uni = %"HÉ",
                    err = &err as &(dyn std::error::Error + 'static),
                    err2 = &err2 as &(dyn std::error::Error + 'static),
                );
            });
            assert_eq!(lines.contents(), expected, "{format}");
        }
    }

    /// A value whose rendering logs: `tracing` drops an event emitted while another is being
    /// dispatched on the same thread, and the line being written comes out whole (no panic on
    /// the thread's line buffer, which is in use).
    #[test]
    fn a_value_that_logs_while_it_is_rendered() {
        struct Chatty;
        impl fmt::Display for Chatty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                tracing::info!(inner = "yes, inside");
                f.write_str("done")
            }
        }
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        logger.in_scope(|| tracing::info!(outer = %Chatty, after = 1));
        assert_eq!(lines.lines(), ["outer=done after=1"]);
    }

    /// The context is rendered once, when the logger is built, by the same rules as any field.
    #[test]
    fn context_is_quoted_and_escaped_in_both_formats() {
        for (format, expected) in [
            (
                Format::Logfmt,
                "svc=a listen=\"my host:80\" note=\"say \\\"hi\\\"\" n=1\n",
            ),
            (
                Format::Json,
                "{\"svc\":\"a\",\"listen\":\"my host:80\",\"note\":\"say \\\"hi\\\"\",\"n\":1}\n",
            ),
        ] {
            let (logger, lines) = Logger::builder(format)
                .context("svc", "a")
                .context("listen", "my host:80")
                .context("note", "say \"hi\"")
                .to_buffer()
                .expect("logger");
            logger.in_scope(|| tracing::info!(n = 1));
            assert_eq!(lines.contents(), expected, "{format}");
        }
    }

    #[test]
    fn context_caller_message_and_level() {
        let (logger, lines) = Logger::builder(Format::Logfmt)
            .context("listen", ":8001")
            .caller(true)
            .to_buffer()
            .expect("logger");
        let line = line!() + 1;
        logger.in_scope(|| tracing::warn!(addr = ":8001", "HTTP"));
        assert_eq!(
            lines.contents(),
            format!("level=warn listen=:8001 caller=mod.rs:{line} msg=HTTP addr=:8001\n")
        );
    }

    /// A callsite's caller and keys are put together once per thread and format, then
    /// copied: lines from one callsite read the same the first time and after, in each format,
    /// whichever format wrote from it first; and a key that needs cleaning is cleaned either way.
    #[test]
    fn a_callsites_lines_read_the_same_first_and_after_in_each_format() {
        let build = |format| {
            Logger::builder(format)
                .caller(true)
                .to_buffer()
                .expect("logger")
        };
        let (logfmt, logfmt_lines) = build(Format::Logfmt);
        let (json, json_lines) = build(Format::Json);
        let line = line!() + 3;
        let log = |logger: &Logger, n: u64| {
            logger.in_scope(
                || tracing::info!(n, "a key=\"x\"" = "v w", err = %or_null(None::<String>), "hi"),
            );
        };
        for n in 0..3 {
            log(&json, n);
            log(&logfmt, n);
        }
        let logfmt_line = |n| format!("caller=mod.rs:{line} msg=hi n={n} akeyx=\"v w\" err=null");
        let json_line = |n| {
            format!(
                "{{\"caller\":\"mod.rs:{line}\",\"msg\":\"hi\",\"n\":{n},\"a key=\\\"x\\\"\":\"v w\",\"err\":null}}"
            )
        };
        assert_eq!(
            logfmt_lines.lines(),
            (0..3).map(logfmt_line).collect::<Vec<_>>()
        );
        assert_eq!(
            json_lines.lines(),
            (0..3).map(json_line).collect::<Vec<_>>()
        );
        // A logger without the caller, from the same callsite, already known in its format.
        let (no_caller, no_caller_lines) =
            Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        log(&no_caller, 7);
        assert_eq!(
            no_caller_lines.contents(),
            "msg=hi n=7 akeyx=\"v w\" err=null\n"
        );
    }

    #[test]
    fn the_filter_applies_and_bad_filters_are_reported() {
        let (logger, lines) = Logger::builder(Format::Logfmt)
            .filter("warn")
            .to_buffer()
            .expect("logger");
        logger.in_scope(|| {
            tracing::info!(dropped = true);
            tracing::error!(kept = true);
        });
        assert_eq!(lines.contents(), "level=error kept=true\n");
        let err = Logger::builder(Format::Logfmt)
            .filter("info,=[")
            .to_buffer()
            .expect_err("not a filter");
        assert!(err.to_string().starts_with("invalid log filter: "), "{err}");
    }

    /// A writer stuck until the test lets it go, like a terminal nobody reads.
    pub(super) struct Stuck(pub(super) std::sync::mpsc::Receiver<()>);

    impl io::Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_writer_drops_lines_instead_of_blocking() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (logger, guard) = Logger::builder(Format::Logfmt)
            .queue_lines(10)
            .to_background(Stuck(stuck))
            .expect("logger");
        // Far more than the buffer holds: if logging waited for the writer, this would never
        // return.
        let pad = "x".repeat(100);
        logger.in_scope(|| {
            for n in 0..5000 {
                tracing::info!(n, pad = pad.as_str());
            }
        });
        // At most the buffer's 10 and a batch in the writer's hands got through.
        assert!(guard.dropped_lines() >= 5000 - 20, "{guard:?}");
        drop(release);
    }

    #[test]
    fn loggers_do_not_see_each_others_lines() {
        let (a, a_lines) = Logger::builder(Format::Logfmt).to_buffer().expect("a");
        let (b, b_lines) = Logger::builder(Format::Json).to_buffer().expect("b");
        a.in_scope(|| tracing::info!(to = "a"));
        b.in_scope(|| tracing::info!(to = "b"));
        Logger::discard().in_scope(|| tracing::info!(to = "nobody"));
        assert_eq!(a_lines.lines(), ["to=a"]);
        assert_eq!(b_lines.lines(), [r#"{"to":"b"}"#]);
    }

    #[test]
    fn lines_inside_spans_carry_the_spans_fields() {
        for (format, inside, outside) in [
            (
                Format::Logfmt,
                "listen=:8001 request_id=42 timeout=1.5s n=1\n",
                "listen=:8001 n=2\n",
            ),
            (
                Format::Json,
                "{\"listen\":\":8001\",\"request_id\":\"42\",\"timeout\":\"1.5s\",\"n\":1}\n",
                "{\"listen\":\":8001\",\"n\":2}\n",
            ),
        ] {
            let (logger, lines) = Logger::builder(format)
                .context("listen", ":8001")
                .to_buffer()
                .expect("logger");
            logger.in_scope(|| {
                let span = tracing::info_span!(
                    "request",
                    request_id = tracing::field::Empty,
                    timeout = tracing::field::Empty
                );
                span.record("request_id", "42");
                span.record("timeout", tracing::field::display("1.5s"));
                span.in_scope(|| tracing::info!(n = 1));
                tracing::info!(n = 2);
            });
            assert_eq!(lines.contents(), format!("{inside}{outside}"), "{format}");
        }
    }

    #[tokio::test]
    async fn lines_inside_a_traced_call_carry_its_trace_and_span_ids() {
        use crate::context::{Context, TraceParent};
        let parent = TraceParent::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .expect("valid");
        for (format, expected) in [
            (
                Format::Logfmt,
                "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 n=1\nn=2\n",
            ),
            (
                Format::Json,
                "{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"span_id\":\"00f067aa0ba902b7\",\"n\":1}\n{\"n\":2}\n",
            ),
        ] {
            let (logger, lines) = Logger::builder(format).to_buffer().expect("logger");
            Context::new()
                .with_value(parent.clone())
                .scope(async { logger.in_scope(|| tracing::info!(n = 1)) })
                .await;
            // An unsampled trace is not recorded: no ids that lead nowhere.
            let unsampled = TraceParent {
                sampled: false,
                ..parent.clone()
            };
            Context::new()
                .with_value(unsampled)
                .scope(async { logger.in_scope(|| tracing::info!(n = 2)) })
                .await;
            assert_eq!(lines.contents(), expected, "{format}");
        }
    }

    #[test]
    fn an_added_layer_sees_the_events_the_filter_hides_from_the_lines() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> Layer<S> for Count {
            fn on_event(
                &self,
                _: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let seen = Arc::new(AtomicUsize::new(0));
        let (logger, lines) = Logger::builder(Format::Logfmt)
            .filter("warn")
            .with_layer(Count(seen.clone()))
            .to_buffer()
            .expect("logger");
        logger.in_scope(|| {
            tracing::info!(hidden = true);
            tracing::warn!(shown = true);
        });
        assert_eq!(lines.contents(), "level=warn shown=true\n");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }
}
