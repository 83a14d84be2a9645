//! The limiters with paused time: exact counts of calls let through and refused.

use super::*;
use crate::context::{Context, DeadlineExceeded};
use crate::endpoint::{Endpoint, EndpointExt, ServiceBuilder, endpoint_fn};
use crate::error::{ErrorExt, ErrorKind};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{Layer, Service, ServiceExt};

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

/// An endpoint that echoes, and counts its calls.
fn counted() -> (Endpoint<u32, u32>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let endpoint = endpoint_fn(move |n: u32| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::convert::Infallible>(n) }
    });
    (endpoint, calls)
}

#[test]
fn rate_limited_is_resource_exhausted() {
    use crate::error::Classify;
    assert_eq!(RateLimited.to_string(), "rate limit exceeded");
    assert_eq!(RateLimited.kind(), ErrorKind::ResourceExhausted);
}

#[test]
fn quotas() {
    let limiter = Limiter::new(nonzero(100), nonzero(10));
    assert_eq!(limiter.burst(), nonzero(10));
    assert_eq!(limiter.replenish_interval(), Duration::from_millis(10));
    let slow = Limiter::with_period(Duration::from_secs(2), nonzero(1)).expect("a period");
    assert_eq!(slow.replenish_interval(), Duration::from_secs(2));
    assert!(Limiter::with_period(Duration::ZERO, nonzero(1)).is_none());
}

#[tokio::test(start_paused = true)]
async fn the_burst_passes_then_calls_are_refused() {
    let limiter = Limiter::new(nonzero(1), nonzero(3));
    for n in 0..3 {
        assert_eq!(limiter.check(), Ok(()), "token {n}");
    }
    assert_eq!(limiter.check(), Err(RateLimited));
    assert_eq!(limiter.check(), Err(RateLimited));
}

#[tokio::test(start_paused = true)]
async fn tokens_come_back_at_the_rate_up_to_the_burst() {
    let limiter = Limiter::new(nonzero(2), nonzero(3));
    for _ in 0..3 {
        limiter.check().expect("the bucket starts full");
    }
    tokio::time::advance(Duration::from_millis(499)).await;
    assert_eq!(limiter.check(), Err(RateLimited));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(limiter.check(), Ok(()), "one token every 500 ms");
    assert_eq!(limiter.check(), Err(RateLimited));

    tokio::time::advance(Duration::from_secs(3600)).await;
    for _ in 0..3 {
        limiter.check().expect("refilled");
    }
    assert_eq!(
        limiter.check(),
        Err(RateLimited),
        "never more than the burst"
    );
}

