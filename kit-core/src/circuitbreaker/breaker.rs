//! The breaker's state machine, gobreaker's: states, generations, counts and settings.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::BreakerError;
use crate::error::BoxError;

/// How long an open breaker refuses calls unless [`Settings::timeout`] says otherwise
/// (gobreaker's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A circuit breaker (gobreaker's `CircuitBreaker`): the state that [`CircuitBreakerLayer`](super::CircuitBreakerLayer)
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

    /// Whether `error` counts as a failure, as the settings decide.
    pub(super) fn is_failure(&self, error: &BoxError) -> bool {
        (self.shared.settings.is_failure)(error)
    }

    /// The settings this breaker was made with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
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
    pub(super) fn before_request(&self) -> Result<u64, BreakerError> {
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
    pub(super) fn after_request(&self, generation: u64, failed: bool) {
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
    pub(super) fn release(&self, generation: u64) {
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
