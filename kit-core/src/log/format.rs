//! One line per event, as logfmt or as a JSON object, with Go kit's value rules.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use foldhash::fast::RandomState;
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::context::{Context, TraceParent};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `key=value` pairs, as Go kit's `log.NewLogfmtLogger`: a value with a space, `=`, `"` or a
    /// control character is quoted, an empty one is written as nothing, a missing one as `null`.
    #[default]
    Logfmt,
    /// One JSON object per line with the same keys, as Go kit's `log.NewJSONLogger`: numbers and
    /// booleans stay numbers and booleans, a missing value is `null`, the rest are strings.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logfmt" => Ok(Format::Logfmt),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown log format {other:?}; expected logfmt or json"
            )),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Logfmt => "logfmt",
            Format::Json => "json",
        })
    }
}

/// The event formatter: fixed context first (Go kit's `log.With`), then the fields of the spans
/// the event is in, outermost first (the request's id and deadline), then the caller if asked
/// for, then the event's own fields in the order the event names them.
#[derive(Debug, Clone)]
pub(crate) struct LineFormat {
    pub(crate) format: Format,
    /// The fixed context, written once in the line's syntax ([`LineFormat::context`]).
    pub(crate) context: Arc<str>,
    pub(crate) caller: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is put together in a buffer of this thread, then handed to `writer` in one
        // piece: its dozen small writes are then copies into a `String` the compiler sees,
        // instead of calls through the `dyn fmt::Write` that `writer` wraps.
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                let written = self
                    .write_line(ctx, &mut line, event)
                    .and_then(|()| writer.write_str(&line));
                // The room a long line took is given back, not kept for the next, short, ones.
                if line.capacity() > 4096 {
                    *line = String::new();
                }
                written
            }
            // This thread's line is in use: only if an event reached this formatter while a value
            // of another was rendered, which `tracing` itself prevents (it drops such events).
            Err(_) => {
                let mut line = String::new();
                self.write_line(ctx, &mut line, event)?;
                writer.write_str(&line)
            }
        })
    }
}

impl LineFormat {
    /// The context's `key=value` pairs as every line writes them (`k=v k2=v2`, or
    /// `"k":v,"k2":v2`): checked for quotes and escapes once, not on every line.
    pub(crate) fn context(format: Format, pairs: &[(String, String)]) -> Arc<str> {
        written(
            format,
            pairs
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .into()
    }

    fn write_line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        out: &mut String,
        event: &Event<'_>,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        // What a callsite's lines always hold (its caller, its fields' keys) is put together
        // the first time this thread writes a line from it, in the line's syntax, and copied
        // after that: about 600 instructions for `caller=file.rs:LINE`, 50 a key. There are as
        // many as the program has callsites.
        thread_local! {
            static CALLSITES: RefCell<HashMap<(Identifier, Format), Callsite, RandomState>> =
                RefCell::new(HashMap::default());
        }
        let meta = event.metadata();
        CALLSITES.with(|callsites| {
            // Taken only if a line were written while another is (which `tracing` prevents):
            // then this one's text is put together afresh.
            let mut callsites = callsites.try_borrow_mut();
            let fresh;
            let callsite = match &mut callsites {
                Ok(callsites) => &*callsites
                    .entry((meta.callsite(), self.format))
                    .or_insert_with(|| Callsite::new(self.format, meta)),
                Err(_) => {
                    fresh = Callsite::new(self.format, meta);
                    &fresh
                }
            };
            let mut line = Line::new(self.format, out);
            // Go kit lines carry a level only when one was asked for (`level.Warn(logger)`);
            // ours carry one for warnings and errors, which are worth a reader's attention.
            if *meta.level() <= Level::WARN {
                let level = meta.level().as_str().to_ascii_lowercase();
                line.value("level", Value::Str(&level));
            }
            if !self.context.is_empty() {
                line.fragment(&self.context);
            }
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    let extensions = span.extensions();
                    if let Some(fields) = extensions.get::<FormattedFields<N>>()
                        && !fields.fields.is_empty()
                    {
                        line.fragment(&fields.fields);
                    }
                }
            }
            // Inside a traced call, the ids that lead from the line to its trace.
            Context::with_current(|request| {
                if let Some(parent) = request.get::<TraceParent>().filter(|parent| parent.sampled) {
                    line.value("trace_id", Value::Str(&parent.trace_id_hex().to_string()));
                    line.value("span_id", Value::Str(&parent.span_id_hex().to_string()));
                }
            });
            if self.caller
                && let Some(caller) = &callsite.caller
            {
                line.fragment(caller);
            }
            line.keys = Some((meta.callsite(), &callsite.keys));
            event.record(&mut line);
            line.finish()
        })
    }
}

