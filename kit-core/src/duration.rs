//! Durations written and read the way Go writes and reads them.
//!
//! Go kit's log lines show durations as Go prints them (`took=2.455µs`), its flags take them as
//! Go parses them (`-retry.timeout 500ms`), and so does the header a kit-core client sends to
//! pass its deadline on (`X-Request-Timeout: 1.5s`). [`GoDuration`] prints and [`parse`] reads
//! that syntax, so a reader used to Go kit sees the same numbers.

use std::fmt;
use std::time::Duration;

/// A [`Duration`] that displays as Go's `time.Duration.String()`: `591ns`, `1.503µs`,
/// `1.349521ms`, `2.5s`, `1m2.5s`, `1h0m0s`.
///
/// The unit is the largest that keeps the number at least 1, with as many decimals as the value
/// needs (up to nanoseconds) and no trailing zeros, so log lines read the same as a Go service's.
///
/// ```
/// use std::time::Duration;
/// use kit_core::duration::GoDuration;
///
/// assert_eq!(GoDuration(Duration::from_nanos(2455)).to_string(), "2.455µs");
/// assert_eq!(GoDuration(Duration::from_millis(2500)).to_string(), "2.5s");
/// assert_eq!(GoDuration(Duration::from_secs(3600)).to_string(), "1h0m0s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < 1_000_000_000 {
            let (unit, digits) = match nanos {
                0..1_000 => ("ns", 0),
                1_000..1_000_000 => ("µs", 3),
                _ => ("ms", 6),
            };
            // Under a second: the nanoseconds fit in 64 bits, which format far quicker than 128.
            write_decimal(f, nanos as u64, digits)?;
            return f.write_str(unit);
        }
        // A `Duration`'s whole seconds are a `u64`.
        let seconds = self.0.as_secs();
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
        if hours > 0 {
            write_decimal(f, hours, 0)?;
            f.write_str("h")?;
        }
        if hours > 0 || minutes > 0 {
            write_decimal(f, minutes, 0)?;
            f.write_str("m")?;
        }
        // Under a minute of nanoseconds: fits in 64 bits.
        write_decimal(f, (nanos % 60_000_000_000) as u64, 9)?;
        f.write_str("s")
    }
}

/// Writes `value / 10^digits` with its fraction, trailing zeros and a bare point left out.
///
/// As Go's `fmtFrac` and `fmtInt` do, the digits are put together from the right in a buffer on
/// the stack and written in one piece: a log line's `took` is written on every request, and
/// going through `core::fmt`'s integer and padding machinery cost about 600 instructions a line.
fn write_decimal(f: &mut fmt::Formatter<'_>, mut value: u64, digits: u32) -> fmt::Result {
    // At most 9 fraction digits, the point and the 20 digits of `u64::MAX`.
    let mut buf = [0u8; 32];
    let mut at = buf.len();
    let mut push = |byte: u8| {
        at -= 1;
        buf[at] = byte;
    };
    let mut fraction = false;
    for _ in 0..digits {
        let digit = (value % 10) as u8;
        value /= 10;
        // Trailing zeros are left out: nothing is written until the first digit that is not 0.
        fraction |= digit != 0;
        if fraction {
            push(b'0' + digit);
        }
    }
    if fraction {
        push(b'.');
    }
    loop {
        push(b'0' + (value % 10) as u8);
        value /= 10;
        if value == 0 {
            break;
        }
    }
    // Only ASCII digits and a point were written.
    f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
}

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

