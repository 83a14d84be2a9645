//! The proxy's endpoint with in-process instances, so that time is under the test's control:
//! retries, circuit breakers and rate limits as the proxy composes them.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use kit_core::BoxError;
use kit_core::endpoint::{EndpointExt, endpoint_fn};
use kit_core::error::Classify;
use kit_core::transport::http::Url;
use kit_core::transport::http::status_for;
use stringsvc1::endpoint::{UppercaseRequest, UppercaseResponse};
use stringsvc1::service::{BasicStringService, ServiceError, StringService};
use stringsvc3::proxying::{
    ProxyError, ProxyOptions, ProxyingMiddleware, UppercaseEndpoint, proxy_endpoint,
};

/// Instances living in the test: each can be taken down (its calls then fail as a refused
/// connection would), and every call is counted.
#[derive(Clone, Default)]
struct Fleet {
    down: Arc<Mutex<BTreeSet<String>>>,
    calls: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Fleet {
    fn client(&self) -> impl Fn(Url) -> UppercaseEndpoint + Send + Sync + 'static {
        let fleet = self.clone();
        move |url: Url| {
            let fleet = fleet.clone();
            let host = url.authority().to_owned();
            endpoint_fn(move |req: UppercaseRequest| {
                let fleet = fleet.clone();
                let host = host.clone();
                async move {
                    *fleet
                        .calls
                        .lock()
                        .expect("lock")
                        .entry(host.clone())
                        .or_default() += 1;
                    if fleet.down.lock().expect("lock").contains(&host) {
                        return Err(BoxError::from(format!("{host}: connection refused")));
                    }
                    let answer = match BasicStringService.uppercase(&req.s).await {
                        Ok(v) => UppercaseResponse { v, err: None },
                        Err(err) => UppercaseResponse {
                            v: String::new(),
                            err: Some(err.to_string()),
                        },
                    };
                    Ok(answer)
                }
            })
        }
    }

    fn set_down(&self, hosts: &[&str]) {
        *self.down.lock().expect("lock") = hosts.iter().map(|h| (*h).to_owned()).collect();
    }

    fn calls(&self) -> usize {
        self.calls.lock().expect("lock").values().sum()
    }

    fn calls_to(&self, host: &str) -> usize {
        self.calls
            .lock()
            .expect("lock")
            .get(host)
            .copied()
            .unwrap_or(0)
    }
}

const INSTANCES: [&str; 3] = ["a:8001", "b:8002", "c:8003"];

fn proxy(fleet: &Fleet, options: &ProxyOptions) -> ProxyingMiddleware<BasicStringService> {
    let instances: Vec<String> = INSTANCES.iter().map(|i| (*i).to_owned()).collect();
    let uppercase = proxy_endpoint(&instances, options, fleet.client()).expect("valid instances");
    ProxyingMiddleware {
        uppercase: Some(uppercase),
        next: BasicStringService,
    }
}

type Answer = Result<String, ProxyError<ServiceError>>;

/// The message and HTTP status of a call the instances could not answer.
fn unavailable(result: Answer) -> (String, StatusCode) {
    match result {
        Err(ProxyError::Unavailable(err)) => (err.to_string(), status_for(err.kind())),
        other => panic!("expected the proxy to be unavailable, got {other:?}"),
    }
}

/// The answer of a call that succeeded.
fn ok(result: Answer) -> String {
    result.unwrap_or_else(|err| panic!("the call failed: {err}"))
}

/// Whether the call ended with an instance's business error for an empty string.
fn empty(result: &Answer) -> bool {
    matches!(result, Err(ProxyError::Remote(message)) if message == "Empty string")
        && result
            .as_ref()
            .is_err_and(|err| status_for(err.kind()) == StatusCode::BAD_REQUEST)
}