/// What every line from one callsite holds, written in one line syntax.
struct Callsite {
    /// `caller=file.rs:LINE`, or `None` when the callsite does not say where it is.
    caller: Option<Box<str>>,
    /// Each field's key with what separates it from its value (`key=`, `"key":`), by the
    /// field's index.
    keys: Box<[Box<str>]>,
}

impl Callsite {
    fn new(format: Format, meta: &Metadata<'_>) -> Self {
        let caller = match (meta.file(), meta.line()) {
            (Some(file), Some(number)) => Some(caller(format, file, number)),
            _ => None,
        };
        let keys = meta
            .fields()
            .iter()
            .map(|field| {
                let mut text = String::new();
                // Writing into a `String` does not fail.
                let _ = write_key(&mut text, format, key(&field));
                text.into_boxed_str()
            })
            .collect();
        Callsite { caller, keys }
    }
}

/// `caller=file.rs:LINE` in `format`'s syntax, the file without its directories, as Go kit's
/// `log.DefaultCaller` writes it.
fn caller(format: Format, file: &str, number: u32) -> Box<str> {
    let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
    written(format, [("caller", format!("{file}:{number}").as_str())]).into()
}

/// `pairs` in `format`'s syntax (`k=v k2=v2`, or `"k":v,"k2":v2`), to be copied into lines as
/// a [`Line::fragment`].
fn written<'a>(format: Format, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut text = String::new();
    let mut line = Line::continuing(format, &mut text, true);
    for (key, value) in pairs {
        line.value(key, Value::Str(value));
    }
    text
}

/// The field formatter for spans: a span's fields, written once when they are recorded, in the
/// line's own syntax (`k=v k2=v2`, or `"k":v,"k2":v2`), ready to be copied into each line
/// written inside the span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineFields {
    pub(crate) format: Format,
}

impl<'writer> FormatFields<'writer> for LineFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        // Once per span: put together apart, then copied whole into the span's fields.
        let mut text = String::new();
        let mut line = Line::continuing(self.format, &mut text, true);
        fields.record(&mut line);
        line.result?;
        writer.write_str(&text)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut line = Line::continuing(self.format, &mut current.fields, first);
        fields.record(&mut line);
        line.result
    }
}

/// A field's value, by the kind that decides how it is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Str(&'a str),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

/// Writes one line, a field at a time, into a `String`: the line's many small writes are then
/// copies the compiler sees whole, rather than calls through a `dyn fmt::Write`.
struct Line<'w> {
    format: Format,
    out: &'w mut String,
    first: bool,
    result: fmt::Result,
    /// The keys of the event's fields already written ([`Callsite::keys`]), with the callsite
    /// they belong to; `None` for a span's fields, whose keys are written as they come.
    keys: Option<(Identifier, &'w [Box<str>])>,
}

impl<'w> Line<'w> {
    fn new(format: Format, out: &'w mut String) -> Self {
        if format == Format::Json {
            out.push('{');
        }
        Line {
            format,
            out,
            first: true,
            result: Ok(()),
            keys: None,
        }
    }

