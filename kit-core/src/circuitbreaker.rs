//! A circuit breaker middleware: stop calling a dependency that keeps failing, and try it again
//! later (Go kit's `circuitbreaker.Gobreaker`, with the semantics of `sony/gobreaker`).
//!
//! A breaker sits in front of an endpoint, usually a client endpoint that calls another service.
//! While the calls succeed it is **closed** and lets everything through, counting outcomes. When
//! the counts say the dependency is broken ([`Settings::ready_to_trip`], by default more than 5
//! consecutive failures) it **opens**: calls fail at once with [`BreakerError::Open`], without
//! reaching the endpoint, so a dead dependency costs nothing and gets time to recover. After
//! [`Settings::timeout`] (60 seconds by default) it turns **half-open** and lets a few trial
//! calls through ([`Settings::max_requests`], 1 by default); calls beyond those fail with
//! [`BreakerError::TooManyRequests`]. If the trials all succeed, it closes again; if any fails, it
//! opens for another timeout.
//!
//! | Go kit / gobreaker | kit-core |
//! |---|---|
//! | `gobreaker.NewCircuitBreaker(gobreaker.Settings{...})` | [`CircuitBreaker::new`]`(`[`Settings`]`)` |
//! | `circuitbreaker.Gobreaker(cb)` (an `endpoint.Middleware`) | [`CircuitBreakerLayer`] |
//! | `cb.State()`, `cb.Counts()` | [`CircuitBreaker::state`], [`CircuitBreaker::counts`] |
//! | `gobreaker.ErrOpenState`, `gobreaker.ErrTooManyRequests` | [`BreakerError::Open`], [`BreakerError::TooManyRequests`] |
//!
//! The state machine is gobreaker's: every change of state starts a new *generation* with zeroed
//! [`Counts`], and the outcome of a call that started in an earlier generation is ignored, so a
//! slow call that began before the breaker opened cannot close it again. Time is read lazily,
//! when a call arrives or the state is read; no timer runs in the background. Time is tokio's
//! clock ([`tokio::time::Instant`]), so tests can pause and advance it.
//!
//! Two things have no Go counterpart, because a Rust future can be dropped half-way:
//!
//! - a call whose response future is dropped before it completes (the caller gave up, a timeout
//!   layer outside the breaker fired) counts as neither a success nor a failure, and gives its
//!   request back: in the half-open state, that frees its trial slot, so an abandoned trial cannot
//!   leave the breaker half-open with no slot left, forever;
//! - a call whose endpoint panics counts as a failure, as gobreaker counts a panic.
//!
//! All clones of a [`CircuitBreaker`], and every layer and service built from one, share a single
//! state; a [`CircuitBreakerLayer`] made with [`CircuitBreakerLayer::new`] shares its breaker with
//! every service it wraps. Reading [`state`](CircuitBreaker::state) is how tests and metrics
//! observe it.
//!
//! Answered over HTTP, a [`BreakerError`] is a 503 Service Unavailable (see
//! [`status_code`](crate::error::status_code)).
//!
//! ```
//! use std::time::Duration;
//! use kit_core::circuitbreaker::{BreakerError, CircuitBreaker, Settings, State};
//! use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt, ServiceBuilder};
//! use kit_core::BoxError;
//!
//! # tokio_test::block_on(async {
//! let breaker = CircuitBreaker::new(
//!     Settings::new()
//!         .timeout(Duration::from_secs(30))
//!         .ready_to_trip(|counts| counts.consecutive_failures >= 2),
//! );
//! let upstream: Endpoint<u32, u32> =
//!     endpoint_fn(|_: u32| async { Err::<u32, _>("connection refused") });
//! let guarded: Endpoint<u32, u32> = Endpoint::new(
//!     ServiceBuilder::new()
//!         .layer(breaker.layer())
//!         .service(upstream),
//! );
//!
//! for _ in 0..2 {
//!     let err = guarded.invoke(1).await.unwrap_err();
//!     assert_eq!(err.to_string(), "connection refused");
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let err: BoxError = guarded.invoke(1).await.unwrap_err();
//! assert_eq!(err.downcast_ref::<BreakerError>(), Some(&BreakerError::Open));
//! # });
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use http::StatusCode;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::BoxError;
use crate::error::StatusCoder;

