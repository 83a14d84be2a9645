//! The client package against the real binary, on every transport: answers, every business
//! error as the service's own value, refusals with their kinds, and the per-instance
//! middlewares, alone and behind discovery, balancing and retries.

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use addsvc::Set;
use addsvc::client::{self, Options};
use addsvc::service::{AddService, Error, ServiceError};
use kit_core::error::{ErrorExt, ErrorKind};
use kit_core::sd::FixedInstancer;
use kit_core::transport::thrift::{Config, Framing, Protocol};

use support::Addsvc;

/// Every transport's client of `svc`, named.
fn clients(svc: &Addsvc, thrift: Config) -> Vec<(&'static str, Set)> {
    let options = Options::default();
    let addr = |port: u16| format!("127.0.0.1:{port}");
    vec![
        (
            "HTTP",
            client::http(&addr(svc.http), &options).expect("http"),
        ),
        (
            "gRPC",
            client::grpc(&addr(svc.grpc), &options).expect("grpc"),
        ),
        (
            "JSON-RPC",
            client::jsonrpc(&addr(svc.jsonrpc), &options).expect("jsonrpc"),
        ),
        (
            "Thrift",
            client::thrift(&addr(svc.thrift), thrift, &options).expect("thrift"),
        ),
    ]
}

fn service_error(result: Result<impl std::fmt::Debug, Error>) -> ServiceError {
    match result {
        Err(Error::Service(err)) => err,
        other => panic!("expected a business error, got {other:?}"),
    }
}