    /// A line already begun elsewhere: no opening brace, and no separator first when `first`.
    fn continuing(format: Format, out: &'w mut String, first: bool) -> Self {
        Line {
            format,
            out,
            first,
            result: Ok(()),
            keys: None,
        }
    }

    fn value(&mut self, key: &str, value: Value<'_>) {
        if self.key(key) {
            self.result = write_value(self.out, self.format, value);
        }
    }

    /// An event's field: its key copied when already written.
    fn field(&mut self, field: &Field, value: Value<'_>) {
        if self.field_key(field) {
            self.result = write_value(self.out, self.format, value);
        }
    }

    /// Writes the separator and `key`; whether the line can go on.
    fn key(&mut self, key: &str) -> bool {
        self.separate();
        if self.result.is_ok() {
            self.result = write_key(self.out, self.format, key);
        }
        self.result.is_ok()
    }

    /// Writes the separator and `field`'s key; whether the line can go on.
    fn field_key(&mut self, field: &Field) -> bool {
        let written = self.keys.as_ref().and_then(|(callsite, keys)| {
            (field.callsite() == *callsite)
                .then(|| keys.get(field.index()))
                .flatten()
        });
        match written {
            Some(written) => {
                self.fragment(written);
                self.result.is_ok()
            }
            None => self.key(key(field)),
        }
    }

    /// Copies fields already written in this line's syntax.
    fn fragment(&mut self, fields: &str) {
        self.separate();
        if self.result.is_ok() {
            self.out.push_str(fields);
        }
    }

    fn separate(&mut self) {
        if self.result.is_err() {
            return;
        }
        if !self.first {
            self.out.push(match self.format {
                Format::Logfmt => ' ',
                Format::Json => ',',
            });
        }
        self.first = false;
    }

    fn finish(self) -> fmt::Result {
        self.result?;
        self.out.push_str(match self.format {
            Format::Logfmt => "\n",
            Format::Json => "}\n",
        });
        Ok(())
    }
}

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, Value::Str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.field_key(field) {
            // `%log::or_null(None)` and friends render as `null`: Go kit's `nil`.
            self.result = write_formatted(self.out, self.format, value, true);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, Value::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, Value::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.field_key(field) {
            let text = format_args!("{value}");
            self.result = write_formatted(self.out, self.format, &text, false);
        }
    }
}

/// tracing's free-text `message` is Go kit's `msg`.
fn key(field: &Field) -> &'static str {
    match field.name() {
        "message" => "msg",
        name => name,
    }
}

/// `key` and what separates it from its value, in `format`'s syntax: `key=` or `"key":`.
fn write_key(out: &mut String, format: Format, key: &str) -> fmt::Result {
    match format {
        Format::Logfmt => write_logfmt_key(out, key),
        Format::Json => {
            write_json_string(out, key)?;
            out.push(':');
            Ok(())
        }
    }
}

/// A value after its key, in `format`'s syntax.
fn write_value(out: &mut String, format: Format, value: Value<'_>) -> fmt::Result {
    match format {
        Format::Logfmt => write_logfmt_value(out, value),
        Format::Json => write_json_value(out, value),
    }
}

/// A value with go-logfmt's rules: quoted when it holds a space or control character, `=`, `"`
/// or U+FFFD, and the string `null` quoted so that it is not read as a missing value.
fn write_logfmt_value(out: &mut impl fmt::Write, value: Value<'_>) -> fmt::Result {
    match value {
        Value::Str(s) if s == "null" || needs_quoting(s) => write_quoted(out, s),
        Value::Str(s) => out.write_str(s),
        Value::Int(n) => write!(out, "{n}"),
        Value::Uint(n) => write!(out, "{n}"),
        Value::Float(n) => write!(out, "{n}"),
        Value::Bool(b) => write!(out, "{b}"),
    }
}

