//! kit-core's JSON decoder, on any bytes.
//!
//! Rules: decoding never panics; a value that decodes encodes, and decodes back to itself (so
//! Go's rules for duplicate keys, `null`s and case-insensitive names always settle on one value
//! the encoder can write); and the services' own request types decode without panicking.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Every scalar kind a request carries.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Flat {
    #[serde(default)]
    s: String,
    #[serde(default)]
    n: i64,
    #[serde(default)]
    u: u8,
    #[serde(default)]
    f: f64,
    #[serde(default)]
    b: bool,
    #[serde(default)]
    o: Option<String>,
}

/// Sequences, maps, options and structs inside each other.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Nested {
    #[serde(default)]
    id: String,
    #[serde(default)]
    items: Vec<Flat>,
    #[serde(default)]
    counts: BTreeMap<String, i64>,
    #[serde(default)]
    inner: Option<Box<Nested>>,
    #[serde(default)]
    pair: (i32, String),
}

/// Decodes `data` as each type; see the module's rules.
pub fn run(data: &[u8]) {
    round_trip::<Flat>(data);
    round_trip::<Nested>(data);
    round_trip::<Vec<i64>>(data);
    round_trip::<BTreeMap<String, Option<String>>>(data);
    let _ = kit_core::json::from_slice::<stringsvc1::endpoint::UppercaseRequest>(data);
    let _ = kit_core::json::from_slice::<addsvc::endpoint::SumRequest>(data);
    let _ = kit_core::json::from_slice::<addsvc::endpoint::ConcatRequest>(data);
    let _ = kit_core::json::from_slice::<serde_json::Value>(data);
}

fn round_trip<T>(data: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(value) = kit_core::json::from_slice::<T>(data) else {
        return;
    };
    let bytes = kit_core::json::to_vec(&value)
        .unwrap_or_else(|err| panic!("{value:?} decoded but does not encode: {err}"));
    let again = kit_core::json::from_slice::<T>(&bytes).unwrap_or_else(|err| {
        panic!(
            "{value:?} encodes as {:?}, which does not decode: {err}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(value, again, "{:?}", String::from_utf8_lossy(&bytes));
}
