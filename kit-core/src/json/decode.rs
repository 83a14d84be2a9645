//! Decoding with Go's rules, lazily: the document is checked once for well-formedness, and
//! each value stays a slice of it ([`RawValue`]) until the type being filled asks for it. An
//! object is split into its members one level at a time, every member kept (repeated keys
//! included) with its value still a slice; the deserializer then matches names
//! case-insensitively, reads `null` as the zero value, resolves repeated keys by the type of
//! the field they fill, and reads a scalar straight from its slice.
//!
//! A member that names no field of the struct is never read past that scan, so a large ignored
//! field costs its size in scanning, not in memory; and where a value fails to decode is
//! recorded as the error travels back up, so a document is decoded once, failing or not.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::value::RawValue;
use smallvec::{SmallVec, smallvec};

use super::error::{Error, plain_message, syntax_message};

/// How deep the values a type reads may nest. The document as a whole is only checked for
/// well-formedness, which takes no stack, so ignored fields may nest deeper; the fields read
/// recurse, and this keeps a hostile document from exhausting the stack.
const MAX_DEPTH: usize = 128;

/// Reads a value from a JSON document with Go's decoding rules (see the [module docs](crate::json)).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = replace_lone_surrogates(text);
    // Trimmed once; errors are still reported at their place in the whole text.
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Error::Empty);
    }
    let syntax = |e: serde_json::Error| Error::Syntax {
        message: syntax_message(&e),
        line: e.line(),
        column: e.column(),
    };
    // Checking the document and splitting the object it usually is are one pass.
    let document = if trimmed.starts_with('{') {
        let members: Members<'_> = serde_json::from_str(&text).map_err(syntax)?;
        GoValue {
            occurrences: smallvec![an_object()],
            depth: 0,
            members: Some(Split {
                members: members.0,
                text: trimmed,
            }),
        }
    } else {
        GoValue::one(serde_json::from_str(&text).map_err(syntax)?, 0)
    };
    T::deserialize(document).map_err(|failure| Error::Data {
        path: failure.path(),
        message: plain_message(&failure.message),
    })
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
    // Most documents have no escape at all: the next backslash is looked for, not every byte.
    while let Some(found) = bytes.get(at..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        at += found;
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

/// Why a value could not be read, and where: the path is gathered segment by segment as the
/// error travels back up through the objects and arrays it was in.
#[derive(Debug)]
struct Failure {
    message: String,
    /// Innermost first.
    path: Vec<Segment>,
}

#[derive(Debug)]
enum Segment {
    Key(String),
    Index(usize),
}

impl Failure {
    fn at(mut self, segment: Segment) -> Self {
        self.path.push(segment);
        self
    }

    /// The path as `field.sub[2]`; empty for the document itself.
    fn path(&self) -> String {
        let mut path = String::new();
        for segment in self.path.iter().rev() {
            match segment {
                Segment::Key(key) if path.is_empty() => path.push_str(key),
                Segment::Key(key) => {
                    path.push('.');
                    path.push_str(key);
                }
                Segment::Index(index) => path.push_str(&format!("[{index}]")),
            }
        }
        path
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl de::Error for Failure {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Failure {
            message: message.to_string(),
            path: Vec::new(),
        }
    }
}

/// serde_json's error, for a value read from its slice, without its position in the slice,
/// which would mean nothing to the reader of the whole document.
fn from_json(error: serde_json::Error) -> Failure {
    <Failure as de::Error>::custom(syntax_message(&error))
}

/// What a slice holds, from its first byte (a [`RawValue`] has no surrounding whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Null,
    Object,
    Array,
    Scalar,
}

fn shape(raw: &RawValue) -> Shape {
    match raw.get().as_bytes().first() {
        Some(b'n') => Shape::Null,
        Some(b'{') => Shape::Object,
        Some(b'[') => Shape::Array,
        _ => Shape::Scalar,
    }
}

/// One member of an object: its key, and its value still a slice.
type Member<'de> = (Cow<'de, str>, &'de RawValue);

/// A key with every value it was given, in order.
type Entry<'de> = (Cow<'de, str>, Occurrences<'de>);

/// Every value a key was given, in order: nearly always one, kept inline, so that an object's
/// members cost no allocation each.
type Occurrences<'de> = SmallVec<[&'de RawValue; 1]>;

