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
//! writes map keys sorted, which serde does for a `BTreeMap` but not a `HashMap`. A value nested
//! deeper than 128 levels is refused in a field the type reads (Go allows 10 000); in an ignored
//! field, any depth is skipped.
//!
//! Fields a type does not read are skipped without being built: the document is checked once,
//! and a value stays a slice of it until the type asks for it, so a large ignored field costs a
//! scan, not memory.
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

//!
//! The module is three parts: [decoding](from_slice) (a document checked once and read lazily,
//! through a deserializer that applies Go's rules), [encoding](to_vec) (serde_json
//! with Go's formatting), and the [errors](Error) decoding reports.

mod decode;
mod encode;
mod error;

pub use decode::from_slice;
pub use encode::to_vec;
pub use error::Error;

#[cfg(test)]
mod tests;
