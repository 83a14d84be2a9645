//! What the load benchmark's own load generators share: latency percentiles, and the JSON
//! line they print, in the shape of the wrk script's (`loadbench/wrk/report.lua`), so that
//! `loadbench/run.py` reads every generator's run the same way.

use std::time::Duration;

/// The `p`th percentile (0 to 100) of `sorted` latencies, by nearest rank; 0 for none.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One run's results, as the wrk script reports them.
#[derive(Debug, Default)]
pub struct Report {
    /// Each answered request's latency, in microseconds.
    pub latencies: Vec<u32>,
    /// How long the run took.
    pub duration: Duration,
    /// Connections that could not be made.
    pub connect_errors: u64,
    /// Answers that could not be read.
    pub read_errors: u64,
    /// Requests that could not be sent.
    pub write_errors: u64,
    /// Answers whose status was not 2xx.
    pub non2xx: u64,
    /// Answers that carried an in-band error.
    pub inband: u64,
}

impl Report {
    /// Adds what another client saw to this report.
    pub fn add(&mut self, other: Report) {
        self.latencies.extend(other.latencies);
        self.connect_errors += other.connect_errors;
        self.read_errors += other.read_errors;
        self.write_errors += other.write_errors;
        self.non2xx += other.non2xx;
        self.inband += other.inband;
    }

    /// The report's JSON line: requests, duration, errors, non-2xx and in-band answers,
    /// p50/p90/p99 and the largest latency, in microseconds.
    pub fn json_line(&mut self) -> String {
        self.latencies.sort_unstable();
        let l = &self.latencies;
        format!(
            "{{\"requests\":{},\"duration_us\":{},\"connect_errors\":{},\"read_errors\":{},\
             \"write_errors\":{},\"timeouts\":0,\"non2xx\":{},\"inband_errors\":{},\"p50_us\":{},\
             \"p90_us\":{},\"p99_us\":{},\"max_us\":{}}}",
            l.len(),
            self.duration.as_micros(),
            self.connect_errors,
            self.read_errors,
            self.write_errors,
            self.non2xx,
            self.inband,
            percentile(l, 50.0),
            percentile(l, 90.0),
            percentile(l, 99.0),
            l.last().copied().unwrap_or(0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn the_line_is_the_wrk_scripts() {
        let mut report = Report {
            latencies: vec![30, 10, 20],
            duration: Duration::from_millis(1500),
            read_errors: 2,
            non2xx: 1,
            inband: 3,
            ..Report::default()
        };
        let line: serde_json::Value = serde_json::from_str(&report.json_line()).expect("JSON");
        assert_eq!(line["requests"], 3);
        assert_eq!(line["duration_us"], 1_500_000);
        assert_eq!(line["read_errors"], 2);
        assert_eq!(line["non2xx"], 1);
        assert_eq!(line["inband_errors"], 3);
        assert_eq!(
            (line["p50_us"].clone(), line["max_us"].clone()),
            (20.into(), 30.into())
        );
    }
}
