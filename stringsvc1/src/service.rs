//! The business logic: what the service does, with no idea of how it is reached.

use std::future::Future;

use kit_core::error::{Classify, ErrorKind};

// ANCHOR: trait
/// Operations on strings.
///
/// The methods are asynchronous although this implementation never waits: a later stage of the
/// tutorial implements the same trait by calling other instances over the network. For the same
/// reason each implementation names its own error type: whatever it is, it says what
/// [kind](Classify) of failure each error is, so that a transport can answer it well.
pub trait StringService {
    /// What can go wrong in this implementation.
    type Error: Classify + Send + Sync + 'static;

    /// `s` in upper case; fails on an empty string.
    fn uppercase(&self, s: &str) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// The length of `s` in bytes.
    fn count(&self, s: &str) -> impl Future<Output = usize> + Send;
}
// ANCHOR_END: trait

// ANCHOR: error
/// What can go wrong in [`BasicStringService`]: the tutorial's `ErrEmpty`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// `uppercase` was given an empty string.
    #[error("Empty string")]
    Empty,
}

impl Classify for ServiceError {
    /// An empty string is the caller's mistake.
    fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Empty => ErrorKind::InvalidArgument,
        }
    }
}
// ANCHOR_END: error

// ANCHOR: impl
/// The plain implementation of [`StringService`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BasicStringService;

impl StringService for BasicStringService {
    type Error = ServiceError;

    async fn uppercase(&self, s: &str) -> Result<String, ServiceError> {
        if s.is_empty() {
            return Err(ServiceError::Empty);
        }
        Ok(to_upper(s))
    }

    async fn count(&self, s: &str) -> usize {
        s.len()
    }
}
// ANCHOR_END: impl

/// Upper-cases `s` one character at a time, as Go's `strings.ToUpper` does.
///
/// Rust's `str::to_uppercase` applies the full Unicode mapping, which turns some characters into
/// several (`ß` becomes `SS`); Go maps each character to at most one. To answer exactly as a Go
/// instance would, a character whose full mapping is longer keeps its simple mapping, which is
/// the character itself except for the Greek letters with a subscript iota.
fn to_upper(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let mut upper = c.to_uppercase();
        match (upper.next(), upper.next()) {
            (Some(single), None) => out.push(single),
            _ => out.push(simple_upper(c)),
        }
    }
    out
}

/// The simple (one-character) upper case of a character whose full upper case is longer.
fn simple_upper(c: char) -> char {
    let code = u32::from(c);
    let mapped = match code {
        // ᾀ..ᾇ, ᾐ..ᾗ, ᾠ..ᾧ become ᾈ..ᾏ, ᾘ..ᾟ, ᾨ..ᾯ.
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
        0x1FB3 => 0x1FBC,
        0x1FC3 => 0x1FCC,
        0x1FF3 => 0x1FFC,
        _ => code,
    };
    char::from_u32(mapped).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uppercase_refuses_the_empty_string() {
        let svc = BasicStringService;
        assert_eq!(svc.uppercase("").await, Err(ServiceError::Empty));
        assert_eq!(ServiceError::Empty.to_string(), "Empty string");
        assert_eq!(
            svc.uppercase("hello, world").await.as_deref(),
            Ok("HELLO, WORLD")
        );
    }

    #[test]
    fn uppercase_maps_characters_one_to_one_like_go() {
        // Go: strings.ToUpper for each input.
        for (input, go) in [
            ("straße", "STRAßE"),
            ("ǆemal", "ǄEMAL"),
            ("héllo", "HÉLLO"),
            ("ﬁne", "ﬁNE"),
            ("ᾳ ᾀ ῳ", "ᾼ ᾈ ῼ"),
            ("ŉ", "ŉ"),
            ("ı", "I"),
            ("<a&b>", "<A&B>"),
        ] {
            assert_eq!(to_upper(input), go, "{input}");
        }
    }

    #[tokio::test]
    async fn count_is_the_length_in_bytes() {
        let svc = BasicStringService;
        assert_eq!(svc.count("hello, world").await, 12);
        assert_eq!(svc.count("héllo").await, 6);
        assert_eq!(svc.count("").await, 0);
    }
}
