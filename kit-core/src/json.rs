//! JSON that reads and writes like Go's `encoding/json`, with errors a user can act on.
//!
//! Go kit services speak JSON through Go's `encoding/json`, and a port that wants Go clients and
//! Rust clients to interoperate has to accept and produce the same bytes. serde_json is stricter
//! and spells some things differently, so this module adapts it:
//!
//! - Field names match case-insensitively, as Go's decoder does: `{"S":"x"}` fills field `s`. An
//!   exact match wins over a case-insensitive one. When a field appears more than once (by the
//!   same or another spelling), the field's type decides, as in Go: the later value wins, except
//!   that a later `null` leaves a string, number, bool or struct alone (and empties an option,
//!   array or map), and later objects merge into an earlier struct or map.
//! - `null` leaves a field at its zero value (`""`, `0`, `false`, empty), as in Go, instead of
//!   failing; `null` for a whole object is the zero object. `Option` fields still read `null` as
//!   `None`.
//! - Unknown fields are ignored. Escapes of lone UTF-16 surrogates (`"\ud83d"`) read as U+FFFD.
//!   Integers accept `-0` (and, unlike Go, `-0.0`, which is the same float once parsed).
//! - [`to_vec`] escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c` and so on, and writes floats
//!   as Go does (`100`, not `100.0`; `1e+21`), so our bytes match a Go service's.
//!
//! These rules hold for structs, sequences, maps and options at any depth. Fields of enum
//! variants and `#[serde(flatten)]` fields follow serde's own rules.
//!
//! Where Go is unhelpful we are not: an empty body, invalid UTF-8, trailing garbage and type
//! mismatches are errors whose messages name the problem, its position or field, in JSON's
//! terms (`field "s": expected a string, found number 1`) rather than a program's type names.
//!
//! Two Go habits are left to the types: Go fills an absent field with its zero value, where serde
//! reports `missing field "b"` unless the field or its struct has `#[serde(default)]`; and Go
//! writes map keys sorted, which serde does for a `BTreeMap` but not a `HashMap`. Numbers beyond
//! the range of `f64` and nesting deeper than 128 levels are refused even in ignored fields.
//!
//! ```
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize, PartialEq)]
//! struct Request {
//!     #[serde(default)]
//!     s: String,
//! }
//!
//! let req: Request = kit_core::json::from_slice(br#"{"S":"hello"}"#).unwrap();
//! assert_eq!(req.s, "hello");
//!
//! let err = kit_core::json::from_slice::<Request>(br#"{"s":1}"#).unwrap_err();
//! assert_eq!(err.to_string(), r#"field "s": expected a string, found number 1"#);
//!
//! assert_eq!(kit_core::json::to_vec(&"<a&b>").unwrap(), br#""\u003ca\u0026b\u003e""#);
//! ```

use std::fmt;
use std::io;

use serde::Serialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Value;

/// Why a JSON document could not be read into the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is empty or only whitespace.
    #[error("body is empty; expected JSON")]
    Empty,
    /// The bytes are not UTF-8, which JSON requires.
    #[error("body is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The text is not well-formed JSON.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    Syntax {
        /// What is wrong, in the parser's words.
        message: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// The JSON is well-formed but does not have the expected shape.
    #[error("{}", data_message(path, message))]
    Data {
        /// Where in the document, as `field.sub[2]`; empty for the document itself.
        path: String,
        /// What is wrong there, e.g. `expected a string, found number 1`.
        message: String,
    },
}

fn data_message(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("field \"{path}\": {message}")
    }
}

/// Reads a value from a JSON document with Go's decoding rules (see the [module docs](self)).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    let text = replace_lone_surrogates(text);
    let value: Json = serde_json::from_str(&text).map_err(|e| Error::Syntax {
        message: syntax_message(&e),
        line: e.line(),
        column: e.column(),
    })?;
    // Tracking where in the document an error is costs on every value; a request that reads
    // cleanly does without, and only a failed one is read again to say where it failed.
    match T::deserialize(GoValue::One(value)) {
        Ok(value) => Ok(value),
        Err(first) => {
            let again: Result<Json, _> = serde_json::from_str(&text);
            let Ok(again) = again else {
                return Err(Error::Data {
                    path: String::new(),
                    message: plain_message(&first.to_string()),
                });
            };
            match serde_path_to_error::deserialize::<_, T>(GoValue::One(again)) {
                Ok(_) => Err(Error::Data {
                    path: String::new(),
                    message: plain_message(&first.to_string()),
                }),
                Err(e) => {
                    let path = e.path().to_string();
                    Err(Error::Data {
                        path: if path == "." { String::new() } else { path },
                        message: plain_message(&e.into_inner().to_string()),
                    })
                }
            }
        }
    }
}

