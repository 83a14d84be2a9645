//! Retries: one endpoint made of a balancer, trying again on the next endpoint when a call fails.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Balancer;
use crate::context::Context;
use crate::duration::GoDuration;
use crate::endpoint::{Endpoint, ServiceExt, endpoint_fn};
use crate::error::{BoxError, Classify, Error, ErrorExt, ErrorKind};

/// What to do after a failed attempt, as a [`retry_with_callback`] callback decides.
#[derive(Debug)]
pub enum Decision {
    /// Try again, on the next endpoint the balancer picks.
    Retry,
    /// Stop, failing with a [`RetryError`] whose last error is the attempt's. The callback
    /// judged that error final, so the call fails with its [kind](crate::error::ErrorKind)
    /// (a `NotFound` stays not found).
    GiveUp,
    /// Stop, failing with a [`RetryError`] whose last error is this one instead.
    GiveUpWith(BoxError),
}

/// A retrying endpoint gave up (Go kit's `lb.RetryError`): every attempt failed, or the deadline
/// passed first. It keeps every attempt's error, in order.
///
/// Displays as Go kit does, `<last error> (previously: <first>; <second>)`, and for a deadline
/// `retry deadline of 250ms exceeded (previously: ...)`. Its [`source`](std::error::Error::source)
/// is the last error.
///
/// Its [kind](Classify): [`DeadlineExceeded`](ErrorKind::DeadlineExceeded) when time ran out
/// (the retry's own deadline, the caller's, or the last attempt's);
/// [`Unavailable`](ErrorKind::Unavailable) when the attempts ran out, since no instance could
/// answer; and the last error's kind when a [callback](retry_with_callback) gave up on it.
#[derive(Debug)]
pub struct RetryError {
    errors: Vec<BoxError>,
    ended: Ended,
    kind: ErrorKind,
}

/// Why the retries stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// No attempt was left.
    Exhausted,
    /// The callback gave up.
    GaveUp,
    /// The retry's own deadline passed: the budget it had.
    Deadline(Duration),
    /// The caller's deadline passed first: the time that was left of it.
    CallerDeadline(Duration),
}

impl RetryError {
    fn new(errors: Vec<BoxError>, ended: Ended) -> Self {
        let last_kind = errors.last().map(|error| error.kind());
        let kind = match ended {
            Ended::Deadline(_) | Ended::CallerDeadline(_) => ErrorKind::DeadlineExceeded,
            _ if last_kind == Some(ErrorKind::DeadlineExceeded) => ErrorKind::DeadlineExceeded,
            Ended::Exhausted => ErrorKind::Unavailable,
            Ended::GaveUp => last_kind.unwrap_or(ErrorKind::Unavailable),
        };
        RetryError {
            errors,
            ended,
            kind,
        }
    }

    /// The errors of the attempts, first to last; for a deadline, only the attempts that ended
    /// before it.
    pub fn errors(&self) -> &[BoxError] {
        &self.errors
    }

    /// The error that ended the retries: the last attempt's (or the callback's replacement).
    pub fn last(&self) -> Option<&BoxError> {
        self.errors.last()
    }

    /// The time the attempts had, if a deadline is what stopped them: the retry's own timeout,
    /// or what was left of the caller's deadline when that came sooner.
    pub fn timed_out(&self) -> Option<Duration> {
        match self.ended {
            Ended::Deadline(budget) | Ended::CallerDeadline(budget) => Some(budget),
            Ended::Exhausted | Ended::GaveUp => None,
        }
    }
}