/// How long an open breaker refuses calls unless [`Settings::timeout`] says otherwise
/// (gobreaker's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the circuit breaker refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakerError {
    /// The breaker is open: the endpoint failed too often recently and is not called.
    #[error("circuit breaker is open")]
    Open,
    /// The breaker is half-open and already lets its trial requests through.
    #[error("too many requests")]
    TooManyRequests,
}

impl StatusCoder for BreakerError {
    /// 503 Service Unavailable: the dependency is deemed down, and the caller may retry later.
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Trial calls go through, at most [`Settings::max_requests`] of them.
    HalfOpen,
    /// Calls fail at once with [`BreakerError::Open`].
    Open,
}

impl fmt::Display for State {
    /// As gobreaker prints it: `closed`, `half-open` or `open`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Closed => "closed",
            State::HalfOpen => "half-open",
            State::Open => "open",
        })
    }
}

/// The requests and outcomes a breaker has counted in its current generation (gobreaker's
/// `Counts`). They are zeroed whenever the state changes, and in the closed state every
/// [`Settings::interval`], if one is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls let through (a call whose future was dropped unfinished is given back).
    pub requests: u32,
    /// Calls that succeeded.
    pub total_successes: u32,
    /// Calls that failed.
    pub total_failures: u32,
    /// Successes since the last failure.
    pub consecutive_successes: u32,
    /// Failures since the last success.
    pub consecutive_failures: u32,
}

impl Counts {
    fn on_request(&mut self) {
        self.requests = self.requests.saturating_add(1);
    }

    fn on_success(&mut self) {
        self.total_successes = self.total_successes.saturating_add(1);
        self.consecutive_successes = self.consecutive_successes.saturating_add(1);
        self.consecutive_failures = 0;
    }

    fn on_failure(&mut self) {
        self.total_failures = self.total_failures.saturating_add(1);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.consecutive_successes = 0;
    }
}

type TripFn = Arc<dyn Fn(&Counts) -> bool + Send + Sync>;
type IsFailureFn = Arc<dyn Fn(&BoxError) -> bool + Send + Sync>;

/// How a [`CircuitBreaker`] behaves (gobreaker's `Settings`). Start from [`Settings::new`] (or
/// `Default`), which has gobreaker's defaults, and change what you need.
#[derive(Clone)]
pub struct Settings {
    max_requests: u32,
    interval: Duration,
    timeout: Duration,
    ready_to_trip: TripFn,
    is_failure: IsFailureFn,
}

impl Settings {
    /// gobreaker's defaults: 1 trial request when half-open, counts never cleared while closed,
    /// open for 60 seconds, trip after more than 5 consecutive failures, every error a failure.
    pub fn new() -> Self {
        Settings {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: DEFAULT_TIMEOUT,
            ready_to_trip: Arc::new(|counts| counts.consecutive_failures > 5),
            is_failure: Arc::new(|_| true),
        }
    }

    /// How many calls a half-open breaker lets through; that many consecutive successes close
    /// it. Zero means 1, as in gobreaker.
    pub fn max_requests(mut self, max_requests: u32) -> Self {
        self.max_requests = max_requests.max(1);
        self
    }

