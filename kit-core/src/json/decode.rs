//! Decoding with Go's rules: a document parsed with every member kept, then read through a
//! deserializer that matches names case-insensitively, reads `null` as the zero value and
//! resolves repeated keys by the type of the field they fill.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::Value;

use super::error::{Error, plain_message, syntax_message};

/// Reads a value from a JSON document with Go's decoding rules (see the [module docs](crate::json)).
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
