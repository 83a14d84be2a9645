//! Go's behaviour, case by case: each expectation is what Go's `encoding/json` does with the
//! same bytes.

use super::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;

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
    // Escapes found anywhere, not only after plain text: first, last, back to back.
    let r: Req = from_slice(r#"{"s":"\ud800\ud800é\n\udfff"}"#.as_bytes()).expect("ok");
    assert_eq!(r.s, "\u{FFFD}\u{FFFD}é\n\u{FFFD}");
}

#[test]
fn a_backslash_before_anything_but_an_escape_is_malformed_not_a_panic() {
    // A backslash then a character of several bytes, a backslash last, a `\u` cut short.
    for body in ["{\"s\":\"\\é\"}", "{\"s\":\"a\\", "{\"s\":\"\\ud8", "\\"] {
        let message = err::<Req>(body);
        assert!(message.starts_with("malformed JSON"), "{body:?}: {message}");
    }
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

/// Floats are read correctly rounded, as Go's `strconv.ParseFloat` reads them: the nearest
/// double, even for long mantissas, so that what one side writes the other reads back exactly.
#[test]
fn floats_are_read_to_the_nearest_double() {
    for text in [
        "6666666666666666666666666666666666666666666666666666666666661.5e3",
        "6.666666666666667e+60",
        "2.2250738585072011e-308",
        "0.1000000000000000055511151231257827021181583404541015625",
        "9007199254740993",
        "1.7976931348623157e308",
    ] {
        let read: f64 = from_slice(text.as_bytes()).expect("a number");
        let nearest: f64 = text.parse().expect("a float");
        assert_eq!(read.to_bits(), nearest.to_bits(), "{text}");
        let written = to_vec(&read).expect("written");
        let again: f64 = from_slice(&written).expect("read back");
        assert_eq!(again.to_bits(), read.to_bits(), "{text}");
    }
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

#[test]
fn ignored_fields_are_scanned_not_read_whatever_they_hold() {
    // Go skips a field it does not know, however large, deep or out of range its value.
    let big = format!(
        r#"{{"pad":[{}0],"deep":{}{},"huge":1e999999,"s":"kept"}}"#,
        "0,".repeat(100_000),
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let req: Req = from_slice(big.as_bytes()).expect("the ignored fields are skipped");
    assert_eq!(req.s, "kept");
}

#[test]
fn values_a_type_reads_may_not_nest_without_end() {
    #[derive(Debug, Deserialize)]
    struct Open {
        #[allow(dead_code)]
        any: serde_json::Value,
    }
    let deep = format!(
        r#"{{"any":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let message = err::<Open>(&deep);
    assert!(
        message.contains("values nested deeper than 128 levels are not read"),
        "{message}"
    );
    let fine = format!(r#"{{"any":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
    assert!(from_slice::<Open>(fine.as_bytes()).is_ok());
}

#[test]
fn a_number_beyond_its_type_is_a_data_error_with_a_path() {
    #[derive(Debug, Deserialize)]
    struct Float {
        #[allow(dead_code)]
        x: f64,
    }
    assert_eq!(
        err::<Float>(r#"{"x":1e999}"#),
        r#"field "x": number out of range"#
    );
}

#[test]
fn a_document_that_is_an_object_reads_as_any_type_that_takes_one() {
    let some: Option<Req> = from_slice(br#"{"s":"x"}"#).expect("an option");
    assert_eq!(some, Some(Req { s: "x".into() }));
    #[derive(Debug, Deserialize, PartialEq)]
    enum Tagged {
        A { x: u32 },
    }
    let tagged: Tagged = from_slice(br#"{"A":{"x":1}}"#).expect("an enum");
    assert_eq!(tagged, Tagged::A { x: 1 });
    let map: std::collections::BTreeMap<String, u32> =
        from_slice(br#"{"b":2,"a":1,"b":3}"#).expect("a map");
    assert_eq!(
        map.into_iter().collect::<Vec<_>>(),
        [("a".into(), 1), ("b".into(), 3)]
    );
    assert_eq!(err::<u32>("{}"), "expected an integer, found an object");
    let value: serde_json::Value = from_slice(br#"{"k":[1,{"n":null}]}"#).expect("a value");
    assert_eq!(value, serde_json::json!({"k": [1, {"n": null}]}));
}