impl Classify for RetryError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous = match self.ended {
            Ended::Deadline(timeout) => {
                write!(f, "retry deadline of {} exceeded", GoDuration(timeout))?;
                &self.errors[..]
            }
            Ended::CallerDeadline(_) => {
                f.write_str("deadline exceeded")?;
                &self.errors[..]
            }
            Ended::Exhausted | Ended::GaveUp => match self.errors.split_last() {
                Some((last, previous)) => {
                    write!(f, "{last}")?;
                    previous
                }
                None => return f.write_str("no attempt was made"),
            },
        };
        if let Some((first, rest)) = previous.split_first() {
            write!(f, " (previously: {first}")?;
            for error in rest {
                write!(f, "; {error}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for RetryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if self.timed_out().is_some() {
            return None;
        }
        self.errors
            .last()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// A point in time a year away: as good as never, for a timer.
fn far_future(now: Instant) -> Instant {
    now + Duration::from_secs(365 * 24 * 3600)
}

/// How long a retry waits, when there was nothing to call, before it asks the balancer again.
const NO_ENDPOINT_PAUSE: Duration = Duration::from_millis(10);

/// An endpoint that calls `balancer`'s pick and, when the call fails, tries again on the next
/// pick, for at most `max_attempts` attempts in all, all within one `timeout` (Go kit's
/// `lb.Retry`).
///
/// Attempts follow each other at once, with no backoff, each on the endpoint after the previous
/// attempt's (see [`Balancer::pick`]), so one call's attempts go to distinct instances even under
/// concurrent load. A failure is any error the endpoint returns; a business error inside a
/// successful response is a success, and is not retried.
///
/// The attempts never outlast the caller: when the request's [context](crate::context) has a
/// deadline sooner than `timeout`, that deadline bounds them, as Go kit's retry bounds them by
/// its context's.
///
/// ```
/// use std::time::Duration;
/// use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt};
/// use kit_core::lb::{retry, RoundRobin};
/// use kit_core::sd::{Endpointer, FixedInstancer};
///
/// # tokio_test::block_on(async {
/// let instancer = FixedInstancer::new(["up", "down"]);
/// let endpointer = Endpointer::new(&instancer, |instance: &str| {
///     let up = instance == "up";
///     let endpoint: Endpoint<u32, u32> = endpoint_fn(move |n: u32| async move {
///         if up { Ok(n + 1) } else { Err("connection refused") }
///     });
///     Ok::<_, kit_core::BoxError>(endpoint)
/// });
/// let call = retry(3, Duration::from_millis(250), RoundRobin::new(endpointer));
/// assert_eq!(call.invoke(1).await.unwrap(), 2);
/// # });
/// ```
pub fn retry<Req, Resp, B>(
    max_attempts: usize,
    timeout: Duration,
    balancer: B,
) -> Endpoint<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
    B: Balancer<Req, Resp>,
{
    attempts(timeout, balancer, move |attempt, _: &BoxError| {
        if attempt < max_attempts {
            Next::Retry
        } else {
            Next::Stop(Ended::Exhausted, None)
        }
    })
}

/// Like [`retry`], with `callback` deciding after each failed attempt (numbered from 1) whether
/// to try again (Go kit's `lb.RetryWithCallback`). Only `timeout` (and the caller's deadline)
/// bounds the attempts when the callback always says [`Decision::Retry`].
pub fn retry_with_callback<Req, Resp, B, F>(
    timeout: Duration,
    balancer: B,
    callback: F,
) -> Endpoint<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
    B: Balancer<Req, Resp>,
    F: Fn(usize, &BoxError) -> Decision + Send + Sync + 'static,
{
    attempts(
        timeout,
        balancer,
        move |attempt, error: &BoxError| match callback(attempt, error) {
            Decision::Retry => Next::Retry,
            Decision::GiveUp => Next::Stop(Ended::GaveUp, None),
            Decision::GiveUpWith(replacement) => Next::Stop(Ended::GaveUp, Some(replacement)),
        },
    )
}

/// What follows a failed attempt.
enum Next {
    Retry,
    /// Stop for this reason, with an error to add after the attempt's.
    Stop(Ended, Option<BoxError>),
}

fn attempts<Req, Resp, B, F>(timeout: Duration, balancer: B, next: F) -> Endpoint<Req, Resp>
where
    Req: Clone + Send + 'static,
    Resp: Send + 'static,
    B: Balancer<Req, Resp>,
    F: Fn(usize, &BoxError) -> Next + Send + Sync + 'static,
{
    let shared = Arc::new((balancer, next));
    endpoint_fn(move |request: Req| {
        let shared = shared.clone();
        async move {
            let (balancer, next) = &*shared;
            let now = Instant::now();
            // ANCHOR: deadline
            // The retry's own budget, unless the caller has less time left. The attempts run in
            // a context with that deadline, so each client endpoint tells its callee how long
            // it will be waited for.
            let own = now.checked_add(timeout);
            let caller = Context::current();
            let (deadline, expiry) = match (caller.deadline(), own) {
                (Some(theirs), Some(ours)) if theirs >= ours => (ours, Ended::Deadline(timeout)),
                (Some(theirs), _) => (
                    theirs,
                    Ended::CallerDeadline(theirs.saturating_duration_since(now)),
                ),
                (None, Some(ours)) => (ours, Ended::Deadline(timeout)),
                // A budget too long to represent: only the caller could bound it, and it does not.
                (None, None) => (far_future(now), Ended::Deadline(timeout)),
            };
            let ctx = caller.with_deadline(deadline);
            // ANCHOR_END: deadline
            let deadline = tokio::time::sleep_until(deadline);
            tokio::pin!(deadline);
            let mut errors: Vec<BoxError> = Vec::new();
            let mut attempt = 0;
            let mut previous = None;
            loop {
                attempt += 1;
                let mut nothing_to_call = false;
                let result = match balancer.pick(previous) {
                    // Nothing to call counts as a failed attempt: discovery may yet find some.
                    Err(error) => {
                        nothing_to_call = true;
                        Err(error)
                    }
                    Ok((at, endpoint)) => {
                        previous = Some(at);
                        // `pick` gave a clone of its own: called as it is, not cloned again
                        // (a per-instance endpoint's clone allocates, layer by boxed layer).
                        tokio::select! {
                            biased;
                            () = &mut deadline => {
                                return Err(Error::from(RetryError::new(errors, expiry)));
                            }
                            result = ctx.clone().scope(endpoint.oneshot(request.clone())) => result,
                        }
                    }
                };
                let error = match result {
                    Ok(response) => return Ok(response),
                    Err(error) => error,
                };
                match next(attempt, &error) {
                    Next::Retry => {
                        errors.push(error);
                        if nothing_to_call {
                            // Wait a little for discovery to find an instance, rather than
                            // spin until the deadline.
                            tokio::select! {
                                biased;
                                () = &mut deadline => {
                                    return Err(Error::from(RetryError::new(errors, expiry)));
                                }
                                () = tokio::time::sleep(NO_ENDPOINT_PAUSE) => {}
                            }
                        }
                    }
                    Next::Stop(ended, replacement) => {
                        errors.push(error);
                        errors.extend(replacement);
                        return Err(Error::from(RetryError::new(errors, ended)));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EndpointExt;
    use crate::lb::{NoEndpoints, RoundRobin};
    use crate::sd::{Endpointer, FixedInstancer};
    use std::sync::Mutex;

    /// Instances named "ok…" answer with their name; others fail with "<name> refused", or,
    /// named "slow…", never answer. Every call is recorded.
    fn endpointer(instances: &[&str], calls: Arc<Mutex<Vec<String>>>) -> Endpointer<(), String> {
        let instancer = FixedInstancer::new(instances.iter().copied());
        Endpointer::new(&instancer, move |instance: &str| {
            let name = instance.to_owned();
            let calls = calls.clone();
            let endpoint: Endpoint<(), String> = endpoint_fn(move |()| {
                let name = name.clone();
                calls.lock().expect("lock").push(name.clone());
                async move {
                    if name.starts_with("ok") {
                        Ok(name)
                    } else if name.starts_with("slow") {
                        std::future::pending::<()>().await;
                        Ok(name)
                    } else {
                        Err(BoxError::from(format!("{name} refused")))
                    }
                }
            });
            Ok::<_, BoxError>(endpoint)
        })
    }

    #[tokio::test]
    async fn each_attempt_goes_to_the_next_instance() {
        let calls = Arc::default();
        let call = retry(
            3,
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&["a", "b", "ok-c"], Arc::clone(&calls))),
        );
        assert_eq!(call.invoke(()).await.expect("third works"), "ok-c");
        assert_eq!(*calls.lock().expect("lock"), ["a", "b", "ok-c"]);
    }

    #[tokio::test]
    async fn giving_up_lists_every_attempt_like_go_kit() {
        let calls = Arc::default();
        let call = retry(
            3,
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&["a", "b"], Arc::clone(&calls))),
        );
        let err = call.invoke(()).await.expect_err("all fail");
        assert_eq!(
            err.to_string(),
            "a refused (previously: a refused; b refused)"
        );
        let retry_error = err.find::<RetryError>().expect("a RetryError");
        assert_eq!(retry_error.errors().len(), 3);
        assert_eq!(retry_error.timed_out(), None);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(*calls.lock().expect("lock"), ["a", "b", "a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_covers_all_attempts() {
        let calls = Arc::default();
        let call = retry(
            3,
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&["a", "slow"], Arc::clone(&calls))),
        );
        let started = tokio::time::Instant::now();
        let err = call.invoke(()).await.expect_err("times out");
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert_eq!(
            err.to_string(),
            "retry deadline of 250ms exceeded (previously: a refused)"
        );
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    }

    #[tokio::test]
    async fn no_endpoints_is_an_attempt_that_failed() {
        let call = retry(
            2,
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&[], Arc::default())),
        );
        let err = call.invoke(()).await.expect_err("nothing to call");
        assert_eq!(
            err.to_string(),
            "no endpoints available (previously: no endpoints available)"
        );
        let retry_error = err.find::<RetryError>().expect("a RetryError");
        assert!(
            retry_error
                .last()
                .is_some_and(|e| e.find::<NoEndpoints>().is_some())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_nothing_to_call_a_callback_that_never_gives_up_stops_at_the_deadline() {
        let call = retry_with_callback(
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&[], Arc::default())),
            |_, _: &BoxError| Decision::Retry,
        );
        let started = tokio::time::Instant::now();
        let err = call.invoke(()).await.expect_err("nothing to call");
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        let retry_error = err.find::<RetryError>().expect("a RetryError");
        assert!(retry_error.timed_out().is_some());
        // One attempt every 10 ms, not a spin.
        assert_eq!(retry_error.errors().len(), 25);
    }

    #[tokio::test]
    async fn the_callback_decides() {
        let calls = Arc::default();
        let call = retry_with_callback(
            Duration::from_secs(1),
            RoundRobin::new(endpointer(&["a", "b", "c"], Arc::clone(&calls))),
            |attempt, error: &BoxError| {
                if error.to_string().starts_with('b') {
                    Decision::GiveUpWith(format!("gave up after {attempt}").into())
                } else {
                    Decision::Retry
                }
            },
        );
        let err = call.invoke(()).await.expect_err("gives up at b");
        assert_eq!(
            err.to_string(),
            "gave up after 2 (previously: a refused; b refused)"
        );
        assert_eq!(*calls.lock().expect("lock"), ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_callers_deadline_bounds_the_attempts_when_it_is_sooner() {
        let calls = Arc::default();
        let call = retry(
            3,
            Duration::from_millis(250),
            RoundRobin::new(endpointer(&["a", "slow"], Arc::clone(&calls))),
        );
        let started = tokio::time::Instant::now();
        let caller = Context::new().with_timeout(Duration::from_millis(100));
        let err = caller.scope(call.invoke(())).await.expect_err("times out");
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        assert_eq!(err.to_string(), "deadline exceeded (previously: a refused)");
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        let retry_error = err.find::<RetryError>().expect("a RetryError");
        assert_eq!(retry_error.timed_out(), Some(Duration::from_millis(100)));

        // A caller with more time than the retry's budget changes nothing.
        let started = tokio::time::Instant::now();
        let relaxed = Context::new().with_timeout(Duration::from_secs(10));
        let err = relaxed.scope(call.invoke(())).await.expect_err("times out");
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert!(
            err.to_string()
                .starts_with("retry deadline of 250ms exceeded")
        );
    }

    #[tokio::test]
    async fn a_callback_that_gives_up_keeps_the_kind_of_the_final_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("no such thing")]
        struct Missing;
        impl Classify for Missing {
            fn kind(&self) -> ErrorKind {
                ErrorKind::NotFound
            }
        }
        let instancer = FixedInstancer::new(["a", "b"]);
        let endpointer = Endpointer::new(&instancer, |_: &str| {
            Ok::<_, BoxError>(endpoint_fn(|()| async { Err::<(), _>(Missing) }))
        });
        let call = retry_with_callback(
            Duration::from_secs(1),
            RoundRobin::new(endpointer),
            |_, error: &BoxError| {
                if error.kind() == ErrorKind::NotFound {
                    Decision::GiveUp
                } else {
                    Decision::Retry
                }
            },
        );
        let err = call.invoke(()).await.expect_err("not found");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "no such thing");
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_see_the_retry_deadline_and_a_huge_budget_does_not_overflow() {
        // One instance that records the time its calls have left.
        fn recorder(seen: &Arc<Mutex<Vec<Option<Duration>>>>) -> RoundRobin<(), ()> {
            let seen = seen.clone();
            let endpointer = Endpointer::new(&FixedInstancer::new(["a"]), move |_: &str| {
                let seen = seen.clone();
                Ok::<_, BoxError>(endpoint_fn(move |()| {
                    seen.lock()
                        .expect("lock")
                        .push(Context::current().remaining());
                    async { Ok::<_, BoxError>(()) }
                }))
            });
            RoundRobin::new(endpointer)
        }
        let seen = Arc::default();
        let bounded = retry(3, Duration::from_millis(250), recorder(&seen));
        bounded.invoke(()).await.expect("answered");
        let endless = retry(3, Duration::MAX, recorder(&seen));
        endless.invoke(()).await.expect("answered");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen[0], Some(Duration::from_millis(250)));
        assert!(
            seen[1].is_some_and(|left| left > Duration::from_secs(3600)),
            "{seen:?}"
        );
    }
}
