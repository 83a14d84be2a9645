//! What decoding reports: where a document went wrong, in JSON's terms.

use crate::error::{Classify, ErrorKind};

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

/// serde_json's message without its position suffix, which [`Error::Syntax`] carries apart.
pub(super) fn syntax_message(error: &serde_json::Error) -> String {
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
pub(super) fn plain_message(message: &str) -> String {
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

/// A document that does not decode is the caller's mistake.
impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}