#[tokio::test(start_paused = true)]
async fn calls_go_round_robin_and_count_stays_local() {
    let fleet = Fleet::default();
    let svc = proxy(&fleet, &ProxyOptions::default());
    for s in ["foo", "bar", "baz"] {
        assert_eq!(ok(svc.uppercase(s).await), s.to_uppercase());
    }
    for host in INSTANCES {
        assert_eq!(fleet.calls_to(host), 1, "{host}");
    }
    assert_eq!(svc.count("hello").await, 5);
    assert_eq!(fleet.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_dead_instance_is_skipped_by_the_retry() {
    let fleet = Fleet::default();
    fleet.set_down(&["b:8002"]);
    let svc = proxy(&fleet, &ProxyOptions::default());
    for n in 0..30 {
        assert_eq!(ok(svc.uppercase(&format!("x{n}")).await), format!("X{n}"));
    }
    // b failed 6 times in a row, then its breaker opened and it was no longer called.
    assert_eq!(fleet.calls_to("b:8002"), 6);
}

#[tokio::test(start_paused = true)]
async fn an_empty_string_is_a_business_error_and_is_not_retried() {
    let fleet = Fleet::default();
    let svc = proxy(&fleet, &ProxyOptions::default());
    assert!(empty(&svc.uppercase("").await));
    assert_eq!(fleet.calls(), 1);
    // Nor does it count against the instance's breaker: seven in a row leave it closed.
    for _ in 0..7 {
        assert!(empty(&svc.uppercase("").await));
    }
    assert_eq!(fleet.calls(), 8);
    assert_eq!(ok(svc.uppercase("ok").await), "OK".to_owned());
}

#[tokio::test(start_paused = true)]
async fn when_all_are_down_the_breakers_open_then_close_after_a_trial() {
    let fleet = Fleet::default();
    fleet.set_down(&INSTANCES);
    let svc = proxy(&fleet, &ProxyOptions::default());

    // Each call makes 3 attempts; after 6 calls every instance has failed 6 times in a row.
    let (message, status) = unavailable(svc.uppercase("foo").await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        message,
        "c:8003: connection refused \
         (previously: a:8001: connection refused; b:8002: connection refused)"
    );
    for _ in 0..5 {
        unavailable(svc.uppercase("foo").await);
    }
    assert_eq!(fleet.calls(), 18);

    // Now the breakers are open: calls fail at once, without reaching the instances.
    let (message, status) = unavailable(svc.uppercase("foo").await);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        message,
        "circuit breaker is open (previously: circuit breaker is open; circuit breaker is open)"
    );
    assert_eq!(fleet.calls(), 18);

    // After the open period, with the instances back, a trial request closes each breaker.
    fleet.set_down(&[]);
    tokio::time::advance(Duration::from_secs(60)).await;
    for s in ["foo", "bar", "baz", "qux"] {
        assert_eq!(ok(svc.uppercase(s).await), s.to_uppercase());
    }
    assert_eq!(fleet.calls(), 22);
}

/// The request context of each call an instance receives: its request id and time left.
type Received = Arc<Mutex<Vec<(Option<String>, Option<Duration>)>>>;

/// A proxy in front of one instance that never answers, and what that instance received.
fn stalled_proxy() -> (ProxyingMiddleware<BasicStringService>, Received) {
    use kit_core::context::{Context, RequestId};
    let received: Received = Arc::default();
    let seen = received.clone();
    let uppercase = proxy_endpoint(
        &["slow:1".to_owned()],
        &ProxyOptions::default(),
        move |_url| {
            let seen = seen.clone();
            endpoint_fn(move |_: UppercaseRequest| {
                // What a client endpoint would send on: the id and the time left.
                let ctx = Context::current();
                seen.lock().expect("lock").push((
                    ctx.get::<RequestId>().map(|id| id.to_string()),
                    ctx.remaining(),
                ));
                async {
                    std::future::pending::<()>().await;
                    Ok::<_, BoxError>(UppercaseResponse::default())
                }
            })
        },
    )
    .expect("valid");
    let svc = ProxyingMiddleware {
        uppercase: Some(uppercase),
        next: BasicStringService,
    };
    (svc, received)
}

#[tokio::test(start_paused = true)]
async fn a_slow_fleet_times_out_with_504() {
    let (svc, received) = stalled_proxy();
    let started = tokio::time::Instant::now();
    let (message, status) = unavailable(svc.uppercase("foo").await);
    // Three attempts, each given a third of the 250 ms.
    assert!(started.elapsed() <= Duration::from_millis(250));
    assert!(started.elapsed() >= Duration::from_millis(249));
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        message,
        "deadline exceeded (previously: deadline exceeded; deadline exceeded)"
    );
    // Each attempt was told how long it had: its share of the 250 ms.
    let received = received.lock().expect("lock").clone();
    let told: Vec<Option<Duration>> = received.into_iter().map(|(_, left)| left).collect();
    assert_eq!(told, [Some(Duration::from_millis(83)); 3]);
}