/// Writes a value as compact JSON, escaping HTML-sensitive characters as Go does.
///
/// No trailing newline is added; transports that frame JSON like Go's `json.Encoder` add it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

/// Replaces `\uD800`–`\uDFFF` escapes that are not half of a surrogate pair with `\uFFFD`, as
/// Go's decoder does; serde_json would refuse the document. Borrows when there are none.
fn replace_lone_surrogates(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let hex_at = |at: usize| -> Option<u32> {
        let digits = text.get(at..at + 4)?;
        u32::from_str_radix(digits, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u32> {
        (bytes.get(at) == Some(&b'\\') && bytes.get(at + 1) == Some(&b'u'))
            .then(|| hex_at(at + 2))
            .flatten()
    };
    let mut out: Option<String> = None;
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        if bytes[at] != b'\\' {
            at += 1;
            continue;
        }
        let Some(code) = escape_at(at) else {
            at += 2; // any other escape, such as `\\`, is two bytes long
            continue;
        };
        let paired = (0xD800..0xDC00).contains(&code)
            && escape_at(at + 6).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            at += 12;
        } else if (0xD800..0xE000).contains(&code) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..at]);
            out.push_str("\\uFFFD");
            at += 6;
            copied = at;
        } else {
            at += 6;
        }
    }
    match out {
        Some(mut out) => {
            out.push_str(&text[copied..]);
            std::borrow::Cow::Owned(out)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// serde_json's message without its position suffix, which [`Error::Syntax`] carries apart.
fn syntax_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    };
    match error.classify() {
        serde_json::error::Category::Eof => "unexpected end of input".to_owned(),
        _ => text.to_owned(),
    }
}

/// Rewrites serde's data-error messages in JSON's terms: `invalid type: integer `1`, expected a
/// string` becomes `expected a string, found number 1`, and Rust type names disappear.
fn plain_message(message: &str) -> String {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return format!("missing field \"{field}\"");
    }
    if message.starts_with("data did not match any variant of untagged enum ") {
        return "the value does not have any of the accepted shapes".to_owned();
    }
    if let Some(rest) = message.strip_prefix("invalid type: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return format!(
            "expected {}, found {}",
            plain_expected(expected),
            plain_found(found)
        );
    }
    if let Some(rest) = message.strip_prefix("invalid value: ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let found = plain_found(found);
        if found.starts_with("number ") {
            // serde reports a number that does not fit the field's integer type this way.
            return format!("{found} is out of range");
        }
        return format!("expected {}, found {found}", plain_expected(expected));
    }
    message.to_owned()
}

fn plain_found(found: &str) -> String {
    let unquote = |s: &str| s.trim_matches('`').to_owned();
    if let Some(n) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        format!("number {}", unquote(n))
    } else if let Some(b) = found.strip_prefix("boolean ") {
        format!("boolean {}", unquote(b))
    } else {
        match found {
            "sequence" => "an array".to_owned(),
            "map" => "an object".to_owned(),
            "unit value" | "null" => "null".to_owned(),
            other => other.to_owned(),
        }
    }
}

fn plain_expected(expected: &str) -> String {
    let integer = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    ];
    if integer.contains(&expected) {
        return "an integer".to_owned();
    }
    match expected {
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a map" => "an object".to_owned(),
        "a boolean" | "a string" | "a character" => expected.to_owned(),
        other if other.starts_with("unit struct ") => "null".to_owned(),
        other
            if other.starts_with("struct ")
                || other.starts_with("tuple struct ")
                || other.starts_with("internally tagged enum ")
                || other.starts_with("adjacently tagged enum ") =>
        {
            "an object".to_owned()
        }
        other if other.starts_with("enum ") => "one of the allowed values".to_owned(),
        other => other.to_owned(),
    }
}

