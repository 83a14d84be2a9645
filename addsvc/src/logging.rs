//! Application logging: a service middleware that logs every call with its arguments and
//! results, as Go kit's `addservice.LoggingMiddleware`.

use kit_core::log::{Logger, or_null};

use crate::service::{AddService, Error};

// ANCHOR: middleware
/// Logs one line per call of the wrapped service: `method=Sum a=1 b=2 v=3 err=null`.
#[derive(Debug, Clone)]
pub struct LoggingMiddleware<S> {
    /// Where the lines go.
    pub logger: Logger,
    /// The service being logged.
    pub next: S,
}

impl<S: AddService + Sync> AddService for LoggingMiddleware<S> {
    async fn sum(&self, a: i64, b: i64) -> Result<i64, Error> {
        let result = self.next.sum(a, b).await;
        self.logger.in_scope(|| {
            tracing::info!(
                method = "Sum",
                a,
                b,
                v = *result.as_ref().unwrap_or(&0),
                err = %or_null(result.as_ref().err()),
            );
        });
        result
    }

    async fn concat(&self, a: &str, b: &str) -> Result<String, Error> {
        let result = self.next.concat(a, b).await;
        self.logger.in_scope(|| {
            tracing::info!(
                method = "Concat",
                a,
                b,
                v = result.as_deref().unwrap_or(""),
                err = %or_null(result.as_ref().err()),
            );
        });
        result
    }
}
// ANCHOR_END: middleware

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BasicService;
    use kit_core::log::Format;

    #[tokio::test]
    async fn one_line_per_call() {
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        let svc = LoggingMiddleware {
            logger,
            next: BasicService,
        };
        assert_eq!(svc.sum(1, 2).await.ok(), Some(3));
        assert!(svc.sum(0, 0).await.is_err());
        assert!(svc.concat("hello", "world!").await.is_err());
        assert_eq!(
            lines.lines(),
            [
                "method=Sum a=1 b=2 v=3 err=null",
                "method=Sum a=0 b=0 v=0 err=\"can't sum two zeroes\"",
                "method=Concat a=hello b=world! v= err=\"result exceeds maximum size\"",
            ]
        );
    }
}
