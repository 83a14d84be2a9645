//! Load balancing and retries over the endpoints of a service's instances (Go kit's `sd/lb`).
//!
//! A [`Balancer`] picks one endpoint per call from an [`Endpointer`](crate::sd::Endpointer):
//! [`RoundRobin`] in turn, [`Random`] at random. [`retry`] turns a balancer back into a single
//! endpoint that tries again, on the next endpoint the balancer picks, when a call fails, until
//! an attempt succeeds, the attempts run out, or the overall deadline passes.
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `lb.Balancer`, `lb.ErrNoEndpoints` | [`Balancer`], [`NoEndpoints`] |
//! | `lb.NewRoundRobin(endpointer)` | [`RoundRobin::new`] |
//! | `lb.NewRandom(endpointer, seed)` | [`Random::new`] |
//! | `lb.Retry(max, timeout, balancer)` | [`retry`] |
//! | `lb.RetryWithCallback(timeout, balancer, cb)` | [`retry_with_callback`] |
//! | `lb.RetryError` | [`RetryError`] |
//!
//! [`NoEndpoints`] and a [`RetryError`] whose attempts all failed are
//! [`Unavailable`](crate::error::ErrorKind::Unavailable) failures (503 at an HTTP edge), and a
//! [`RetryError`] whose deadline passed is [`DeadlineExceeded`](crate::error::ErrorKind::DeadlineExceeded)
//! (504).

mod balancer;
mod retry;

pub use balancer::{Balancer, NoEndpoints, Random, RoundRobin};
pub use retry::{Decision, RetryError, retry, retry_with_callback};