/// `key=` with go-logfmt's rules: without the runes that would break the pair.
fn write_logfmt_key(out: &mut impl fmt::Write, key: &str) -> fmt::Result {
    // Keys are nearly always plain ASCII, settled by the table; the rest are filtered a
    // character at a time (other characters than ASCII are kept, as go-logfmt keeps them).
    if !key.bytes().all(|b| PLAIN[usize::from(b)]) {
        for c in key.chars().filter(|&c| c > ' ' && c != '=' && c != '"') {
            out.write_char(c)?;
        }
    } else {
        out.write_str(key)?;
    }
    out.write_char('=')
}

/// A value known by how it renders (`Debug`, or `Display` through `%`), written after its key
/// where it is rendered: most such values (durations, numbers, `null`) need no quotes and are
/// then written once, with no copy. One that needs quotes or escapes is moved aside and written
/// again. When `null_is_nil`, the text `null` is Go kit's `nil`, written bare; otherwise it is
/// a string like any other.
fn write_formatted(
    out: &mut String,
    format: Format,
    value: &dyn fmt::Debug,
    null_is_nil: bool,
) -> fmt::Result {
    let start = out.len();
    write!(out, "{value:?}")?;
    let text = &out[start..];
    if null_is_nil && text == "null" {
        return Ok(());
    }
    match format {
        Format::Logfmt if text != "null" && !needs_quoting(text) => Ok(()),
        Format::Json if text.bytes().all(|b| b == b' ' || UNESCAPED[usize::from(b)]) => {
            out.insert(start, '"');
            out.push('"');
            Ok(())
        }
        _ => {
            let text = out.split_off(start);
            write_escaped(out, &text, format)
        }
    }
}

/// The bytes that never need quoting in a logfmt value: printable ASCII other than `=` and `"`.
static PLAIN: [bool; 256] = ascii_table(b"=\"");

/// The bytes written as they are inside a quoted string: printable ASCII other than `"` and `\`.
static UNESCAPED: [bool; 256] = ascii_table(b"\"\\");

/// A table of the printable ASCII bytes (space excluded) other than those of `except`.
const fn ascii_table(except: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut byte = b'!';
    while byte < 0x7F {
        table[byte as usize] = true;
        byte += 1;
    }
    let mut i = 0;
    while i < except.len() {
        table[except[i] as usize] = false;
        i += 1;
    }
    table
}

/// Whether `s` must be quoted. ASCII, most of any value, is judged a byte at a time by a table;
/// only the other characters are decoded.
fn needs_quoting(s: &str) -> bool {
    let bytes = s.as_bytes();
    // Most values are plain printable ASCII: settled in one pass, a table lookup a byte.
    let Some(mut at) = bytes.iter().position(|&b| !PLAIN[usize::from(b)]) else {
        return false;
    };
    while let Some(&byte) = bytes.get(at) {
        if byte.is_ascii() {
            // A space or control character, `=`, `"` or DEL.
            if !PLAIN[usize::from(byte)] {
                return true;
            }
            at += 1;
        } else {
            // `at` is on a character boundary: only whole characters are stepped over.
            let Some(c) = s[at..].chars().next() else {
                return false;
            };
            if needs_quotes(c) {
                return true;
            }
            at += c.len_utf8();
        }
    }
    false
}

fn needs_quotes(c: char) -> bool {
    c <= ' ' || c == '=' || c == '"' || c == '\u{FFFD}' || is_deceptive(c)
}

/// Characters that a terminal or an editor shows as something else than what they are: DEL,
/// NEL and the Unicode line and paragraph separators (which some tools treat as line breaks, so
/// a value could fake a second line), and the bidirectional controls (which reorder what is
/// shown). A value holding one is quoted, and the character escaped, so that a client cannot
/// forge or disguise log lines with the text it sends.
fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{7F}'
            | '\u{80}'..='\u{9F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
    )
}

fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    write_escaped(out, s, Format::Logfmt)
}

