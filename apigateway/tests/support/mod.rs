//! The fleet the gateway's tests run: a real etcd, addsvc and stringsvc3 instances that register
//! in it, and the gateway, each a real process on free ports.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use kit_core::sd::etcd::{self, Client};
use nix::sys::signal::Signal;
use testkit::etcd::Etcd;
use testkit::process::{Service, free_port, workspace_binary};

/// The gateway binary.
pub const GATEWAY: &str = env!("CARGO_BIN_EXE_apigateway");

/// The time to live of the instances' registrations: short, so that a killed instance leaves
/// within the tests' patience.
pub const TTL: &str = "2s";

/// One instance: its process and the address it registered.
#[derive(Debug)]
pub struct Instance {
    pub service: Service,
    pub address: String,
}

impl Instance {
    /// How many calls it logged so far. A service writes its log lines in batches, within
    /// `kit_core::log::LINGER` of the call: a call just answered may not be counted yet (see
    /// [`until_logged`]).
    pub fn calls(&self) -> usize {
        self.service
            .output()
            .lines()
            .filter(|line| line.contains("took="))
            .count()
    }

    /// Sends `signal` to it.
    pub fn signal(&mut self, signal: Signal) {
        self.service
            .process()
            .signal(signal)
            .unwrap_or_else(|problem| panic!("{problem}"));
    }
}

/// An addsvc registered in the etcd at `etcd` with its gRPC address (the others on ports of
/// their own).
pub fn addsvc(etcd: &str) -> Instance {
    addsvc_with(etcd, &[])
}

/// [`addsvc`], with `env` in its environment.
///
/// Every listener gets a port from `free_port`, none "any port" (`127.0.0.1:0`): a port the
/// service chose for itself could be one just handed to a service of a test running beside
/// this one and not yet bound by it.
pub fn addsvc_with(etcd: &str, env: &[(&str, &str)]) -> Instance {
    let bin = workspace_binary("addsvc", "addsvc");
    let grpc = free_port();
    let address = format!("127.0.0.1:{grpc}");
    let [debug, http, thrift, jsonrpc] = [(); 4].map(|()| format!("127.0.0.1:{}", free_port()));
    let endpoint = etcd;
    let args = [
        "-debug.addr",
        &debug,
        "-http-addr",
        &http,
        "-grpc-addr",
        &address,
        "-thrift-addr",
        &thrift,
        "-jsonrpc-addr",
        &jsonrpc,
        "--etcd",
        endpoint,
        "--etcd-ttl",
        TTL,
    ];
    let service = Service::start_on(&bin.to_string_lossy(), &args, env, grpc);
    Instance { service, address }
}

/// A stringsvc3 instance registered in the etcd at `etcd` with its HTTP address.
pub fn stringsvc(etcd: &str) -> Instance {
    stringsvc_with(etcd, &[])
}

/// [`stringsvc`], with `env` in its environment.
pub fn stringsvc_with(etcd: &str, env: &[(&str, &str)]) -> Instance {
    let bin = workspace_binary("stringsvc3", "stringsvc3");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let endpoint = etcd;
    let args = ["-listen", &address, "--etcd", endpoint, "--etcd-ttl", TTL];
    let service = Service::start_on(&bin.to_string_lossy(), &args, env, port);
    Instance { service, address }
}

/// The gateway, finding the instances in the etcd at `etcd`.
pub fn gateway(etcd: &str, extra: &[&str]) -> Service {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let endpoint = etcd;
    let mut args = vec!["-http.addr", &listen, "--etcd", endpoint];
    args.extend_from_slice(extra);
    Service::start_on(GATEWAY, &args, &[], port)
}

/// The addresses registered for `service`, read from etcd.
pub async fn registered(etcd: &Etcd, service: &str) -> Vec<String> {
    let client = Client::new(&etcd.endpoint()).expect("etcd client");
    let (pairs, _) = client
        .list(&etcd::prefix(service))
        .await
        .expect("etcd answers");
    pairs.into_iter().map(|(_, value)| value).collect()
}

/// Waits until `service`'s registered addresses are `expected` (sorted), for at most `within`;
/// returns how long it took.
pub async fn until_registered(
    etcd: &Etcd,
    service: &str,
    expected: &[&str],
    within: Duration,
) -> Duration {
    let started = tokio::time::Instant::now();
    let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    loop {
        let now = registered(etcd, service).await;
        if now == expected {
            return started.elapsed();
        }
        if started.elapsed() > within {
            panic!("{service}: registered {now:?}, not {expected:?}, after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `instances` have logged `total` calls between them, for at most 5 s; returns
/// each one's count. The calls were answered already; their log lines leave in the next batch.
pub async fn until_logged(instances: &[&Instance], total: usize) -> Vec<usize> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let calls: Vec<usize> = instances.iter().map(|instance| instance.calls()).collect();
        if calls.iter().sum::<usize>() >= total {
            return calls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{calls:?} calls logged, not {total}, after 5s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a bounded load saw: how many calls, and every one that failed, with why.
#[derive(Debug, Default)]
pub struct Outcome {
    pub calls: usize,
    pub failures: Vec<String>,
}

/// `clients` callers, each calling the four routes in turn with a short pause, for `duration`,
/// through the gateway at `base` (`http://127.0.0.1:PORT`).
pub async fn load(base: String, clients: usize, duration: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let http = testkit::http::HttpClient::new();
            let mut outcome = Outcome::default();
            let routes = [
                ("/addsvc/sum", r#"{"a":1,"b":2}"#, r#"{"v":3}"#),
                (
                    "/stringsvc/uppercase",
                    r#"{"s":"abc"}"#,
                    r#"{"v":"ABC","err":null}"#,
                ),
                ("/addsvc/concat", r#"{"a":"1","b":"2"}"#, r#"{"v":"12"}"#),
                ("/stringsvc/count", r#"{"s":"abc"}"#, r#"{"v":3}"#),
            ];
            let mut i = client;
            while tokio::time::Instant::now() < deadline {
                let (route, body, expected) = routes[i % routes.len()];
                i += 1;
                outcome.calls += 1;
                let url = format!("{base}{route}");
                match http.try_send(http::Method::POST, &url, body, &[]).await {
                    Ok(answer) if answer.status == 200 && answer.body.trim() == expected => {}
                    Ok(answer) => outcome
                        .failures
                        .push(format!("{route}: {} {}", answer.status, answer.body)),
                    Err(problem) => outcome.failures.push(problem),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            outcome
        }));
    }
    let mut all = Outcome::default();
    for task in tasks {
        let outcome = task.await.expect("client task");
        all.calls += outcome.calls;
        all.failures.extend(outcome.failures);
    }
    all
}

/// Waits until `address` is among `service`'s registered addresses, for at most `within`.
pub async fn until_listed(etcd: &Etcd, service: &str, address: &str, within: Duration) {
    let started = tokio::time::Instant::now();
    loop {
        let now = registered(etcd, service).await;
        if now.iter().any(|a| a == address) {
            return;
        }
        if started.elapsed() > within {
            panic!("{service}: {address} not registered after {within:?}: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
