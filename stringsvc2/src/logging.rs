//! Application logging: a service middleware that logs every call with its arguments and
//! results, which only the service layer knows.

use std::time::Instant;

use kit_core::duration::GoDuration;
use kit_core::log::{Logger, or_null};
use stringsvc1::service::StringService;

// ANCHOR: middleware
/// Logs one line per call of the wrapped service, through the logger it was given.
#[derive(Debug, Clone)]
pub struct LoggingMiddleware<S> {
    /// Where the lines go.
    pub logger: Logger,
    /// The service being logged.
    pub next: S,
}
// ANCHOR_END: middleware

// ANCHOR: impl
impl<S: StringService + Sync> StringService for LoggingMiddleware<S> {
    type Error = S::Error;

    async fn uppercase(&self, s: &str) -> Result<String, S::Error> {
        let begin = Instant::now();
        let result = self.next.uppercase(s).await;
        self.logger.in_scope(|| {
            tracing::info!(
                method = "uppercase",
                input = s,
                output = result.as_deref().unwrap_or(""),
                err = %or_null(result.as_ref().err()),
                took = %GoDuration(begin.elapsed()),
            );
        });
        result
    }

    async fn count(&self, s: &str) -> usize {
        let begin = Instant::now();
        let n = self.next.count(s).await;
        self.logger.in_scope(|| {
            tracing::info!(
                method = "count",
                input = s,
                n,
                took = %GoDuration(begin.elapsed()),
            );
        });
        n
    }
}
// ANCHOR_END: impl

#[cfg(test)]
mod tests {
    use super::*;
    use kit_core::log::Format;
    use stringsvc1::service::{BasicStringService, ServiceError};

    /// A line with its `took` value, which varies, cut off.
    fn without_took(line: &str) -> &str {
        line.rsplit_once(" took=")
            .or_else(|| line.rsplit_once(",\"took\":"))
            .map_or(line, |(rest, _)| rest)
    }

    #[tokio::test]
    async fn one_line_per_call_in_both_formats() {
        for (format, expected) in [
            (
                Format::Logfmt,
                [
                    r#"method=uppercase input="hello, world" output="HELLO, WORLD" err=null"#,
                    r#"method=uppercase input= output= err="Empty string""#,
                    r#"method=count input="hello, world" n=12"#,
                ],
            ),
            (
                Format::Json,
                [
                    r#"{"method":"uppercase","input":"hello, world","output":"HELLO, WORLD","err":null"#,
                    r#"{"method":"uppercase","input":"","output":"","err":"Empty string""#,
                    r#"{"method":"count","input":"hello, world","n":12"#,
                ],
            ),
        ] {
            let (logger, lines) = Logger::builder(format).to_buffer().expect("logger");
            let svc = LoggingMiddleware {
                logger,
                next: BasicStringService,
            };
            assert_eq!(
                svc.uppercase("hello, world").await.as_deref(),
                Ok("HELLO, WORLD")
            );
            assert_eq!(svc.uppercase("").await, Err(ServiceError::Empty));
            assert_eq!(svc.count("hello, world").await, 12);
            let lines = lines.lines();
            let cut: Vec<&str> = lines.iter().map(|l| without_took(l)).collect();
            assert_eq!(cut, expected, "{format}");
            for line in &lines {
                let took = line.rsplit_once("took").map(|(_, t)| t).unwrap_or("");
                assert!(
                    ["ns", "µs", "ms"].iter().any(|unit| took.contains(unit)),
                    "{line}"
                );
            }
        }
    }
}