#[tokio::test(start_paused = true)]
async fn a_hung_instance_costs_its_share_of_time_then_its_breaker_opens() {
    let hung = Arc::new(Mutex::new(0usize));
    let calls = hung.clone();
    let options = ProxyOptions::default();
    let instances = vec!["hung:1".to_owned(), "ok:2".to_owned()];
    let uppercase = proxy_endpoint(&instances, &options, move |url: Url| {
        let calls = calls.clone();
        let is_hung = url.host_str() == Some("hung");
        endpoint_fn(move |req: UppercaseRequest| {
            let calls = calls.clone();
            async move {
                if is_hung {
                    *calls.lock().expect("lock") += 1;
                    std::future::pending::<()>().await;
                }
                Ok::<_, BoxError>(UppercaseResponse {
                    v: req.s.to_uppercase(),
                    err: None,
                })
            }
        })
    })
    .expect("valid");
    let svc = ProxyingMiddleware {
        uppercase: Some(uppercase),
        next: BasicStringService,
    };
    // Every call succeeds: the hung instance's attempt times out and the next goes to the other.
    for n in 0..20 {
        assert_eq!(ok(svc.uppercase(&format!("x{n}")).await), format!("X{n}"));
    }
    // Its breaker opened after 6 timeouts in a row, and it has not been called since.
    assert_eq!(*hung.lock().expect("lock"), 6);
}

#[tokio::test(start_paused = true)]
async fn more_than_the_burst_on_one_instance_is_refused() {
    let fleet = Fleet::default();
    let options = ProxyOptions {
        rate: NonZeroU32::new(1).expect("nonzero"),
        burst: NonZeroU32::new(5).expect("nonzero"),
        max_attempts: 1,
        ..ProxyOptions::default()
    };
    let instances = vec!["a:8001".to_owned()];
    let uppercase = proxy_endpoint(&instances, &options, fleet.client()).expect("valid");
    let mut refused = 0;
    let mut answered = 0;
    for _ in 0..8 {
        match uppercase.invoke(UppercaseRequest { s: "x".into() }).await {
            Ok(_) => answered += 1,
            Err(err) => {
                assert_eq!(err.to_string(), "rate limit exceeded");
                refused += 1;
            }
        }
    }
    assert_eq!((answered, refused), (5, 3));
    // Refusals happen before the instance is called, and do not trip its breaker.
    assert_eq!(fleet.calls(), 5);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(
        uppercase
            .invoke(UppercaseRequest { s: "x".into() })
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn the_callers_deadline_bounds_the_attempts_and_travels_with_them() {
    use kit_core::context::{Context, RequestId};

    let (svc, received) = stalled_proxy();
    // The caller allows 60 ms, less than the proxy's own 250.
    let caller = Context::new()
        .with_timeout(Duration::from_millis(60))
        .with_value(RequestId::new("req-42").expect("an id"));
    let started = tokio::time::Instant::now();
    let (message, status) = unavailable(caller.scope(svc.uppercase("foo")).await);
    assert_eq!(started.elapsed(), Duration::from_millis(60));
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(message, "deadline exceeded");
    // One attempt started, with the caller's id and what was left of its 60 ms.
    let received = received.lock().expect("lock").clone();
    assert_eq!(
        received,
        [(Some("req-42".to_owned()), Some(Duration::from_millis(60)))]
    );
}