/// Writes `s` in double quotes, escaped as `format` escapes strings: the same escapes for both,
/// except that logfmt (as go-logfmt does) also escapes U+FFFD, the mark of invalid UTF-8.
fn write_escaped(out: &mut impl fmt::Write, s: &str, format: Format) -> fmt::Result {
    out.write_char('"')?;
    // Runs of characters that need no escape are written in one piece; printable ASCII, most of
    // any value, is passed over a byte at a time.
    let mut start = 0;
    let mut at = 0;
    while let Some(&byte) = s.as_bytes().get(at) {
        if byte == b' ' || UNESCAPED[usize::from(byte)] {
            at += 1;
            continue;
        }
        // `at` is on a character boundary: only whole characters are stepped over.
        let Some(c) = s[at..].chars().next() else {
            break;
        };
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{FFFD}' if format == Format::Logfmt => "\\ufffd",
            c if c < ' ' || is_deceptive(c) => "",
            _ => {
                at += c.len_utf8();
                continue;
            }
        };
        out.write_str(&s[start..at])?;
        if escape.is_empty() {
            write!(out, "\\u{:04x}", u32::from(c))?;
        } else {
            out.write_str(escape)?;
        }
        at += c.len_utf8();
        start = at;
    }
    out.write_str(&s[start..])?;
    out.write_char('"')
}

fn write_json_value(out: &mut impl fmt::Write, value: Value<'_>) -> fmt::Result {
    match value {
        Value::Str(s) => write_json_string(out, s),
        Value::Int(n) => write!(out, "{n}"),
        Value::Uint(n) => write!(out, "{n}"),
        Value::Float(n) if n.is_finite() => write!(out, "{n}"),
        Value::Float(n) => write_json_string(out, &n.to_string()),
        Value::Bool(b) => write!(out, "{b}"),
    }
}