/// A parsed JSON document that keeps every member of an object, repeated keys included, in order.
/// serde_json's [`Value`] keeps one member per key, but which occurrences Go uses depends on the
/// type it fills, which is known only when a field is deserialized.
#[derive(Debug)]
enum Json {
    /// `null`, a boolean, a number or a string.
    Scalar(Value),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn is_null(&self) -> bool {
        matches!(self, Json::Scalar(Value::Null))
    }

    /// The document as a [`Value`], the last of repeated keys winning.
    fn into_value(self) -> Value {
        match self {
            Json::Scalar(value) => value,
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(key, value)| (key, value.into_value()))
                    .collect(),
            ),
        }
    }
}

impl<'de> de::Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Scalar(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Scalar(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Scalar(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::Scalar(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Scalar(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(member) = map.next_entry()? {
            members.push(member);
        }
        Ok(Json::Object(members))
    }
}

/// A value that deserializes with Go's rules: case-insensitive field names and `null` as the
/// zero value. It wraps every nested value, so the rules hold at any depth.
///
/// A struct field named more than once in an object holds all its occurrences ([`Many`]), and
/// the type asked for decides, as in Go's decoder: a later `null` leaves a string, number, bool
/// or struct alone but empties an option, array or map; later objects merge into an earlier
/// struct or map; anything else is replaced by the last occurrence.
///
/// [`Many`]: GoValue::Many
#[derive(Debug)]
enum GoValue {
    One(Json),
    Many(Vec<Json>),
}

impl GoValue {
    /// The last occurrence: what replaces everything before it.
    fn last(self) -> Json {
        match self {
            GoValue::One(json) => json,
            GoValue::Many(mut all) => all.pop().unwrap_or(Json::Scalar(Value::Null)),
        }
    }

    /// The last occurrence that is not `null`, for types that `null` leaves alone.
    fn last_set(self) -> Json {
        match self {
            GoValue::One(json) => json,
            GoValue::Many(all) => all
                .into_iter()
                .rfind(|json| !json.is_null())
                .unwrap_or(Json::Scalar(Value::Null)),
        }
    }

    /// The occurrences since the last `null`, for types that `null` empties; `None` when the
    /// last occurrence is `null`.
    fn since_null(self) -> Option<Vec<Json>> {
        let mut all = match self {
            GoValue::One(json) => vec![json],
            GoValue::Many(all) => all,
        };
        let start = all.iter().rposition(Json::is_null).map_or(0, |at| at + 1);
        (start < all.len()).then(|| all.split_off(start))
    }

    /// The members of every occurrence that is an object, in order; or the first occurrence
    /// that is not an object, which the caller reports as the wrong type.
    fn merged_objects(occurrences: Vec<Json>) -> Result<Vec<(String, Json)>, Json> {
        let mut merged = Vec::new();
        for json in occurrences {
            match json {
                Json::Object(members) => merged.extend(members),
                Json::Scalar(Value::Null) => {}
                other => return Err(other),
            }
        }
        Ok(merged)
    }
}

/// The zero value Go leaves in a field when it reads `null`: serde asks for a type through the
/// `deserialize_*` method it calls, and each null-tolerant method visits the matching zero.
macro_rules! null_is_zero {
    ($($method:ident => |$v:ident| $zero:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Self::Error> {
                match self.last_set() {
                    Json::Scalar(Value::Null) => $zero,
                    other => GoValue::One(other).deserialize_any($v),
                }
            }
        )*
    };
}