/// An object's members, in order, repeated keys included; each value still a slice.
struct Members<'de>(Vec<Member<'de>>);

impl<'de> Members<'de> {
    fn of(raw: &'de RawValue) -> Result<Self, Failure> {
        serde_json::from_str(raw.get()).map_err(from_json)
    }
}

impl<'de> de::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    members.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// A member's key, borrowed from the document when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }

            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A value that deserializes with Go's rules: case-insensitive field names and `null` as the
/// zero value. It wraps every nested value, so the rules hold at any depth.
///
/// A struct field named more than once in an object holds all its occurrences, and the type
/// asked for decides, as in Go's decoder: a later `null` leaves a string, number, bool or
/// struct alone but empties an option, array or map; later objects merge into an earlier
/// struct or map; anything else is replaced by the last occurrence.
#[derive(Debug)]
struct GoValue<'de> {
    /// Every occurrence, in order; never empty.
    occurrences: Occurrences<'de>,
    /// How many objects and arrays enclose it.
    depth: usize,
    /// The one occurrence, an object, already split into its members (the document's own
    /// object is split as the document is checked); `occurrences` then holds [`an_object`].
    members: Option<Split<'de>>,
}

/// An object split into its members, with its text.
#[derive(Debug)]
struct Split<'de> {
    members: Vec<Member<'de>>,
    text: &'de str,
}

/// An object that stands for one whose members are already split out, so that its [`shape`]
/// says what it is.
fn an_object() -> &'static RawValue {
    static OBJECT: std::sync::OnceLock<Option<&'static RawValue>> = std::sync::OnceLock::new();
    OBJECT
        .get_or_init(|| {
            RawValue::from_string("{}".to_owned())
                .ok()
                .map(|raw| &*Box::leak(raw))
        })
        .unwrap_or(RawValue::NULL)
}

/// `null`, to stand for a value that is not there.
fn null() -> &'static RawValue {
    RawValue::NULL
}

impl<'de> GoValue<'de> {
    fn one(raw: &'de RawValue, depth: usize) -> Self {
        GoValue {
            occurrences: smallvec![raw],
            depth,
            members: None,
        }
    }

    /// The members of every occurrence that is an object, in order (after the last `null`
    /// when `since_null`); or the first occurrence that is not an object, which the caller
    /// reports as the wrong type.
    fn objects(self, since_null: bool) -> Result<Result<Vec<Member<'de>>, &'de RawValue>, Failure> {
        if let Some(split) = self.members {
            return Ok(Ok(split.members));
        }
        let occurrences = if since_null {
            self.since_null().unwrap_or_default()
        } else {
            self.occurrences
        };
        GoValue::merged_objects(&occurrences)
    }