/// A JSON string, escaped as JSON requires and, beyond that, with the characters of
/// [`is_deceptive`] written as `\uXXXX`.
fn write_json_string(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    write_escaped(out, s, Format::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_logfmt(out: &mut String, key: &str, value: Value<'_>) -> fmt::Result {
        write_key(out, Format::Logfmt, key)?;
        write_logfmt_value(out, value)
    }

    fn write_json(out: &mut String, key: &str, value: Value<'_>) -> fmt::Result {
        write_key(out, Format::Json, key)?;
        write_json_value(out, value)
    }

    fn logfmt(value: Value<'_>) -> String {
        let mut out = String::new();
        write_logfmt(&mut out, "k", value).expect("written");
        out
    }

    #[test]
    fn logfmt_quotes_like_go_logfmt() {
        // Expected renderings are go-logfmt's for the same values.
        assert_eq!(logfmt(Value::Str("hello")), "k=hello");
        assert_eq!(logfmt(Value::Str("hello, world")), r#"k="hello, world""#);
        assert_eq!(logfmt(Value::Str("")), "k=");
        assert_eq!(logfmt(Value::Str("a=b \"q\"")), r#"k="a=b \"q\"""#);
        assert_eq!(logfmt(Value::Str("null")), r#"k="null""#);
        assert_eq!(logfmt(Value::Str("tab\there")), r#"k="tab\there""#);
        assert_eq!(logfmt(Value::Str("bell\u{7}")), r#"k="bell\u0007""#);
        assert_eq!(logfmt(Value::Str("back\\slash")), r"k=back\slash");
        assert_eq!(logfmt(Value::Str("bad\u{FFFD}")), r#"k="bad\ufffd""#);
        assert_eq!(logfmt(Value::Str("HÉLLO")), "k=HÉLLO");
        assert_eq!(logfmt(Value::Uint(12)), "k=12");
        assert_eq!(logfmt(Value::Bool(false)), "k=false");
        let mut out = String::new();
        write_logfmt(&mut out, "a key=\"x\"", Value::Int(-1)).expect("written");
        assert_eq!(out, "akeyx=-1");
        // Other characters than ASCII, DEL among them, stay in a key, as go-logfmt keeps them.
        for (key, written) in [
            ("clé", "clé=1"),
            ("a\u{7f}b", "a\u{7f}b=1"),
            ("t\tab", "tab=1"),
        ] {
            let mut out = String::new();
            write_logfmt(&mut out, key, Value::Int(1)).expect("written");
            assert_eq!(out, written, "{key:?}");
        }
    }

    #[test]
    fn json_keeps_kinds() {
        let mut out = String::new();
        write_json(&mut out, "n", Value::Uint(12)).expect("written");
        out.push(',');
        write_json(&mut out, "ok", Value::Bool(true)).expect("written");
        out.push(',');
        write_json(&mut out, "s", Value::Str("<a> \"b\"")).expect("written");
        assert_eq!(out, r#""n":12,"ok":true,"s":"<a> \"b\"""#);
    }

    #[test]
    fn formats_parse_by_name() {
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert_eq!("logfmt".parse::<Format>(), Ok(Format::Logfmt));
        assert_eq!(
            "xml".parse::<Format>(),
            Err("unknown log format \"xml\"; expected logfmt or json".to_owned())
        );
    }

    #[test]
    fn characters_that_disguise_text_are_escaped_in_both_formats() {
        let sneaky = "a\u{2028}b\u{2029}c\u{85}d\u{7F}e\u{202E}f\u{2066}g";
        let mut logfmt = String::new();
        write_logfmt(&mut logfmt, "k", Value::Str(sneaky)).expect("written");
        assert_eq!(logfmt, r#"k="a\u2028b\u2029c\u0085d\u007fe\u202ef\u2066g""#);
        let mut json = String::new();
        write_json(&mut json, "k", Value::Str(sneaky)).expect("written");
        assert_eq!(json, r#""k":"a\u2028b\u2029c\u0085d\u007fe\u202ef\u2066g""#);
        // What JSON itself needs is still escaped, and the result still parses as the text.
        let mut plain = String::new();
        write_json(&mut plain, "k", Value::Str("q\"b\\n\nt\t\u{1}")).expect("written");
        assert_eq!(plain, r#""k":"q\"b\\n\nt\t\u0001""#);
        let parsed: serde_json::Value =
            serde_json::from_str(&format!("{{{json}}}")).expect("valid JSON");
        assert_eq!(parsed["k"], sneaky);
    }

    /// The byte-at-a-time fast paths decide and escape exactly as a character-at-a-time reading
    /// does, whatever mix of ASCII, escapes, multi-byte and deceptive characters a value holds.
    #[test]
    fn the_fast_paths_agree_with_reading_every_character() {
        fn reference(s: &str, format: Format) -> String {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{FFFD}' if format == Format::Logfmt => out.push_str("\\ufffd"),
                    c if c < ' ' || is_deceptive(c) => {
                        out.push_str(&format!("\\u{:04x}", u32::from(c)));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        let pieces = [
            "a",
            " ",
            "=",
            "\"",
            "\\",
            "\n",
            "\r",
            "\t",
            "\u{0}",
            "\u{1b}",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
            "\u{a0}",
            "é",
            "\u{FFFD}",
            "\u{2028}",
            "\u{202E}",
            "\u{2066}",
            "日本",
            "🦀",
            "~",
            "!",
            "hello, world",
        ];
        // Every string of up to three pieces.
        let mut cases = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = cases
                .iter()
                .flat_map(|case| pieces.iter().map(move |piece| format!("{case}{piece}")))
                .collect();
            cases.extend(longer);
        }
        for case in &cases {
            for format in [Format::Logfmt, Format::Json] {
                let mut quoted = String::new();
                write_escaped(&mut quoted, case, format).expect("write");
                assert_eq!(quoted, reference(case, format), "{format:?} {case:?}");
            }
            assert_eq!(
                needs_quoting(case),
                case.chars().any(needs_quotes),
                "{case:?}"
            );
        }
    }
}