/// Like [`null_is_zero`], for integers, which also accept `-0`: serde_json reads it as the
/// float -0.0, Go as the integer 0. (Go refuses `-0.0` for an integer; we read it as 0 too,
/// as the two are the same float by then.)
macro_rules! integer {
    ($($method:ident => |$v:ident| $zero:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Self::Error> {
                match self.last_set() {
                    Json::Scalar(Value::Null) => $zero,
                    Json::Scalar(Value::Number(n))
                        if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) =>
                    {
                        $zero
                    }
                    other => GoValue::One(other).deserialize_any($v),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for GoValue {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.last() {
            Json::Array(items) => visitor.visit_seq(GoSeq(items.into_iter())),
            Json::Object(members) => visitor.visit_map(GoMap::new(last_wins(members))),
            Json::Scalar(value) => value.deserialize_any(visitor),
        }
    }

    integer! {
        deserialize_i8 => |v| v.visit_i64(0);
        deserialize_i16 => |v| v.visit_i64(0);
        deserialize_i32 => |v| v.visit_i64(0);
        deserialize_i64 => |v| v.visit_i64(0);
        deserialize_i128 => |v| v.visit_i64(0);
        deserialize_u8 => |v| v.visit_u64(0);
        deserialize_u16 => |v| v.visit_u64(0);
        deserialize_u32 => |v| v.visit_u64(0);
        deserialize_u64 => |v| v.visit_u64(0);
        deserialize_u128 => |v| v.visit_u64(0);
    }

    null_is_zero! {
        deserialize_bool => |v| v.visit_bool(false);
        deserialize_f32 => |v| v.visit_f64(0.0);
        deserialize_f64 => |v| v.visit_f64(0.0);
        deserialize_str => |v| v.visit_str("");
        deserialize_string => |v| v.visit_string(String::new());
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.last() {
            Json::Scalar(Value::Null) => visitor.visit_seq(GoSeq(Vec::new().into_iter())),
            other => GoValue::One(other).deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let occurrences = self.since_null().unwrap_or_default();
        match GoValue::merged_objects(occurrences) {
            Ok(members) => visitor.visit_map(GoMap::new(last_wins(members))),
            Err(other) => GoValue::One(other).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.since_null() {
            None => visitor.visit_none(),
            Some(mut since) if since.len() == 1 => match since.pop() {
                Some(one) => visitor.visit_some(GoValue::One(one)),
                None => visitor.visit_none(),
            },
            Some(since) => visitor.visit_some(GoValue::Many(since)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let occurrences = match self {
            GoValue::One(json) => vec![json],
            GoValue::Many(all) => all,
        };
        match GoValue::merged_objects(occurrences) {
            Ok(members) => visitor.visit_map(GoMap::new(fold_keys(members, fields))),
            // serde would fill a struct from an array by position; JSON objects are by name.
            Err(Json::Array(_)) => Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor)),
            Err(other) => GoValue::One(other).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.last()
            .into_value()
            .deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.last().into_value().deserialize_unit(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit_struct tuple tuple_struct identifier
    }
}

/// Gathers an object's members by the struct field they name: exactly, or else
/// case-insensitively, as Go matches them. A field named more than once keeps every occurrence,
/// in order, for the field's type to resolve (see [`GoValue`]). Members that name no field are
/// dropped here, as Go ignores them.
///
/// Linear in the number of members (times the struct's few fields), so that a body with a
/// great many keys costs no more than its size.
fn fold_keys(members: Vec<(String, Json)>, fields: &[&str]) -> Vec<(String, GoValue)> {
    // At most one entry per field, so finding a field's entry is bounded by the struct's size,
    // not the document's.
    let mut folded: Vec<(String, usize, GoValue)> = Vec::new();
    let mut lowered: Option<Vec<String>> = None;
    for (key, value) in members {
        let (index, key) = match fields.iter().position(|f| *f == key) {
            Some(index) => (index, key),
            None => {
                let lowered = lowered
                    .get_or_insert_with(|| fields.iter().map(|f| f.to_lowercase()).collect());
                let lower = key.to_lowercase();
                match lowered.iter().position(|f| *f == lower) {
                    Some(index) => (index, fields[index].to_owned()),
                    None => continue,
                }
            }
        };
        match folded.iter_mut().find(|(_, known, _)| *known == index) {
            None => folded.push((key, index, GoValue::One(value))),
            Some((_, _, earlier)) => {
                let taken = std::mem::replace(earlier, GoValue::Many(Vec::new()));
                *earlier = GoValue::Many(match taken {
                    GoValue::One(first) => vec![first, value],
                    GoValue::Many(mut all) => {
                        all.push(value);
                        all
                    }
                });
            }
        }
    }
    folded
        .into_iter()
        .map(|(key, _, value)| (key, value))
        .collect()
}

/// One member per key, the last occurrence winning, as Go fills a map. Linear: keys are looked
/// up in a hash map.
fn last_wins(members: Vec<(String, Json)>) -> Vec<(String, GoValue)> {
    let mut kept: Vec<(String, GoValue)> = Vec::with_capacity(members.len());
    let mut positions: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(members.len());
    for (key, value) in members {
        match positions.get(&key) {
            Some(&at) => kept[at].1 = GoValue::One(value),
            None => {
                positions.insert(key.clone(), kept.len());
                kept.push((key, GoValue::One(value)));
            }
        }
    }
    kept
}

struct GoSeq(std::vec::IntoIter<Json>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|value| seed.deserialize(GoValue::One(value)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct GoMap {
    entries: std::vec::IntoIter<(String, GoValue)>,
    value: Option<GoValue>,
}

impl GoMap {
    fn new(entries: Vec<(String, GoValue)>) -> Self {
        Self {
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// serde_json's compact output, with Go's escaping of HTML-sensitive characters.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value, value.abs() < 1e-6 || value.abs() >= 1e21).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        writer.write_all(go_float(value, value.abs() < 1e-6 || value.abs() >= 1e21).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Scans bytes: the characters to escape are `<`, `>`, `&` and two three-byte sequences
        // that start with 0xE2, none of which can occur inside another UTF-8 sequence.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut at = 0;
        while at < bytes.len() {
            let (escaped, len) = match bytes[at] {
                b'<' => ("\\u003c", 1),
                b'>' => ("\\u003e", 1),
                b'&' => ("\\u0026", 1),
                0xE2 if bytes.get(at + 1) == Some(&0x80) && bytes.get(at + 2) == Some(&0xA8) => {
                    ("\\u2028", 3)
                }
                0xE2 if bytes.get(at + 1) == Some(&0x80) && bytes.get(at + 2) == Some(&0xA9) => {
                    ("\\u2029", 3)
                }
                _ => {
                    at += 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            at += len;
            start = at;
        }
        writer.write_all(&bytes[start..])
    }
}

/// A float as Go's encoder writes it: the shortest decimal that reads back as the same value,
/// with no `.0` on whole numbers, and an exponent (`1e+21`, `1e-7`) only for very large or very
/// small magnitudes.
fn go_float<F: fmt::Display + fmt::LowerExp + PartialEq + Default>(
    value: F,
    exponent: bool,
) -> String {
    if !exponent || value == F::default() {
        return value.to_string();
    }
    let text = format!("{value:e}");
    match text.split_once('e') {
        Some((mantissa, power)) if !power.starts_with('-') => format!("{mantissa}e+{power}"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    struct Req {
        #[serde(default)]
        s: String,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Nested {
        name: String,
        count: u32,
        ok: bool,
        tags: Vec<String>,
        inner: Req,
        maybe: Option<String>,
    }

    fn err<T: DeserializeOwned + fmt::Debug>(json: &str) -> String {
        from_slice::<T>(json.as_bytes())
            .expect_err("decoding must fail")
            .to_string()
    }

    #[test]
    fn field_names_match_case_insensitively_at_any_depth() {
        let n: Nested =
            from_slice(br#"{"NAME":"a","Count":2,"inner":{"S":"x"},"TAGS":["t"]}"#).expect("ok");
        assert_eq!(n.name, "a");
        assert_eq!(n.count, 2);
        assert_eq!(n.inner.s, "x");
        assert_eq!(n.tags, ["t"]);
    }

    #[test]
    fn the_later_of_two_matching_keys_wins() {
        assert_eq!(
            from_slice::<Req>(br#"{"s":"a","S":"b"}"#).expect("ok").s,
            "b"
        );
        assert_eq!(
            from_slice::<Req>(br#"{"S":"b","s":"a"}"#).expect("ok").s,
            "a"
        );
    }

    #[test]
    fn null_is_the_zero_value() {
        assert_eq!(from_slice::<Req>(b"null").expect("ok"), Req::default());
        assert_eq!(
            from_slice::<Req>(br#"{"s":null}"#).expect("ok"),
            Req::default()
        );
        let n: Nested = from_slice(
            br#"{"name":null,"count":null,"ok":null,"tags":null,"inner":null,"maybe":null}"#,
        )
        .expect("ok");
        assert_eq!(n, Nested::default());
    }

    #[test]
    fn a_later_null_keeps_the_earlier_value_and_objects_merge() {
        assert_eq!(
            from_slice::<Req>(br#"{"s":"x","S":null}"#).expect("ok").s,
            "x"
        );
        let n: Nested =
            from_slice(br#"{"inner":{"s":"a"},"name":"n","Inner":{"other":1}}"#).expect("ok");
        assert_eq!((n.inner.s.as_str(), n.name.as_str()), ("a", "n"));
    }

    #[test]
    fn repeated_keys_resolve_as_go_resolves_them() {
        // A later null leaves a string alone, whether the key is repeated exactly or by case.
        for json in [
            r#"{"s":"x","s":null}"#,
            r#"{"s":"x","S":null}"#,
            r#"{"s":null,"s":"x","s":null}"#,
        ] {
            assert_eq!(
                from_slice::<Req>(json.as_bytes()).expect("ok").s,
                "x",
                "{json}"
            );
        }
        assert_eq!(
            from_slice::<Req>(br#"{"s":"x","S":"y","s":"z"}"#)
                .expect("ok")
                .s,
            "z"
        );
        assert_eq!(
            from_slice::<Req>(br#"{"s":"x","s":"y"}"#).expect("ok").s,
            "y"
        );
        // Repeated objects merge into a struct; the later of a repeated inner key wins.
        let n: Nested = from_slice(
            br#"{"inner":{"s":"a"},"inner":{"other":1},"inner":null,"count":2,"count":null}"#,
        )
        .expect("ok");
        assert_eq!((n.inner.s.as_str(), n.count), ("a", 2));
        let n: Nested = from_slice(br#"{"inner":{"s":"a"},"inner":{"s":"b"}}"#).expect("ok");
        assert_eq!(n.inner.s, "b");
        // A later null empties an option, an array or a map; a later array replaces.
        let n: Nested =
            from_slice(br#"{"maybe":"m","maybe":null,"tags":["a"],"tags":null}"#).expect("ok");
        assert_eq!((n.maybe, n.tags.len()), (None, 0));
        let n: Nested = from_slice(br#"{"tags":["a","b"],"tags":["c"]}"#).expect("ok");
        assert_eq!(n.tags, ["c"]);
        let n: Nested = from_slice(br#"{"maybe":null,"maybe":"m"}"#).expect("ok");
        assert_eq!(n.maybe.as_deref(), Some("m"));
        // Objects merge into a map; within a map the last of a repeated key wins.
        let m: std::collections::BTreeMap<String, u32> =
            from_slice(br#"{"a":1,"b":2,"a":3}"#).expect("ok");
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [("a".into(), 3), ("b".into(), 2)]
        );
        #[derive(Debug, Deserialize)]
        struct Labels {
            labels: std::collections::BTreeMap<String, String>,
        }
        let l: Labels = from_slice(br#"{"labels":{"a":"1"},"labels":{"b":"2"}}"#).expect("ok");
        assert_eq!(l.labels.len(), 2);
        let l: Labels =
            from_slice(br#"{"labels":{"a":"1"},"labels":null,"labels":{"b":"2"}}"#).expect("ok");
        assert_eq!(l.labels.keys().collect::<Vec<_>>(), ["b"]);
        // A repeated field of the wrong type is still an error.
        assert_eq!(
            err::<Nested>(r#"{"inner":{"s":"a"},"inner":5}"#),
            r#"field "inner": expected an object, found number 5"#
        );
    }

    #[test]
    fn many_keys_cost_linear_time() {
        // 200 000 distinct unknown keys, and as many map entries: quadratic handling would take
        // minutes; linear takes milliseconds. (A guard, not a measurement: the bound is loose.)
        let mut body = String::from("{");
        for n in 0..200_000 {
            body.push_str(&format!("\"k{n}\":{n},"));
        }
        body.push_str("\"s\":\"x\"}");
        let started = std::time::Instant::now();
        assert_eq!(from_slice::<Req>(body.as_bytes()).expect("ok").s, "x");
        let map: std::collections::HashMap<String, serde_json::Value> =
            from_slice(body.as_bytes()).expect("ok");
        assert_eq!(map.len(), 200_001);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let r: Req = from_slice(br#"{"s":"a\ud83db\udc00c\\ud83d"}"#).expect("ok");
        assert_eq!(r.s, "a\u{FFFD}b\u{FFFD}c\\ud83d");
        let r: Req = from_slice(br#"{"s":"\ud83d\ude00"}"#).expect("a pair stays");
        assert_eq!(r.s, "\u{1F600}");
    }

    #[test]
    fn minus_zero_is_an_integer_zero() {
        let n: Nested = from_slice(br#"{"count":-0}"#).expect("ok");
        assert_eq!(n.count, 0);
        // Other zeros written as floats are not integers, in Go as here.
        assert_eq!(
            err::<Nested>(r#"{"count":0.0}"#),
            r#"field "count": expected an integer, found number 0.0"#
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r: Req = from_slice(br#"{"s":"x","other":[1,{"a":2}]}"#).expect("ok");
        assert_eq!(r.s, "x");
    }

    #[test]
    fn errors_speak_json_not_rust() {
        assert_eq!(err::<Req>(""), "body is empty; expected JSON");
        assert_eq!(err::<Req>(" \n"), "body is empty; expected JSON");
        assert_eq!(
            err::<Req>("{bad"),
            "malformed JSON at line 1 column 2: key must be a string"
        );
        assert_eq!(
            err::<Req>(r#"{"s":"a""#),
            "malformed JSON at line 1 column 8: unexpected end of input"
        );
        assert_eq!(
            err::<Req>(r#"{"s":"a"} trailing"#),
            "malformed JSON at line 1 column 11: trailing characters"
        );
        assert_eq!(
            err::<Req>(r#"{"s":1}"#),
            r#"field "s": expected a string, found number 1"#
        );
        assert_eq!(
            err::<Req>(r#"{"s":{"x":1}}"#),
            r#"field "s": expected a string, found an object"#
        );
        assert_eq!(err::<Req>("[1]"), "expected an object, found an array");
        assert_eq!(
            err::<Req>(r#""str""#),
            r#"expected an object, found string "str""#
        );
        assert_eq!(
            err::<Nested>(r#"{"count":1.5}"#),
            r#"field "count": expected an integer, found number 1.5"#
        );
        assert_eq!(
            err::<Nested>(r#"{"count":-1}"#),
            r#"field "count": number -1 is out of range"#
        );
        assert_eq!(
            err::<Nested>(r#"{"tags":["a",2]}"#),
            r#"field "tags[1]": expected a string, found number 2"#
        );
        assert_eq!(
            err::<Nested>(r#"{"inner":{"s":true}}"#),
            r#"field "inner.s": expected a string, found boolean true"#
        );
        assert_eq!(
            err::<Nested>(r#"{"inner":[]}"#),
            r#"field "inner": expected an object, found an array"#
        );
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_offset() {
        let e = from_slice::<Req>(b"{\"s\":\"h\xffi\"}").expect_err("not UTF-8");
        assert_eq!(e, Error::InvalidUtf8 { offset: 7 });
        assert_eq!(
            e.to_string(),
            "body is not valid UTF-8 (invalid byte at offset 7)"
        );
    }

    #[test]
    fn floats_are_written_like_go() {
        let cases: [(f64, &str); 9] = [
            (100.0, "100"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (1.5e-7, "1.5e-7"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456.789, "123456.789"),
            (2.5e-10, "2.5e-10"),
            (0.000001, "0.000001"),
        ];
        for (value, go) in cases {
            assert_eq!(
                String::from_utf8(to_vec(&value).expect("ok")).expect("utf-8"),
                go
            );
        }
        assert_eq!(to_vec(&1.5f32).expect("ok"), b"1.5");
    }

    #[test]
    fn missing_required_fields_are_named() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Sum {
            a: i64,
            b: i64,
        }
        assert_eq!(err::<Sum>(r#"{"a":1}"#), r#"missing field "b""#);
    }

    #[test]
    fn encoding_escapes_html_like_go() {
        let out = to_vec(&serde_json::json!({"v": "<A&B> \u{2028}\u{2029} ok"})).expect("ok");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"v":"\u003cA\u0026B\u003e \u2028\u2029 ok"}"#
        );
        assert_eq!(
            to_vec(&"quote \" and \n").expect("ok"),
            br#""quote \" and \n""#
        );
    }
}
