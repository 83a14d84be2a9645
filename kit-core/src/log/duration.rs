//! Durations written as Go writes them, the way Go kit's log lines show `took`.

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
/// use kit_core::log::GoDuration;
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
            write_decimal(f, nanos, digits)?;
            return f.write_str(unit);
        }
        let seconds = nanos / 1_000_000_000;
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write_decimal(f, nanos % 60_000_000_000, 9)?;
        f.write_str("s")
    }
}

/// Writes `value / 10^digits` with its fraction, trailing zeros and a bare point left out.
fn write_decimal(f: &mut fmt::Formatter<'_>, value: u128, digits: u32) -> fmt::Result {
    let scale = 10u128.pow(digits);
    write!(f, "{}", value / scale)?;
    let fraction = value % scale;
    if fraction == 0 {
        return Ok(());
    }
    let text = format!("{fraction:0width$}", width = digits as usize);
    write!(f, ".{}", text.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
