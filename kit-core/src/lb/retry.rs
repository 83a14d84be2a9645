//! Retries: one endpoint made of a balancer, trying again on the next endpoint when a call fails.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::BoxError;
use crate::endpoint::{Endpoint, EndpointExt, endpoint_fn};

use super::Balancer;

/// What to do after a failed attempt, as a [`retry_with_callback`] callback decides.
#[derive(Debug)]
pub enum Decision {
    /// Try again, on the next endpoint the balancer picks.
    Retry,
    /// Stop, failing with a [`RetryError`] whose last error is the attempt's.
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
#[derive(Debug)]
pub struct RetryError {
    errors: Vec<BoxError>,
    timed_out: Option<Duration>,
}

impl RetryError {
    /// The errors of the attempts, first to last; for a deadline, only the attempts that ended
    /// before it.
    pub fn errors(&self) -> &[BoxError] {
        &self.errors
    }

    /// The error that ended the retries: the last attempt's (or the callback's replacement).
    pub fn last(&self) -> Option<&BoxError> {
        self.errors.last()
    }

    /// The deadline, if that is what stopped the retries.
    pub fn timed_out(&self) -> Option<Duration> {
        self.timed_out
    }
}

impl fmt::Display for RetryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let previous = match self.timed_out {
            Some(timeout) => {
                write!(
                    f,
                    "retry deadline of {} exceeded",
                    crate::log::GoDuration(timeout)
                )?;
                &self.errors[..]
            }
            None => match self.errors.split_last() {
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
        if self.timed_out.is_some() {
            return None;
        }
        self.errors
            .last()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
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
    retry_with_callback(timeout, balancer, move |attempt, _: &BoxError| {
        if attempt < max_attempts {
            Decision::Retry
        } else {
            Decision::GiveUp
        }
    })
}

/// Like [`retry`], with `callback` deciding after each failed attempt (numbered from 1) whether
/// to try again (Go kit's `lb.RetryWithCallback`). Only `timeout` bounds the attempts when the
/// callback always says [`Decision::Retry`].
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
    let shared = Arc::new((balancer, callback));
    endpoint_fn(move |request: Req| {
        let shared = shared.clone();
        async move {
            let (balancer, callback) = &*shared;
            let deadline = tokio::time::sleep(timeout);
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
                        tokio::select! {
                            biased;
                            () = &mut deadline => {
                                return Err(RetryError { errors, timed_out: Some(timeout) });
                            }
                            result = endpoint.invoke(request.clone()) => result,
                        }
                    }
                };
                let error = match result {
                    Ok(response) => return Ok(response),
                    Err(error) => error,
                };
                let decision = callback(attempt, &error);
                match decision {
                    Decision::Retry => {
                        errors.push(error);
                        if nothing_to_call {
                            // Wait a little for discovery to find an instance, rather than
                            // spin until the deadline.
                            tokio::select! {
                                biased;
                                () = &mut deadline => {
                                    return Err(RetryError { errors, timed_out: Some(timeout) });
                                }
                                () = tokio::time::sleep(NO_ENDPOINT_PAUSE) => {}
                            }
                        }
                    }
                    Decision::GiveUp | Decision::GiveUpWith(_) => {
                        errors.push(error);
                        if let Decision::GiveUpWith(replacement) = decision {
                            errors.push(replacement);
                        }
                        return Err(RetryError {
                            errors,
                            timed_out: None,
                        });
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let retry_error = err.downcast_ref::<RetryError>().expect("a RetryError");
        assert_eq!(retry_error.errors().len(), 3);
        assert_eq!(retry_error.timed_out(), None);
        assert_eq!(
            crate::error::status_code(err.as_ref()),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
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
        assert_eq!(
            crate::error::status_code(err.as_ref()),
            http::StatusCode::GATEWAY_TIMEOUT
        );
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
        let retry_error = err.downcast_ref::<RetryError>().expect("a RetryError");
        assert!(retry_error.last().is_some_and(|e| e.is::<NoEndpoints>()));
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
        let retry_error = err.downcast_ref::<RetryError>().expect("a RetryError");
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
}