#[tokio::test(start_paused = true)]
async fn a_period_allows_rates_below_one_per_second() {
    let limiter = Limiter::with_period(Duration::from_secs(10), nonzero(2)).expect("a period");
    limiter.check().expect("first");
    limiter.check().expect("second");
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(limiter.check(), Err(RateLimited));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(limiter.check(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_bucket() {
    let limiter = Limiter::new(nonzero(1), nonzero(2));
    let clone = limiter.clone();
    limiter.check().expect("first");
    clone.check().expect("second");
    assert_eq!(limiter.check(), Err(RateLimited));
    assert_eq!(clone.check(), Err(RateLimited));
}

#[tokio::test(start_paused = true)]
async fn the_erroring_limiter_refuses_without_calling_the_endpoint() {
    let (endpoint, calls) = counted();
    let layer = ErroringLimiterLayer::new(Limiter::new(nonzero(1), nonzero(2)));
    let limited = Endpoint::new(ServiceBuilder::new().layer(layer.clone()).service(endpoint));

    assert_eq!(limited.invoke(1).await.expect("token 1"), 1);
    assert_eq!(limited.clone().invoke(2).await.expect("token 2"), 2);
    let error = limited.invoke(3).await.expect_err("no token left");
    assert!(error.find::<RateLimited>().is_some(), "{error}");
    assert_eq!(error.kind(), ErrorKind::ResourceExhausted);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Another service from the same layer spends the same bucket.
    let (other, other_calls) = counted();
    let other = Endpoint::new(layer.layer(other));
    assert!(other.invoke(4).await.is_err());
    assert_eq!(other_calls.load(Ordering::SeqCst), 0);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(other.invoke(5).await.expect("refilled"), 5);
}

#[tokio::test(start_paused = true)]
async fn the_erroring_limiter_passes_readiness_and_errors_on() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    handle.allow(0);
    let layer = ErroringLimiterLayer::new(Limiter::new(nonzero(1), nonzero(1)));
    let mut service = task::spawn(layer.layer(mock));
    assert_pending!(service.enter(|cx, mut service| service.poll_ready(cx)));
    handle.allow(1);
    assert!(service.is_woken());
    assert_ready_ok!(service.enter(|cx, mut service| service.poll_ready(cx)));
    let mut call = task::spawn(service.call("ping"));
    let (_, respond) = handle.next_request().await.expect("the call arrives");
    respond.send_error("inner failure");
    let error = assert_ready!(call.poll()).expect_err("the inner error");
    assert_eq!(error.to_string(), "inner failure");
}

#[tokio::test(start_paused = true)]
async fn until_ready_waits_exactly_until_a_token_is_due() {
    let limiter = Limiter::new(nonzero(1), nonzero(1));
    let start = Instant::now();
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    tokio::time::advance(Duration::from_millis(300)).await;
    limiter.until_ready().await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn the_delaying_limiter_spaces_calls_at_the_rate() {
    let (endpoint, calls) = counted();
    let limited: Endpoint<u32, u32> = Endpoint::new(
        ServiceBuilder::new()
            .layer(DelayingLimiterLayer::new(Limiter::new(
                nonzero(2),
                nonzero(1),
            )))
            .service(endpoint),
    );
    let start = Instant::now();
    let mut waiting = Vec::new();
    for n in 0..4 {
        let limited = limited.clone();
        waiting.push(tokio::spawn(async move {
            let answer = limited.invoke(n).await.expect("delayed, not refused");
            (answer, start.elapsed())
        }));
    }
    let mut finished = Vec::new();
    for task in waiting {
        finished.push(task.await.expect("join"));
    }
    let mut times: Vec<_> = finished.iter().map(|(_, took)| *took).collect();
    times.sort();
    assert_eq!(
        times,
        [0, 500, 1000, 1500].map(Duration::from_millis),
        "{finished:?}"
    );
    let mut answers: Vec<_> = finished.iter().map(|(answer, _)| *answer).collect();
    answers.sort();
    assert_eq!(answers, [0, 1, 2, 3]);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_call_reaches_the_endpoint_only_with_a_token() {
    let (endpoint, calls) = counted();
    let limiter = Limiter::new(nonzero(1), nonzero(1));
    limiter.check().expect("empty the bucket");
    let limited = Endpoint::new(DelayingLimiterLayer::new(limiter).layer(endpoint));
    let mut call = task::spawn(limited.invoke(7));
    assert_pending!(call.poll());
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_pending!(call.poll());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(call.is_woken());
    assert_eq!(assert_ready_ok!(call.poll()), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn each_delayed_call_takes_exactly_one_token() {
    let limiter = Limiter::new(nonzero(1), nonzero(3));
    let (endpoint, _) = counted();
    let limited = Endpoint::new(DelayingLimiterLayer::new(limiter.clone()).layer(endpoint));
    limited.invoke(1).await.expect("a token is there");
    limiter.check().expect("the second token is left");
    limiter.check().expect("the third token is left");
    assert_eq!(limiter.check(), Err(RateLimited));

    let start = Instant::now();
    limited.invoke(2).await.expect("waited for a token");
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    limiter
        .check()
        .expect("the waiter took only the token it waited for");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_takes_no_token_and_blocks_nobody() {
    let limiter = Limiter::new(nonzero(1), nonzero(1));
    let (endpoint, calls) = counted();
    let limited = Endpoint::new(DelayingLimiterLayer::new(limiter.clone()).layer(endpoint));
    limiter.check().expect("empty the bucket");

    let mut dropped = task::spawn(limited.invoke(1));
    let mut kept = task::spawn(limited.invoke(2));
    assert_pending!(dropped.poll());
    assert_pending!(kept.poll());
    drop(dropped);

    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        assert_ready_ok!(kept.poll()),
        2,
        "the other waiter got the token"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the dropped call never ran"
    );
    assert_eq!(
        limiter.check(),
        Err(RateLimited),
        "one token was due, and it was spent"
    );

    // A waiter dropped on its own leaves the next token in the bucket.
    let mut dropped = task::spawn(limiter.until_ready());
    assert_pending!(dropped.poll());
    drop(dropped);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(limiter.check(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn the_delaying_limiter_is_always_ready_and_waits_for_the_inner_service_after_the_token() {
    let (mock, mut handle) = tower_test::mock::pair::<&'static str, &'static str>();
    handle.allow(0);
    let limiter = Limiter::new(nonzero(1), nonzero(1));
    let mut service = DelayingLimiterLayer::new(limiter.clone()).layer(mock);
    let mut call = task::spawn(service.ready().await.expect("ready").call("ping"));
    assert_pending!(call.poll());
    assert_eq!(limiter.check(), Err(RateLimited), "the call took the token");
    handle.allow(1);
    assert!(call.is_woken(), "inner readiness wakes the call");
    assert_pending!(call.poll());
    let (request, respond) = handle.next_request().await.expect("the call arrives");
    assert_eq!(request, "ping");
    respond.send_response("pong");
    assert_eq!(assert_ready_ok!(call.poll()), "pong");
}

#[tokio::test(start_paused = true)]
async fn a_delayed_call_whose_token_comes_after_the_deadline_fails_at_once() {
    let (endpoint, calls) = counted();
    let limiter = Limiter::new(nonzero(1), nonzero(1));
    let limited = Endpoint::new(
        ServiceBuilder::new()
            .layer(DelayingLimiterLayer::new(limiter))
            .service(endpoint),
    );
    assert_eq!(limited.invoke(1).await.expect("the burst"), 1);

    // The next token is a second away; a caller with half a second left does not wait for it.
    let start = Instant::now();
    let hurried = Context::new().with_timeout(Duration::from_millis(500));
    let error = hurried
        .scope(limited.invoke(2))
        .await
        .expect_err("the token comes too late");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(error.find::<DeadlineExceeded>(), Some(&DeadlineExceeded));
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);

    // A caller with two seconds left waits for it.
    let patient = Context::new().with_timeout(Duration::from_secs(2));
    assert_eq!(patient.scope(limited.invoke(3)).await.expect("in time"), 3);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
