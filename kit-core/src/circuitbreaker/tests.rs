//! The breaker's behaviour, driven through its layer with paused time.

use super::*;
use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
use crate::error::{BoxError, ErrorExt, ErrorKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_test::{assert_pending, assert_ready, assert_ready_err, assert_ready_ok, task};
use tower::ServiceExt;
use tower::{Layer, Service};

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
        .find::<BreakerError>()
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

#[tokio::test(start_paused = true)]
async fn breaker_errors_are_unavailable_however_they_are_boxed() {
    assert_eq!(BreakerError::Open.to_string(), "circuit breaker is open");
    assert_eq!(
        BreakerError::TooManyRequests.to_string(),
        "too many requests"
    );
    let (endpoint, _, _) = guarded(Settings::new());
    trip(&endpoint).await;
    let refused = endpoint
        .invoke(Step::Succeed)
        .await
        .expect_err("the breaker is open");
    assert_eq!(refused.kind(), ErrorKind::Unavailable);
    assert_eq!(refused.find::<BreakerError>(), Some(&BreakerError::Open));
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
    assert_eq!(error.find::<BreakerError>(), Some(&BreakerError::Open));

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
