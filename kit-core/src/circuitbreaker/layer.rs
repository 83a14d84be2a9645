//! The tower layer that puts a [`CircuitBreaker`] in front of a service.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{BreakerError, CircuitBreaker, Settings};
use crate::error::{BoxError, Error};

impl CircuitBreaker {
    /// A layer that puts this breaker in front of the services it wraps.
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer::from(self.clone())
    }
}

/// A tower layer that guards services with a [`CircuitBreaker`] (Go kit's
/// `circuitbreaker.Gobreaker`).
///
/// Every service this layer wraps, and every clone of them, consults the same breaker: build
/// one layer per dependency. To guard several endpoints of one dependency with one breaker,
/// build the layers from the same [`CircuitBreaker`] (with [`CircuitBreaker::layer`] or
/// `From`).
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: CircuitBreaker,
}

impl CircuitBreakerLayer {
    /// A layer with a new breaker made from `settings`.
    pub fn new(settings: Settings) -> Self {
        CircuitBreakerLayer {
            breaker: CircuitBreaker::new(settings),
        }
    }

    /// The breaker this layer consults, to read its state.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl From<CircuitBreaker> for CircuitBreakerLayer {
    fn from(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

/// The service [`CircuitBreakerLayer`] wraps around an endpoint.
///
/// Readiness is the inner service's. A call the breaker refuses fails at once without reaching
/// the inner service, even though the inner service was polled ready for it: tower allows a
/// ready service not to be called, and the readiness it reserved stays with this service for the
/// next call (or is released when the service is dropped).
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S> {
    inner: S,
    breaker: CircuitBreaker,
}

impl<S> CircuitBreakerService<S> {
    /// The breaker this service consults, to read its state.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, Req> Service<Req> for CircuitBreakerService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = CircuitBreakerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let call = match self.breaker.before_request() {
            Ok(generation) => Call::Called {
                future: self.inner.call(request),
                ticket: Some(Ticket {
                    breaker: self.breaker.clone(),
                    generation,
                    polling: false,
                    settled: false,
                }),
            },
            Err(error) => Call::Refused { error },
        };
        CircuitBreakerFuture { call }
    }
}

/// An admitted call's claim on the breaker: settled with an outcome when the call completes, or
/// on drop when it does not.
struct Ticket {
    breaker: CircuitBreaker,
    generation: u64,
    /// Set while the inner future is being polled: dropping the ticket then means that poll
    /// panicked.
    polling: bool,
    settled: bool,
}

impl Ticket {
    fn settle(mut self, failed: bool) {
        self.settled = true;
        self.breaker.after_request(self.generation, failed);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.polling {
            // Unwinding out of the inner future's poll: the call panicked, which gobreaker
            // counts as a failure.
            self.breaker.after_request(self.generation, true);
        } else {
            // Dropped unfinished: no outcome to count, but the request is given back.
            self.breaker.release(self.generation);
        }
    }
}

pin_project! {
    /// The response future of [`CircuitBreakerService`].
    pub struct CircuitBreakerFuture<F> {
        #[pin]
        call: Call<F>,
    }
}

pin_project! {
    #[project = CallProj]
    enum Call<F> {
        Refused { error: BreakerError },
        Called {
            #[pin]
            future: F,
            ticket: Option<Ticket>,
        },
    }
}

impl<F> fmt::Debug for CircuitBreakerFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("CircuitBreakerFuture");
        match &self.call {
            Call::Refused { error } => out.field("refused", error),
            Call::Called { ticket, .. } => out.field(
                "generation",
                &ticket.as_ref().map(|ticket| ticket.generation),
            ),
        };
        out.finish_non_exhaustive()
    }
}

impl<F, T, E> Future for CircuitBreakerFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().call.project() {
            CallProj::Refused { error } => Poll::Ready(Err(Error::from(error.clone()).into())),
            CallProj::Called { future, ticket } => {
                if let Some(ticket) = ticket.as_mut() {
                    ticket.polling = true;
                }
                let polled = future.poll(cx);
                if let Some(ticket) = ticket.as_mut() {
                    ticket.polling = false;
                }
                let result = std::task::ready!(polled).map_err(Into::into);
                if let Some(ticket) = ticket.take() {
                    let failed = match &result {
                        Ok(_) => false,
                        Err(error) => ticket.breaker.is_failure(error),
                    };
                    ticket.settle(failed);
                }
                Poll::Ready(result)
            }
        }
    }
}
