//! The token bucket: governor's GCRA on tokio's clock.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::RateLimited;

/// governor's clock, read from tokio's: nanoseconds since the limiter was made.
#[derive(Debug, Clone)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        // u64 nanoseconds last 584 years; saturate rather than panic beyond.
        Nanos::new(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// A token bucket shared by all its clones (the `*rate.Limiter` Go kit's limiters take).
///
/// It starts full, with `burst` tokens, and gains one token every
/// [`replenish_interval`](Self::replenish_interval) up to `burst`.
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

struct Shared {
    gcra: Gcra,
    quota: Quota,
}

impl Limiter {
    /// A bucket that gains `per_second` tokens a second and holds at most `burst`
    /// (Go's `rate.NewLimiter(rate.Limit(per_second), burst)`).
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self::from_quota(Quota::per_second(per_second).allow_burst(burst))
    }

    /// A bucket that gains one token every `replenish_one_per` and holds at most `burst`
    /// (Go's `rate.NewLimiter(rate.Every(replenish_one_per), burst)`), for rates of one a
    /// second or slower, or any rate that is not a whole number per second.
    ///
    /// `None` if `replenish_one_per` is zero.
    pub fn with_period(replenish_one_per: Duration, burst: NonZeroU32) -> Option<Self> {
        Quota::with_period(replenish_one_per)
            .map(|quota| Self::from_quota(quota.allow_burst(burst)))
    }

    fn from_quota(quota: Quota) -> Self {
        let clock = TokioClock {
            start: Instant::now(),
        };
        Limiter {
            shared: Arc::new(Shared {
                gcra: RateLimiter::direct_with_clock(quota, clock),
                quota,
            }),
        }
    }

    /// The most tokens the bucket holds.
    pub fn burst(&self) -> NonZeroU32 {
        self.shared.quota.burst_size()
    }

    /// How long the bucket takes to gain one token.
    pub fn replenish_interval(&self) -> Duration {
        self.shared.quota.replenish_interval()
    }

    /// Takes a token if there is one (Go's `limit.Allow()`).
    pub fn check(&self) -> Result<(), RateLimited> {
        self.acquire().map_err(|_| RateLimited)
    }

    /// Waits until a token is available and takes it (Go's `limit.Wait(ctx)`).
    ///
    /// The wait is a tokio sleep until the time governor says a token will be there, repeated
    /// if another caller took it first. Dropping the future stops waiting, and a dropped waiter
    /// has taken nothing. Waiters are not served in order of arrival.
    pub async fn until_ready(&self) {
        while let Err(wait) = self.acquire() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token, or says how long until one is available.
    pub(super) fn acquire(&self) -> Result<(), Duration> {
        let gcra = &self.shared.gcra;
        gcra.check()
            .map_err(|not_until| not_until.wait_time_from(gcra.clock().now()))
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("burst", &self.burst())
            .field("replenish_interval", &self.replenish_interval())
            .finish()
    }
}
