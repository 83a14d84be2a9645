//! A timeout that the call it bounds can see: the call runs in a context whose deadline is the
//! timeout's, so a client endpoint inside it sends that deadline on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{self, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Sleep;
use tower::{Layer, Service};

use super::{Context, DeadlineExceeded};
use crate::error::{BoxError, Error};

/// Gives each call a deadline `timeout` from its start, or the caller's if that is sooner, and
/// fails the call with [`DeadlineExceeded`] when it passes (Go's `context.WithTimeout` around a
/// call).
///
/// Unlike tower's `TimeoutLayer`, the call sees its deadline: it runs with a [`Context`] that
/// carries it, so a client endpoint inside it tells the service it calls how long it will be
/// waited for.
///
/// ```
/// use std::time::Duration;
/// use kit_core::context::{Context, DeadlineLayer};
/// use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let left: Endpoint<(), Option<Duration>> =
///     endpoint_fn(|()| async { Ok::<_, kit_core::BoxError>(Context::current().remaining()) });
/// let bounded = ServiceBuilder::new()
///     .layer(DeadlineLayer::new(Duration::from_millis(80)))
///     .service(left);
/// let seen = bounded.invoke(()).await.unwrap().unwrap();
/// assert!(seen <= Duration::from_millis(80));
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    /// Calls may take `timeout` at most.
    pub fn new(timeout: Duration) -> Self {
        DeadlineLayer { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service [`DeadlineLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
}

impl<S, Req> Service<Req> for Deadline<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let ctx = Context::current().with_timeout(self.timeout);
        // `with_timeout` leaves a deadline unless the timeout is too long to represent.
        let sleep = ctx.deadline().map(tokio::time::sleep_until);
        let inner = &mut self.inner;
        let future = ctx.clone().sync_scope(|| inner.call(request));
        DeadlineFuture {
            inner: ctx.scope(future),
            sleep,
        }
    }
}

pin_project! {
    /// The response future of [`Deadline`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Context, F>,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F> fmt::Debug for DeadlineFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineFuture")
            .field("deadline", &self.sleep.as_ref().map(Sleep::deadline))
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep
                .poll(cx)
                .map(|()| Err(Error::from(DeadlineExceeded).into())),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
    use crate::error::{ErrorExt, ErrorKind};

    fn sees_its_deadline() -> Endpoint<u64, Option<Duration>> {
        endpoint_fn(|sleep_ms: u64| async move {
            let left = Context::current().remaining();
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
            Ok::<_, BoxError>(left)
        })
    }

    #[tokio::test(start_paused = true)]
    async fn the_call_sees_the_sooner_deadline_and_fails_when_it_passes() {
        let bounded = Endpoint::new(
            ServiceBuilder::new()
                .layer(DeadlineLayer::new(Duration::from_millis(80)))
                .service(sees_its_deadline()),
        );
        assert_eq!(
            bounded.invoke(10).await.expect("in time"),
            Some(Duration::from_millis(80))
        );
        let started = tokio::time::Instant::now();
        let err = bounded.invoke(1000).await.expect_err("too slow");
        assert_eq!(started.elapsed(), Duration::from_millis(80));
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        assert_eq!(err.to_string(), "deadline exceeded");

        // A caller with less time left keeps its own deadline.
        let hurried = Context::new().with_timeout(Duration::from_millis(30));
        assert_eq!(
            hurried.scope(bounded.invoke(10)).await.expect("in time"),
            Some(Duration::from_millis(30))
        );
    }
}
