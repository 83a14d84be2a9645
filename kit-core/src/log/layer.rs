//! A middleware that logs every call of an endpoint, as Go kit addsvc's `LoggingMiddleware`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{Logger, or_null};
use crate::duration::GoDuration;

/// Logs one line per call: `method=<name> transport_error=<error or null> took=<duration>`, with
/// `peer=<address>` after the method for a client endpoint that was given [its
/// peer](LoggingLayer::peer).
///
/// It sees what the endpoint returns, so business errors carried inside a successful response
/// (Go kit's `Failer`) are not transport errors; log those in a service middleware. A line
/// written while a server handles a request that carries a request id or a deadline starts with
/// them, from the request's span (see [the module docs](super)).
///
/// ```
/// use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
/// use kit_core::log::{Format, Logger, LoggingLayer};
///
/// # tokio_test::block_on(async {
/// let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().unwrap();
/// let sum: Endpoint<(i64, i64), i64> = endpoint_fn(|(a, b): (i64, i64)| async move {
///     Ok::<_, std::convert::Infallible>(a + b)
/// });
/// let logged = ServiceBuilder::new()
///     .layer(LoggingLayer::new(logger, "sum"))
///     .service(sum);
/// assert_eq!(logged.invoke((1, 2)).await.unwrap(), 3);
/// assert!(lines.contents().starts_with("method=sum transport_error=null took="));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct LoggingLayer {
    shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
struct Shared {
    logger: Logger,
    method: String,
    peer: Option<String>,
}

impl LoggingLayer {
    /// Logs calls to `logger`, naming them `method`.
    pub fn new(logger: Logger, method: impl Into<String>) -> Self {
        LoggingLayer {
            shared: Arc::new(Shared {
                logger,
                method: method.into(),
                peer: None,
            }),
        }
    }

    /// Names the remote a client endpoint calls, written as `peer=<peer>` on each line.
    pub fn peer(mut self, peer: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.shared).peer = Some(peer.into());
        self
    }
}

impl<S> Layer<S> for LoggingLayer {
    type Service = Logging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Logging {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`LoggingLayer`] wraps around an endpoint.
#[derive(Debug, Clone)]
pub struct Logging<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, Req> Service<Req> for Logging<S>
where
    S: Service<Req>,
    S::Error: fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = LoggingFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        LoggingFuture {
            inner: self.inner.call(request),
            started: Instant::now(),
            shared: self.shared.clone(),
            logged: false,
        }
    }
}

pin_project! {
    /// The response future of [`Logging`]. Dropped before it finishes (the client went away, a
    /// timeout outside fired), it still logs the call, with `transport_error=canceled`.
    #[derive(Debug)]
    pub struct LoggingFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        shared: Arc<Shared>,
        logged: bool,
    }

    impl<F> PinnedDrop for LoggingFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.logged {
                this.shared.log(&Some("canceled"), *this.started);
            }
        }
    }
}

impl Shared {
    fn log(&self, error: &Option<impl fmt::Display>, started: Instant) {
        let took = GoDuration(started.elapsed());
        self.logger.in_scope(|| {
            tracing::info!(
                method = self.method.as_str(),
                peer = self.peer.as_deref(),
                transport_error = %or_null(error.as_ref()),
                took = %took,
            );
        });
    }
}

impl<F, T, E> Future for LoggingFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Display,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        *this.logged = true;
        this.shared.log(&result.as_ref().err(), *this.started);
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxError;
    use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
    use crate::log::Format;

    #[tokio::test]
    async fn logs_successes_and_errors() {
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        let half: Endpoint<i64, i64> = endpoint_fn(|n: i64| async move {
            if n % 2 == 0 {
                Ok(n / 2)
            } else {
                Err(BoxError::from("odd number"))
            }
        });
        let logged = ServiceBuilder::new()
            .layer(LoggingLayer::new(logger, "half"))
            .service(half);
        assert_eq!(logged.invoke(4).await.expect("even"), 2);
        assert!(logged.invoke(3).await.is_err());
        let lines = lines.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("method=half transport_error=null took="),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("method=half transport_error=\"odd number\" took="),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn a_call_abandoned_half_way_is_logged_as_canceled() {
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        let never: Endpoint<i64, i64> = endpoint_fn(|_: i64| async {
            std::future::pending::<()>().await;
            Ok::<_, BoxError>(0)
        });
        let logged = ServiceBuilder::new()
            .layer(LoggingLayer::new(logger, "never"))
            .service(never);
        let call = logged.invoke(1);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(1), call)
                .await
                .is_err()
        );
        let lines = lines.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("method=never transport_error=canceled took="),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn a_client_endpoint_names_its_peer() {
        let (logger, lines) = Logger::builder(Format::Logfmt).to_buffer().expect("logger");
        let echo: Endpoint<i64, i64> = endpoint_fn(|n: i64| async move { Ok::<_, BoxError>(n) });
        let logged = ServiceBuilder::new()
            .layer(LoggingLayer::new(logger, "echo").peer("http://10.0.0.1:8080/echo"))
            .service(echo);
        assert_eq!(logged.invoke(1).await.expect("echo"), 1);
        let lines = lines.lines();
        assert!(
            lines[0].starts_with(
                "method=echo peer=http://10.0.0.1:8080/echo transport_error=null took="
            ),
            "{lines:?}"
        );
    }
}