    /// The last occurrence: what replaces everything before it.
    fn last(&self) -> &'de RawValue {
        self.occurrences.last().copied().unwrap_or_else(|| null())
    }

    /// The last occurrence that is not `null`, for types that `null` leaves alone.
    fn last_set(&self) -> &'de RawValue {
        self.occurrences
            .iter()
            .rev()
            .copied()
            .find(|raw| shape(raw) != Shape::Null)
            .unwrap_or_else(|| null())
    }

    /// The occurrences since the last `null`, for types that `null` empties; `None` when the
    /// last occurrence is `null`.
    fn since_null(mut self) -> Option<Occurrences<'de>> {
        let start = self
            .occurrences
            .iter()
            .rposition(|raw| shape(raw) == Shape::Null)
            .map_or(0, |at| at + 1);
        (start < self.occurrences.len()).then(|| {
            self.occurrences.drain(..start);
            self.occurrences
        })
    }

    /// The members of every occurrence that is an object, in order; or the first occurrence
    /// that is not an object, which the caller reports as the wrong type.
    fn merged_objects(
        occurrences: &[&'de RawValue],
    ) -> Result<Result<Vec<Member<'de>>, &'de RawValue>, Failure> {
        let mut merged = Vec::new();
        for raw in occurrences {
            match shape(raw) {
                Shape::Object => merged.extend(Members::of(raw)?.0),
                Shape::Null => {}
                _ => return Ok(Err(raw)),
            }
        }
        Ok(Ok(merged))
    }

    /// The depth of what this value holds, if it may hold that deep.
    fn inner_depth(&self) -> Result<usize, Failure> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "values nested deeper than {MAX_DEPTH} levels are not read"
            )));
        }
        Ok(self.depth + 1)
    }

    /// The text of the last occurrence.
    fn text(&self) -> &'de str {
        match &self.members {
            Some(split) => split.text,
            None => self.last().get(),
        }
    }

    /// Reads one scalar slice (or any slice, as serde_json reads it) through `read`.
    fn scalar<V>(
        raw: &'de RawValue,
        read: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
        ) -> Result<V, serde_json::Error>,
    ) -> Result<V, Failure> {
        Self::read(raw.get(), read)
    }

    fn read<V>(
        text: &'de str,
        read: impl FnOnce(
            &mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
        ) -> Result<V, serde_json::Error>,
    ) -> Result<V, Failure> {
        let mut reader = serde_json::Deserializer::from_str(text);
        read(&mut reader).map_err(from_json)
    }
}