fn transport_error<T: std::fmt::Debug>(result: Result<T, Error>) -> kit_core::Error {
    match result {
        Err(Error::Transport(err)) => err,
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_answers_and_gives_business_errors_back_as_values() {
    let svc = Addsvc::start(&[]);
    for (name, client) in clients(&svc, Config::default()) {
        assert_eq!(client.sum(1, 2).await.ok(), Some(3), "{name}");
        assert_eq!(client.sum(-5, 2).await.ok(), Some(-3), "{name}");
        assert_eq!(
            client.sum(3_000_000_000, 0).await.ok(),
            Some(3_000_000_000),
            "{name}"
        );
        assert_eq!(
            client.concat("1", "2").await.ok().as_deref(),
            Some("12"),
            "{name}"
        );
        assert_eq!(
            client.concat("é", "\"").await.ok().as_deref(),
            Some("é\""),
            "{name}"
        );
        assert_eq!(
            service_error(client.sum(0, 0).await),
            ServiceError::TwoZeroes,
            "{name}"
        );
        assert_eq!(
            service_error(client.sum(2_147_483_647, 1).await),
            ServiceError::IntOverflow,
            "{name}"
        );
        assert_eq!(
            service_error(client.concat("hello", "world!").await),
            ServiceError::MaxSizeExceeded,
            "{name}"
        );
    }
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_refusals_come_back_with_their_kinds() {
    let svc = Addsvc::start(&[
        "--sum-rate",
        "1",
        "--sum-burst",
        "1",
        "--concat-rate",
        "1",
        "--concat-burst",
        "1",
    ]);
    let mut first = true;
    for (name, client) in clients(&svc, Config::default()) {
        if first {
            // The server's one token of each method is spent here.
            assert_eq!(client.sum(1, 2).await.ok(), Some(3));
            assert_eq!(client.concat("a", "b").await.ok().as_deref(), Some("ab"));
            first = false;
        }
        let err = transport_error(client.sum(1, 2).await);
        assert!(
            err.to_string().contains("rate limit exceeded"),
            "{name}: {err}"
        );
        let expected = if name == "Thrift" {
            // Thrift's exceptions carry no kind: the server could not answer.
            ErrorKind::Unavailable
        } else {
            ErrorKind::ResourceExhausted
        };
        assert_eq!(
            (&err as &(dyn std::error::Error + 'static)).kind(),
            expected,
            "{name}: {err}"
        );
    }
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thrift_speaks_every_protocol_and_framing_the_server_does() {
    for (args, config) in [
        (
            vec!["-thrift-protocol", "compact"],
            Config {
                protocol: Protocol::Compact,
                ..Config::default()
            },
        ),
        (
            vec!["-thrift-framed", "-thrift-buffer", "4096"],
            Config {
                framing: Framing {
                    buffer: 4096,
                    framed: true,
                },
                ..Config::default()
            },
        ),
        (
            vec![
                "-thrift-protocol=compact",
                "-thrift-framed=true",
                "-thrift-buffer=512",
            ],
            Config {
                protocol: Protocol::Compact,
                framing: Framing {
                    buffer: 512,
                    framed: true,
                },
                ..Config::default()
            },
        ),
    ] {
        let svc = Addsvc::start(&args);
        let client = client::thrift(
            &format!("127.0.0.1:{}", svc.thrift),
            config,
            &Options::default(),
        )
        .expect("thrift");
        assert_eq!(client.sum(20, 22).await.ok(), Some(42), "{args:?}");
        assert_eq!(
            service_error(client.sum(0, 0).await),
            ServiceError::TwoZeroes
        );
        assert_eq!(client.concat("x", "y").await.ok().as_deref(), Some("xy"));
        svc.service.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_has_its_own_limiter_and_breaker() {
    // Nothing listens here: every call fails at once with a refused connection.
    let dead = format!("127.0.0.1:{}", testkit::process::free_port());
    let client = client::http(&dead, &Options::default()).expect("http");
    for _ in 0..6 {
        let err = transport_error(client.sum(1, 2).await);
        assert_eq!(
            (&err as &(dyn std::error::Error + 'static)).kind(),
            ErrorKind::Unavailable,
            "{err}"
        );
    }
    let open = transport_error(client.sum(1, 2).await);
    assert_eq!(open.to_string(), "circuit breaker is open");
    // Concat has a breaker of its own, still closed.
    let concat = transport_error(client.concat("a", "b").await);
    assert_ne!(concat.to_string(), "circuit breaker is open");

    let one = NonZeroU32::MIN;
    let limited = Options {
        rate: one,
        burst: one,
        ..Options::default()
    };
    let svc = Addsvc::start(&[]);
    let client = client::grpc(&format!("127.0.0.1:{}", svc.grpc), &limited).expect("grpc");
    assert_eq!(client.sum(1, 2).await.ok(), Some(3));
    let refused = transport_error(client.concat("a", "b").await);
    assert_eq!(
        refused.to_string(),
        "rate limit exceeded",
        "both methods share the limit"
    );
    svc.service.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_times_out() {
    // A listener that accepts and never answers.
    let silent = testkit::process::local_listener();
    let addr = silent.local_addr().expect("addr").to_string();
    let quick = Options {
        timeout: Duration::from_millis(200),
        ..Options::default()
    };
    for client in [
        client::http(&addr, &quick).expect("http"),
        client::jsonrpc(&addr, &quick).expect("jsonrpc"),
        client::thrift(&addr, Config::default(), &quick).expect("thrift"),
    ] {
        let started = std::time::Instant::now();
        let err = transport_error(client.sum(1, 2).await);
        assert_eq!(
            (&err as &(dyn std::error::Error + 'static)).kind(),
            ErrorKind::DeadlineExceeded,
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_behind_discovery_balancing_and_retries() {
    let (a, b) = (Addsvc::start(&[]), Addsvc::start(&[]));
    let dead = format!("127.0.0.1:{}", testkit::process::free_port());
    let instances = FixedInstancer::new([
        format!("127.0.0.1:{}", a.grpc),
        dead,
        format!("127.0.0.1:{}", b.grpc),
    ]);
    let svc = client::balanced(
        &instances,
        |instance| client::grpc(instance, &Options::default()),
        3,
        Duration::from_secs(5),
    );
    // Every call succeeds, the dead instance's attempts retried on the next one.
    for n in 1..=9 {
        assert_eq!(svc.sum(n, 1).await.ok(), Some(n + 1));
    }
    // Business errors are answers, not failures: not retried, not counted.
    assert_eq!(service_error(svc.sum(0, 0).await), ServiceError::TwoZeroes);
    let (out_a, out_b) = (a.service.stop(), b.service.stop());
    let calls = |out: &str| out.matches("method=Sum a=").count();
    assert_eq!(calls(&out_a) + calls(&out_b), 10);
    assert!(
        calls(&out_a) >= 3 && calls(&out_b) >= 3,
        "{} {}",
        calls(&out_a),
        calls(&out_b)
    );
}

#[test]
fn bad_instances_are_refused_up_front() {
    assert!(client::http("https://example.com", &Options::default()).is_err());
    assert!(client::http("127.0.0.1:notaport", &Options::default()).is_err());
    assert!(client::thrift("localhost", Config::default(), &Options::default()).is_err());
}