    /// How often a closed breaker zeroes its counts, so that old failures are forgotten. Zero,
    /// the default, means never: only a change of state zeroes them.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long an open breaker refuses calls before it turns half-open. Zero means the
    /// default, [`DEFAULT_TIMEOUT`] (60 seconds), as in gobreaker.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = if timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            timeout
        };
        self
    }

    /// Decides, after each failure in the closed state, whether the breaker opens. The default
    /// is `counts.consecutive_failures > 5`.
    ///
    /// It runs while the breaker's state is locked: keep it quick, and do not call the breaker
    /// from it.
    pub fn ready_to_trip(
        mut self,
        ready_to_trip: impl Fn(&Counts) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.ready_to_trip = Arc::new(ready_to_trip);
        self
    }

    /// Decides whether an error counts as a failure. By default every error does.
    ///
    /// An error for which it returns `false` still reaches the caller, but counts as a success,
    /// as gobreaker's `IsSuccessful` does: use it for errors that say nothing about the health
    /// of the dependency, such as a request the dependency rightly rejected.
    pub fn is_failure(
        mut self,
        is_failure: impl Fn(&BoxError) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.is_failure = Arc::new(is_failure);
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("max_requests", &self.max_requests)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A circuit breaker (gobreaker's `CircuitBreaker`): the state that [`CircuitBreakerLayer`]
/// consults, and the handle to observe it.
///
/// Cloning it is cheap, and every clone shares the same state.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    settings: Settings,
    machine: Mutex<Machine>,
}

/// gobreaker's state machine, behind the mutex.
#[derive(Debug)]
struct Machine {
    state: State,
    generation: u64,
    counts: Counts,
    /// When the current generation ends: the end of the interval while closed, of the timeout
    /// while open. `None` for never (half-open, a closed breaker without an interval, or a time
    /// too far away to represent).
    expiry: Option<Instant>,
}

impl Machine {
    /// Applies the transitions that time alone causes, then says where the breaker stands
    /// (gobreaker's `currentState`).
    fn current(&mut self, settings: &Settings, now: Instant) -> (State, u64) {
        let expired = self.expiry.is_some_and(|expiry| now >= expiry);
        match self.state {
            State::Closed if expired => self.new_generation(settings, now),
            State::Open if expired => self.set_state(State::HalfOpen, settings, now),
            _ => {}
        }
        (self.state, self.generation)
    }

    fn set_state(&mut self, state: State, settings: &Settings, now: Instant) {
        if self.state != state {
            self.state = state;
            self.new_generation(settings, now);
        }
    }

    fn new_generation(&mut self, settings: &Settings, now: Instant) {
        self.generation = self.generation.wrapping_add(1);
        self.counts = Counts::default();
        self.expiry = match self.state {
            State::Closed if settings.interval.is_zero() => None,
            State::Closed => now.checked_add(settings.interval),
            State::Open => now.checked_add(settings.timeout),
            State::HalfOpen => None,
        };
    }
}

impl CircuitBreaker {
    /// A closed breaker with `settings`.
    pub fn new(settings: Settings) -> Self {
        let mut machine = Machine {
            state: State::Closed,
            generation: 0,
            counts: Counts::default(),
            expiry: None,
        };
        machine.new_generation(&settings, Instant::now());
        CircuitBreaker {
            shared: Arc::new(Shared {
                settings,
                machine: Mutex::new(machine),
            }),
        }
    }

    /// The current state. An open breaker whose timeout has passed reports (and becomes)
    /// half-open.
    pub fn state(&self) -> State {
        let mut machine = self.lock();
        machine.current(&self.shared.settings, Instant::now()).0
    }

    /// The counts of the current generation, after the same time-driven transitions as
    /// [`state`](Self::state) (so a closed breaker whose interval has passed shows zeroes).
    pub fn counts(&self) -> Counts {
        let mut machine = self.lock();
        machine.current(&self.shared.settings, Instant::now());
        machine.counts
    }

    /// The settings this breaker was made with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// A layer that puts this breaker in front of the services it wraps.
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer::from(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // A panic in a user's `ready_to_trip` poisons the mutex between two consistent states;
        // the machine itself is still valid, so carry on.
        self.shared
            .machine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a call or refuses it (gobreaker's `beforeRequest`); on admission, returns the
    /// generation the call belongs to.
    fn before_request(&self) -> Result<u64, BreakerError> {
        let mut machine = self.lock();
        let (state, generation) = machine.current(&self.shared.settings, Instant::now());
        match state {
            State::Open => return Err(BreakerError::Open),
            State::HalfOpen if machine.counts.requests >= self.shared.settings.max_requests => {
                return Err(BreakerError::TooManyRequests);
            }
            _ => {}
        }
        machine.counts.on_request();
        Ok(generation)
    }

    /// Records the outcome of a call admitted in `generation` (gobreaker's `afterRequest`).
    fn after_request(&self, generation: u64, failed: bool) {
        let settings = &self.shared.settings;
        let now = Instant::now();
        let mut machine = self.lock();
        let (state, current) = machine.current(settings, now);
        if current != generation {
            return;
        }
        match (state, failed) {
            (State::Closed, false) => machine.counts.on_success(),
            (State::Closed, true) => {
                machine.counts.on_failure();
                if (settings.ready_to_trip)(&machine.counts) {
                    machine.set_state(State::Open, settings, now);
                }
            }
            (State::HalfOpen, false) => {
                machine.counts.on_success();
                if machine.counts.consecutive_successes >= settings.max_requests {
                    machine.set_state(State::Closed, settings, now);
                }
            }
            (State::HalfOpen, true) => machine.set_state(State::Open, settings, now),
            (State::Open, _) => {}
        }
    }

    /// Gives back the request of a call admitted in `generation` that ended without an
    /// outcome, freeing its half-open slot.
    fn release(&self, generation: u64) {
        let mut machine = self.lock();
        let (_, current) = machine.current(&self.shared.settings, Instant::now());
        if current == generation {
            machine.counts.requests = machine.counts.requests.saturating_sub(1);
        }
    }
}

impl Default for CircuitBreaker {
    /// A breaker with the default [`Settings`].
    fn default() -> Self {
        CircuitBreaker::new(Settings::default())
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let machine = self.lock();
        f.debug_struct("CircuitBreaker")
            .field("state", &machine.state)
            .field("counts", &machine.counts)
            .field("settings", &self.shared.settings)
            .finish()
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
        let kind = match self.breaker.before_request() {
            Ok(generation) => Kind::Called {
                future: self.inner.call(request),
                ticket: Some(Ticket {
                    breaker: self.breaker.clone(),
                    generation,
                    polling: false,
                    settled: false,
                }),
            },
            Err(error) => Kind::Refused { error },
        };
        CircuitBreakerFuture { kind }
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
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
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
        match &self.kind {
            Kind::Refused { error } => out.field("refused", error),
            Kind::Called { ticket, .. } => out.field(
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
        match self.project().kind.project() {
            KindProj::Refused { error } => Poll::Ready(Err(error.clone().into())),
            KindProj::Called { future, ticket } => {
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
                        Err(error) => (ticket.breaker.shared.settings.is_failure)(error),
                    };
                    ticket.settle(failed);
                }
                Poll::Ready(result)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;
    use tokio_test::{assert_pending, assert_ready, assert_ready_err, assert_ready_ok, task};
    use tower::ServiceExt;

    /// What the test endpoint does with a call.
    enum Step {
        Succeed,
        Fail(&'static str),
        /// Waits for the test to decide the outcome.
        Wait(oneshot::Receiver<Result<(), &'static str>>),
        Panic,
    }

    /// An endpoint that does what each request says, and counts its calls.
    fn scripted() -> (Endpoint<Step, ()>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let endpoint = endpoint_fn(move |step: Step| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match step {
                    Step::Succeed => Ok(()),
                    Step::Fail(message) => Err(BoxError::from(message)),
                    Step::Wait(outcome) => match outcome.await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(message)) => Err(BoxError::from(message)),
                        Err(_) => Err(BoxError::from("test dropped the outcome")),
                    },
                    Step::Panic => panic!("the endpoint panicked"),
                }
            }
        });
        (endpoint, calls)
    }

    fn guarded(settings: Settings) -> (Endpoint<Step, ()>, CircuitBreaker, Arc<AtomicUsize>) {
        let (endpoint, calls) = scripted();
        let layer = CircuitBreakerLayer::new(settings);
        let breaker = layer.breaker().clone();
        let endpoint = Endpoint::new(ServiceBuilder::new().layer(layer).service(endpoint));
        (endpoint, breaker, calls)
    }

    fn breaker_error(result: Result<(), BoxError>) -> BreakerError {
        let error = result.expect_err("the breaker refuses");
        error
            .downcast_ref::<BreakerError>()
            .cloned()
            .unwrap_or_else(|| panic!("not a BreakerError: {error}"))
    }

    /// Trips a default breaker: six consecutive failures.
    async fn trip(endpoint: &Endpoint<Step, ()>) {
        for _ in 0..6 {
            let error = endpoint
                .invoke(Step::Fail("boom"))
                .await
                .expect_err("fails");
            assert_eq!(error.to_string(), "boom");
        }
    }

    #[test]
    fn states_display_as_gobreaker_names_them() {
        assert_eq!(State::Closed.to_string(), "closed");
        assert_eq!(State::HalfOpen.to_string(), "half-open");
        assert_eq!(State::Open.to_string(), "open");
    }

    #[test]
    fn breaker_errors_are_503() {
        assert_eq!(BreakerError::Open.to_string(), "circuit breaker is open");
        assert_eq!(
            BreakerError::TooManyRequests.to_string(),
            "too many requests"
        );
        assert_eq!(
            BreakerError::Open.status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            BreakerError::TooManyRequests.status_code(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stays_closed_through_five_failures_and_opens_on_the_sixth() {
        let (endpoint, breaker, calls) = guarded(Settings::new());
        for n in 1..=5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
            assert_eq!(breaker.state(), State::Closed, "after {n} failures");
        }
        assert_eq!(
            breaker.counts(),
            Counts {
                requests: 5,
                total_successes: 0,
                total_failures: 5,
                consecutive_successes: 0,
                consecutive_failures: 5,
            }
        );
        let error = endpoint
            .invoke(Step::Fail("boom"))
            .await
            .expect_err("fails");
        assert_eq!(
            error.to_string(),
            "boom",
            "the tripping call keeps its own error"
        );
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(breaker.counts(), Counts::default(), "a new generation");
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_consecutive_failures() {
        let (endpoint, breaker, _) = guarded(Settings::new());
        for _ in 0..5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        }
        endpoint.invoke(Step::Succeed).await.expect("succeeds");
        for _ in 0..5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        }
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(
            breaker.counts(),
            Counts {
                requests: 11,
                total_successes: 1,
                total_failures: 10,
                consecutive_successes: 0,
                consecutive_failures: 5,
            }
        );
        assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        assert_eq!(breaker.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_without_calling_the_endpoint() {
        let (endpoint, breaker, calls) = guarded(Settings::new());
        trip(&endpoint).await;
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        for _ in 0..10 {
            assert_eq!(
                breaker_error(endpoint.invoke(Step::Succeed).await),
                BreakerError::Open
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            6,
            "the endpoint was not called"
        );
        assert_eq!(
            breaker.counts(),
            Counts::default(),
            "refusals are not counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_timeout_one_trial_goes_through_and_a_second_is_refused() {
        let (endpoint, breaker, calls) = guarded(Settings::new());
        trip(&endpoint).await;

        tokio::time::advance(DEFAULT_TIMEOUT - Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), State::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), State::HalfOpen);

        let (decide, outcome) = oneshot::channel();
        let mut trial = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(trial.poll());
        assert_eq!(breaker.counts().requests, 1);

        assert_eq!(
            breaker_error(endpoint.invoke(Step::Succeed).await),
            BreakerError::TooManyRequests
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            7,
            "only the trial reached the endpoint"
        );

        decide.send(Ok(())).expect("the trial waits");
        assert_ready_ok!(trial.poll());
        assert_eq!(
            breaker.state(),
            State::Closed,
            "the trial's success closes it"
        );
        assert_eq!(breaker.counts(), Counts::default());
        endpoint.invoke(Step::Succeed).await.expect("closed again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_the_breaker_for_another_timeout() {
        let (endpoint, breaker, calls) = guarded(Settings::new());
        trip(&endpoint).await;
        tokio::time::advance(DEFAULT_TIMEOUT).await;

        let error = endpoint
            .invoke(Step::Fail("still down"))
            .await
            .expect_err("fails");
        assert_eq!(error.to_string(), "still down");
        assert_eq!(breaker.state(), State::Open);

        tokio::time::advance(DEFAULT_TIMEOUT - Duration::from_millis(1)).await;
        assert_eq!(
            breaker_error(endpoint.invoke(Step::Succeed).await),
            BreakerError::Open
        );
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), State::HalfOpen);
        endpoint
            .invoke(Step::Succeed)
            .await
            .expect("the trial succeeds");
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_allows_max_requests_trials_and_needs_as_many_successes() {
        let (endpoint, breaker, _) = guarded(
            Settings::new()
                .max_requests(3)
                .timeout(Duration::from_secs(5))
                .ready_to_trip(|counts| counts.total_failures >= 2),
        );
        assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        endpoint.invoke(Step::Succeed).await.expect("succeeds");
        assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        assert_eq!(
            breaker.state(),
            State::Open,
            "the custom predicate tripped it"
        );

        tokio::time::advance(Duration::from_secs(5)).await;
        let mut trials = Vec::new();
        let mut decisions = Vec::new();
        for _ in 0..3 {
            let (decide, outcome) = oneshot::channel();
            let mut trial = task::spawn(endpoint.invoke(Step::Wait(outcome)));
            assert_pending!(trial.poll());
            trials.push(trial);
            decisions.push(decide);
        }
        assert_eq!(
            breaker_error(endpoint.invoke(Step::Succeed).await),
            BreakerError::TooManyRequests
        );
        for (n, (mut trial, decide)) in trials.into_iter().zip(decisions).enumerate() {
            assert_eq!(breaker.state(), State::HalfOpen, "after {n} successes");
            decide.send(Ok(())).expect("the trial waits");
            assert_ready_ok!(trial.poll());
        }
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_and_services_of_one_layer_share_the_breaker() {
        let (first, calls) = scripted();
        let (second, _) = scripted();
        let layer = CircuitBreakerLayer::new(Settings::new());
        let first = Endpoint::new(layer.layer(first));
        let second = Endpoint::new(layer.layer(second));
        let observer = layer.breaker().clone();

        // Failures through clones of one service and through another service add up.
        for n in 0..6 {
            let service = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            assert!(service.invoke(Step::Fail("boom")).await.is_err());
        }
        assert_eq!(observer.state(), State::Open);
        assert_eq!(
            breaker_error(second.invoke(Step::Succeed).await),
            BreakerError::Open
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // A layer built from the same breaker shares it too.
        let (third, third_calls) = scripted();
        let third = Endpoint::new(observer.layer().layer(third));
        assert_eq!(
            breaker_error(third.invoke(Step::Succeed).await),
            BreakerError::Open
        );
        assert_eq!(third_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_interval_clears_counts_while_closed() {
        let (endpoint, breaker, _) = guarded(Settings::new().interval(Duration::from_secs(10)));
        for _ in 0..5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        }
        assert_eq!(breaker.counts().consecutive_failures, 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.counts(), Counts::default());
        for _ in 0..5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        }
        assert_eq!(
            breaker.state(),
            State::Closed,
            "the old failures were forgotten"
        );

        // Without an interval, the same failures trip it.
        let (endpoint, breaker, _) = guarded(Settings::new());
        for _ in 0..5 {
            assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        }
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(breaker.counts().consecutive_failures, 5);
        assert!(endpoint.invoke(Step::Fail("boom")).await.is_err());
        assert_eq!(breaker.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_that_are_not_failures_count_as_successes() {
        let (endpoint, breaker, _) =
            guarded(Settings::new().is_failure(|error| error.to_string() != "bad request"));
        for _ in 0..10 {
            let error = endpoint
                .invoke(Step::Fail("bad request"))
                .await
                .expect_err("fails");
            assert_eq!(
                error.to_string(),
                "bad request",
                "the caller still sees the error"
            );
        }
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.counts().total_successes, 10);
        assert_eq!(breaker.counts().total_failures, 0);
        trip(&endpoint).await;
        assert_eq!(breaker.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_trial_frees_its_slot() {
        let (endpoint, breaker, calls) = guarded(Settings::new());
        trip(&endpoint).await;
        tokio::time::advance(DEFAULT_TIMEOUT).await;

        let (_decide, outcome) = oneshot::channel();
        let mut trial = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(trial.poll());
        assert_eq!(
            breaker_error(endpoint.invoke(Step::Succeed).await),
            BreakerError::TooManyRequests
        );
        drop(trial);
        assert_eq!(breaker.state(), State::HalfOpen, "no outcome was counted");
        assert_eq!(breaker.counts(), Counts::default());

        endpoint
            .invoke(Step::Succeed)
            .await
            .expect("a new trial is let through");
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(calls.load(Ordering::SeqCst), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_call_counts_nothing_while_closed() {
        let (endpoint, breaker, _) = guarded(Settings::new());
        let (_decide, outcome) = oneshot::channel();
        let mut call = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(call.poll());
        assert_eq!(breaker.counts().requests, 1);
        drop(call);
        assert_eq!(breaker.counts(), Counts::default());
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_from_an_older_generation_are_ignored() {
        let (endpoint, breaker, _) = guarded(Settings::new());
        let (decide, outcome) = oneshot::channel();
        let mut slow = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(slow.poll());
        trip(&endpoint).await;
        tokio::time::advance(DEFAULT_TIMEOUT).await;
        assert_eq!(breaker.state(), State::HalfOpen);

        // The slow call started while closed; its success must not count as the trial.
        decide.send(Ok(())).expect("the call waits");
        assert_ready_ok!(slow.poll());
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(breaker.counts(), Counts::default());

        // Nor does its failure re-open the breaker.
        let (decide, outcome) = oneshot::channel();
        let mut trial = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(trial.poll());
        assert_eq!(breaker.counts().requests, 1);
        decide.send(Err("late failure")).expect("the trial waits");
        assert_ready_err!(trial.poll());
        assert_eq!(breaker.state(), State::Open, "the trial itself failed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_failure_does_not_reopen_a_closed_breaker() {
        let (endpoint, breaker, _) = guarded(Settings::new());
        trip(&endpoint).await;
        tokio::time::advance(DEFAULT_TIMEOUT).await;
        endpoint
            .invoke(Step::Succeed)
            .await
            .expect("the trial succeeds");
        assert_eq!(breaker.state(), State::Closed);

        let (decide, outcome) = oneshot::channel();
        let mut call = task::spawn(endpoint.invoke(Step::Wait(outcome)));
        assert_pending!(call.poll());
        // The breaker trips and recovers while the call is out.
        trip(&endpoint).await;
        tokio::time::advance(DEFAULT_TIMEOUT).await;
        endpoint
            .invoke(Step::Succeed)
            .await
            .expect("the trial succeeds");
        assert_eq!(breaker.state(), State::Closed);

        decide.send(Err("late")).expect("the call waits");
        assert_ready_err!(call.poll());
        assert_eq!(
            breaker.counts(),
            Counts::default(),
            "counted in no generation"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_endpoint_counts_as_a_failure() {
        let (endpoint, breaker, _) =
            guarded(Settings::new().ready_to_trip(|counts| counts.consecutive_failures >= 1));
        let joined = tokio::spawn(endpoint.invoke(Step::Panic)).await;
        assert!(joined.expect_err("the task panicked").is_panic());
        assert_eq!(breaker.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_is_the_inner_services() {
        let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
        handle.allow(0);
        let layer = CircuitBreakerLayer::new(Settings::new());
        let mut service = task::spawn(layer.layer(mock));

        assert_pending!(service.enter(|cx, mut service| service.poll_ready(cx)));
        handle.allow(1);
        assert!(service.is_woken(), "readiness wakes the caller");
        assert_ready_ok!(service.enter(|cx, mut service| service.poll_ready(cx)));

        let mut call = task::spawn(service.call("ping"));
        assert_pending!(call.poll());
        let (request, respond) = handle.next_request().await.expect("the call arrives");
        assert_eq!(request, "ping");
        respond.send_response("pong");
        assert_eq!(assert_ready_ok!(call.poll()), "pong");

        // Errors from readiness are boxed and passed on.
        handle.send_error("broken");
        let error = assert_ready!(service.enter(|cx, mut service| service.poll_ready(cx)))
            .expect_err("readiness fails");
        assert_eq!(error.to_string(), "broken");
        assert_eq!(
            layer.breaker().counts(),
            Counts {
                requests: 1,
                total_successes: 1,
                consecutive_successes: 1,
                ..Counts::default()
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_call_leaves_the_readiness_for_the_next_call() {
        let (endpoint, breaker, _) = guarded(Settings::new());
        trip(&endpoint).await;
        let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
        handle.allow(1);
        let mut service = breaker.layer().layer(mock);
        service.ready().await.expect("ready");
        let error = service
            .call("refused")
            .await
            .expect_err("the breaker is open");
        assert_eq!(
            error.downcast_ref::<BreakerError>(),
            Some(&BreakerError::Open)
        );

        // The mock panics when called without readiness: the refusal did not use it up.
        tokio::time::advance(DEFAULT_TIMEOUT).await;
        let mut call = task::spawn(service.call("trial"));
        assert_pending!(call.poll());
        let (request, respond) = handle.next_request().await.expect("the trial arrives");
        assert_eq!(request, "trial");
        respond.send_response("ok");
        assert_eq!(assert_ready_ok!(call.poll()), "ok");
        assert_eq!(breaker.state(), State::Closed);
    }
}
