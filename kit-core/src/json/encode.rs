//! Encoding as Go's `encoding/json` writes: HTML-sensitive characters escaped, floats in Go's
//! shortest form.

use std::fmt;
use std::io;

use serde::Serialize;

/// Writes a value as compact JSON, escaping HTML-sensitive characters as Go does.
///
/// No trailing newline is added; transports that frame JSON like Go's `json.Encoder` add it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
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