/// Reads a duration written as Go's `time.ParseDuration` reads it: one or more decimal numbers,
/// each with a unit, such as `300ms`, `1.5s` or `2h45m`. The units are `ns`, `us` (or `µs`),
/// `ms`, `s`, `m` and `h`; `0` alone needs none. Negative durations are refused, since nothing
/// here waits a negative time, and so are durations too long to represent.
///
/// ```
/// use std::time::Duration;
/// use kit_core::duration::parse;
///
/// assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse("10").is_err());
/// ```
pub fn parse(input: &str) -> Result<Duration, ParseDurationError> {
    let fail = |reason| ParseDurationError {
        input: input.to_owned(),
        reason,
    };
    let text = input.strip_prefix('+').unwrap_or(input);
    if text.starts_with('-') {
        return Err(fail("a duration cannot be negative"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(fail("expected a number and a unit, e.g. 500ms"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(fail("expected a number before each unit"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(fail("missing unit: use ns, us, ms, s, m or h")),
            _ => return Err(fail("unknown unit: use ns, us, ms, s, m or h")),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("number too large"))?
        };
        let mut nanos = whole
            .checked_mul(nanos_per_unit)
            .ok_or_else(|| fail("duration too large"))?;
        // As Go does: the fraction's digits as an integer over a power of ten (digits past what
        // fits are dropped), scaled in floating point, which rounds `0.3333333333333333333h`
        // to 20m as Go does.
        let (mut digits, mut scale) = (0u64, 1f64);
        for digit in fraction.bytes() {
            match digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(u64::from(digit - b'0')))
            {
                Some(more) if more < (1 << 63) => {
                    digits = more;
                    scale *= 10.0;
                }
                _ => break,
            }
        }
        if digits > 0 {
            // A float of nanoseconds below one unit; the cast saturates, never wraps.
            nanos += (digits as f64 * (nanos_per_unit as f64 / scale)) as u128;
        }
        total = total
            .checked_add(nanos)
            .ok_or_else(|| fail("duration too large"))?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| fail("duration too large"))?;
    // The remainder is below 10^9, so it fits.
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_parses() {
        for (text, nanos) in [
            ("0", 0u64),
            ("5s", 5_000_000_000),
            ("30s", 30_000_000_000),
            ("1478s", 1_478_000_000_000),
            ("+5s", 5_000_000_000),
            ("5.0s", 5_000_000_000),
            ("5.6s", 5_600_000_000),
            ("5.s", 5_000_000_000),
            (".5s", 500_000_000),
            ("1.004s", 1_004_000_000),
            ("100.00100s", 100_001_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14_000_000_000),
            ("15m", 900_000_000_000),
            ("16h", 57_600_000_000_000),
            ("3h30m", 12_600_000_000_000),
            ("10.5s4m", 250_500_000_000),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("1.0000000001s", 1_000_000_000),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_nanos(nanos)), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses_and_negatives() {
        for text in [
            "", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "1.2.3s", "-1s", "x5s",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
        assert_eq!(
            parse("10").expect_err("no unit").to_string(),
            "invalid duration \"10\": missing unit: use ns, us, ms, s, m or h"
        );
        assert!(parse("9999999999999999999999h").is_err());
    }

    #[test]
    fn what_go_duration_prints_parses_back() {
        for nanos in [
            1,
            999,
            1_503,
            1_349_521,
            2_500_000_000,
            62_500_000_001,
            3_723_000_000_000,
        ] {
            let duration = Duration::from_nanos(nanos);
            assert_eq!(parse(&GoDuration(duration).to_string()), Ok(duration));
        }
    }

    #[test]
    fn matches_go() {
        // Expected strings are what Go's time.Duration.String() prints for the same values.
        let cases: [(u64, &str); 14] = [
            (0, "0s"),
            (1, "1ns"),
            (591, "591ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_503, "1.503µs"),
            (2_455, "2.455µs"),
            (1_349_521, "1.349521ms"),
            (100_000_000, "100ms"),
            (1_000_000_000, "1s"),
            (2_500_000_000, "2.5s"),
            (62_500_000_001, "1m2.500000001s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
        ];
        for (nanos, go) in cases {
            assert_eq!(GoDuration(Duration::from_nanos(nanos)).to_string(), go);
        }
    }

    /// The digits put together by hand agree with `format!`'s, around every boundary: zeros in
    /// and at the end of the fraction, each unit's first and last values, and the longest
    /// duration there is.
    #[test]
    fn hand_written_digits_agree_with_format() {
        fn reference(duration: Duration) -> String {
            let nanos = duration.as_nanos();
            let decimal = |value: u128, digits: u32| {
                let scale = 10u128.pow(digits);
                let fraction = format!("{:0width$}", value % scale, width = digits as usize);
                let fraction = fraction.trim_end_matches('0');
                if fraction.is_empty() {
                    format!("{}", value / scale)
                } else {
                    format!("{}.{fraction}", value / scale)
                }
            };
            match nanos {
                0 => "0s".to_owned(),
                1..1_000 => format!("{nanos}ns"),
                1_000..1_000_000 => format!("{}µs", decimal(nanos, 3)),
                1_000_000..1_000_000_000 => format!("{}ms", decimal(nanos, 6)),
                _ => {
                    let seconds = duration.as_secs();
                    let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
                    let mut text = String::new();
                    if hours > 0 {
                        text += &format!("{hours}h");
                    }
                    if hours > 0 || minutes > 0 {
                        text += &format!("{minutes}m");
                    }
                    text + &decimal(nanos % 60_000_000_000, 9) + "s"
                }
            }
        }
        let mut durations = vec![Duration::MAX, Duration::new(u64::MAX, 0)];
        for base in [
            1u64,
            1_000,
            1_000_000,
            1_000_000_000,
            60_000_000_000,
            3_600_000_000_000,
        ] {
            for nanos in [
                base - 1,
                base,
                base + 1,
                base * 10,
                base * 10 + 1,
                base * 999,
            ] {
                durations.push(Duration::from_nanos(nanos));
            }
        }
        for nanos in [
            1_000_001u64,
            1_010_000,
            10_000_100,
            999_999_999,
            59_999_999_999,
        ] {
            durations.push(Duration::from_nanos(nanos));
        }
        for duration in durations {
            assert_eq!(
                GoDuration(duration).to_string(),
                reference(duration),
                "{duration:?}"
            );
        }
    }
}