/// The zero value Go leaves in a field when it reads `null`: serde asks for a type through the
/// `deserialize_*` method it calls, and each null-tolerant method visits the matching zero.
macro_rules! null_is_zero {
    ($($method:ident => |$v:ident| $zero:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $v: V) -> Result<V::Value, Self::Error> {
                let raw = self.last_set();
                match shape(raw) {
                    Shape::Null => $zero,
                    _ => GoValue::one(raw, self.depth).deserialize_any($v),
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
                let raw = self.last_set();
                let text = raw.get();
                match shape(raw) {
                    Shape::Null => $zero,
                    Shape::Scalar
                        if text.starts_with("-0")
                            && text.parse::<f64>().is_ok_and(|f| f == 0.0) =>
                    {
                        $zero
                    }
                    _ => GoValue::one(raw, self.depth).deserialize_any($v),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for GoValue<'de> {
    type Error = Failure;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let raw = self.last();
        match shape(raw) {
            Shape::Array => {
                let depth = self.inner_depth()?;
                let items: Vec<&'de RawValue> =
                    serde_json::from_str(raw.get()).map_err(from_json)?;
                visitor.visit_seq(GoSeq::new(items, depth))
            }
            Shape::Object => {
                let depth = self.inner_depth()?;
                let members = match self.members {
                    Some(split) => split.members,
                    None => Members::of(raw)?.0,
                };
                visitor.visit_map(GoMap::new(last_wins(members), depth))
            }
            Shape::Null | Shape::Scalar => {
                Self::scalar(raw, |reader| reader.deserialize_any(visitor))
            }
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
        let raw = self.last();
        match shape(raw) {
            Shape::Null => visitor.visit_seq(GoSeq::new(Vec::new(), self.depth)),
            _ => GoValue::one(raw, self.depth).deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let depth = self.depth;
        match self.objects(true)? {
            Ok(members) => {
                let inner = GoValue::one(null(), depth).inner_depth()?;
                visitor.visit_map(GoMap::new(last_wins(members), inner))
            }
            Err(other) => GoValue::one(other, depth).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.members.is_some() {
            return visitor.visit_some(self);
        }
        let depth = self.depth;
        match self.since_null() {
            None => visitor.visit_none(),
            Some(since) => visitor.visit_some(GoValue {
                occurrences: since,
                depth,
                members: None,
            }),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let (depth, outer) = (self.inner_depth()?, self.depth);
        match self.objects(false)? {
            Ok(members) => visitor.visit_map(GoMap::new(fold_keys(members, fields), depth)),
            // serde would fill a struct from an array by position; JSON objects are by name.
            Err(raw) if shape(raw) == Shape::Array => {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &visitor))
            }
            Err(raw) => GoValue::one(raw, outer).deserialize_any(visitor),
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
        let text = self.text();
        Self::read(text, |reader| {
            reader.deserialize_enum(name, variants, visitor)
        })
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let text = self.text();
        Self::read(text, |reader| reader.deserialize_unit(visitor))
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
/// dropped here, as Go ignores them, their values never read.
///
/// Linear in the number of members (times the struct's few fields), so that a body with a
/// great many keys costs no more than its size.
fn fold_keys<'de>(members: Vec<Member<'de>>, fields: &[&str]) -> Vec<Entry<'de>> {
    // At most one entry per field, so finding a field's entry is bounded by the struct's size,
    // not the document's.
    // Entries are made in place, as many as can be, so that the common case (a few members,
    // each a field) allocates once here.
    let mut folded: Vec<Entry<'de>> = Vec::with_capacity(members.len().min(fields.len()));
    let mut lowered: Option<Vec<String>> = None;
    for (key, value) in members {
        let (index, key) = match fields.iter().position(|f| *f == key) {
            Some(index) => (index, key),
            None => {
                let lowered = lowered
                    .get_or_insert_with(|| fields.iter().map(|f| f.to_lowercase()).collect());
                let lower = key.to_lowercase();
                match lowered.iter().position(|f| *f == lower) {
                    Some(index) => (index, Cow::Owned(fields[index].to_owned())),
                    None => continue,
                }
            }
        };
        // An entry's key is its field's own name, whatever case the document used.
        match folded.iter_mut().find(|(known, _)| *known == fields[index]) {
            None => folded.push((key, smallvec![value])),
            Some((_, earlier)) => earlier.push(value),
        }
    }
    folded
}

/// One member per key, the last occurrence winning, as Go fills a map. Linear: keys are looked
/// up in a hash map.
fn last_wins<'de>(members: Vec<Member<'de>>) -> Vec<Entry<'de>> {
    let mut kept: Vec<Entry<'de>> = Vec::with_capacity(members.len());
    let mut positions: HashMap<Cow<'de, str>, usize> = HashMap::with_capacity(members.len());
    for (key, value) in members {
        match positions.get(&key) {
            Some(&at) => kept[at].1 = smallvec![value],
            None => {
                positions.insert(key.clone(), kept.len());
                kept.push((key, smallvec![value]));
            }
        }
    }
    kept
}

struct GoSeq<'de> {
    items: std::vec::IntoIter<&'de RawValue>,
    next: usize,
    depth: usize,
}

impl<'de> GoSeq<'de> {
    fn new(items: Vec<&'de RawValue>, depth: usize) -> Self {
        GoSeq {
            items: items.into_iter(),
            next: 0,
            depth,
        }
    }
}

impl<'de> SeqAccess<'de> for GoSeq<'de> {
    type Error = Failure;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let Some(raw) = self.items.next() else {
            return Ok(None);
        };
        let index = self.next;
        self.next += 1;
        seed.deserialize(GoValue::one(raw, self.depth))
            .map(Some)
            .map_err(|failure| failure.at(Segment::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct GoMap<'de> {
    entries: std::vec::IntoIter<Entry<'de>>,
    /// The value of the key just given, and the key, for the path of an error.
    value: Option<Entry<'de>>,
    depth: usize,
}

impl<'de> GoMap<'de> {
    fn new(entries: Vec<Entry<'de>>, depth: usize) -> Self {
        Self {
            entries: entries.into_iter(),
            value: None,
            depth,
        }
    }
}

impl<'de> MapAccess<'de> for GoMap<'de> {
    type Error = Failure;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, values)) => {
                let deserialized = match &key {
                    Cow::Borrowed(key) => seed.deserialize(key.into_deserializer()),
                    Cow::Owned(key) => seed.deserialize(key.as_str().into_deserializer()),
                };
                self.value = Some((key, values));
                deserialized.map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some((key, occurrences)) => seed
                .deserialize(GoValue {
                    occurrences,
                    depth: self.depth,
                    members: None,
                })
                .map_err(|failure| failure.at(Segment::Key(key.into_owned()))),
            None => Err(de::Error::custom("value requested before key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
