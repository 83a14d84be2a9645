//! The client package against real servers: every method, the service's errors coming back as
//! themselves, and a fleet of two `profilesvc` processes on one SQLite file, one of them
//! killed mid-run, without a failed call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kit_core::log::Logger;
use kit_core::metrics::Registry;
use nix::sys::signal::Signal;
use profilesvc::client::{Client, ClientOptions};
use profilesvc::repository::MemoryRepository;
use profilesvc::service::{Address, Profile, ProfileError, ProfileService};
use testkit::http::TestServer;
use testkit::process::Service;

const BIN: &str = env!("CARGO_BIN_EXE_profilesvc");

fn profile(id: &str, name: &str, addresses: &[(&str, &str)]) -> Profile {
    Profile {
        id: id.into(),
        name: name.into(),
        addresses: addresses.iter().map(|(id, l)| address(id, l)).collect(),
    }
}

fn address(id: &str, location: &str) -> Address {
    Address {
        id: id.into(),
        location: location.into(),
    }
}

/// An in-process server with its own registry, to count what reached it.
async fn server() -> (TestServer, Registry) {
    let registry = Registry::new();
    let app = profilesvc::app(MemoryRepository::new(), &Logger::discard(), &registry);
    (TestServer::start(app).await, registry)
}

/// How many calls of `method` the server behind `registry` received.
fn calls(registry: &Registry, method: &str) -> f64 {
    registry
        .render()
        .lines()
        .filter(|line| {
            line.starts_with("my_group_profile_service_requests_total{")
                && line.contains(&format!("method=\"{method}\""))
        })
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn every_method_round_trips_and_errors_come_back_as_themselves() {
    let (server, _) = server().await;
    let client = Client::new(&[server.addr().to_string()]).expect("client");

    // The bodies are what the server reads: the profile itself, not a request around it.
    let p = profile("a b/ü", "Go Kit", &[("home", "Here")]);
    client.post_profile(p.clone()).await.expect("post");
    assert_eq!(client.get_profile("a b/ü").await.expect("get"), p);
    assert!(matches!(
        client.post_profile(p.clone()).await,
        Err(ProfileError::AlreadyExists)
    ));
    assert!(matches!(
        client.get_profile("nobody").await,
        Err(ProfileError::NotFound)
    ));

    let replaced = profile("a b/ü", "Kit", &[]);
    client
        .put_profile("a b/ü", replaced.clone())
        .await
        .expect("put");
    assert_eq!(client.get_profile("a b/ü").await.expect("get"), replaced);
    assert!(matches!(
        client.put_profile("a b/ü", profile("other", "", &[])).await,
        Err(ProfileError::InconsistentIds)
    ));
    client
        .patch_profile("a b/ü", profile("", "Patched", &[]))
        .await
        .expect("patch");
    assert_eq!(
        client.get_profile("a b/ü").await.expect("get").name,
        "Patched"
    );
    let empty = client.post_profile(profile("", "no id", &[])).await;
    assert!(
        matches!(&empty, Err(ProfileError::Invalid(why)) if why == "profile id is empty"),
        "{empty:?}"
    );

    client
        .post_address("a b/ü", address("w/ork", "There"))
        .await
        .expect("post address");
    assert_eq!(
        client.get_address("a b/ü", "w/ork").await.expect("address"),
        address("w/ork", "There")
    );
    assert_eq!(
        client.get_addresses("a b/ü").await.expect("addresses"),
        [address("w/ork", "There")]
    );
    assert!(matches!(
        client.post_address("a b/ü", address("w/ork", "")).await,
        Err(ProfileError::AlreadyExists)
    ));
    client
        .delete_address("a b/ü", "w/ork")
        .await
        .expect("delete address");
    assert!(matches!(
        client.get_address("a b/ü", "w/ork").await,
        Err(ProfileError::NotFound)
    ));
    assert_eq!(client.get_addresses("a b/ü").await.expect("none"), []);
    client.delete_profile("a b/ü").await.expect("delete");
    assert!(matches!(
        client.delete_profile("a b/ü").await,
        Err(ProfileError::NotFound)
    ));
}

#[tokio::test]
async fn answers_of_the_service_are_not_retried_but_dead_instances_are() {
    let (a, registry_a) = server().await;
    let (b, registry_b) = server().await;
    let client = Client::new(&[a.addr().to_string(), b.addr().to_string()]).expect("client");
    for _ in 0..4 {
        assert!(matches!(
            client.get_profile("missing").await,
            Err(ProfileError::NotFound)
        ));
    }
    // Four calls, four requests: a "not found" from one instance is final.
    assert_eq!(
        calls(&registry_a, "GetProfile") + calls(&registry_b, "GetProfile"),
        4.0
    );

    // An instance that is gone is skipped: every call lands on the live one.
    let dead = format!("127.0.0.1:{}", testkit::process::free_port());
    let client = Client::new(&[dead, a.addr().to_string()]).expect("client");
    for n in 0..6 {
        let id = format!("p{n}");
        client
            .post_profile(profile(&id, "", &[]))
            .await
            .expect("post");
        client.get_profile(&id).await.expect("get");
    }
}

#[test]
fn bad_instances_are_refused_up_front() {
    for bad in ["https://host:1", "ftp://host:1", "http://", "::"] {
        let err = Client::new(&[bad.to_owned()]).expect_err(bad);
        assert!(err.to_string().starts_with("invalid instance "), "{err}");
    }
}

/// Two `profilesvc` processes on one SQLite file, four clients calling them through the client
/// package, one process killed with SIGKILL part-way: every call must succeed, and what the
/// clients wrote must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_file_one_killed_mid_run_no_call_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let db = db.to_str().expect("utf-8");
    let mut doomed = Service::start(BIN, &["--db", db]);
    let survivor = Service::start(BIN, &["--db", db]);
    let instances = [
        format!("127.0.0.1:{}", doomed.port()),
        format!("127.0.0.1:{}", survivor.port()),
    ];
    // A generous budget: the point is that calls move to the live instance, not how fast on a
    // machine busy with other tests.
    let options = ClientOptions {
        max_attempts: 3,
        timeout: Duration::from_secs(10),
    };
    let client = Client::with_options(&instances, &options).expect("client");

    const WORKERS: usize = 4;
    const ROUNDS: usize = 60;
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = client.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let id = format!("w{worker}-r{round}");
                let result: Result<(), ProfileError> = async {
                    client.post_profile(profile(&id, "new", &[])).await?;
                    client.post_address(&id, address("home", "Here")).await?;
                    client
                        .patch_profile(&id, profile("", "patched", &[]))
                        .await?;
                    let got = client.get_profile(&id).await?;
                    assert_eq!(got, profile(&id, "patched", &[("home", "Here")]));
                    client.post_address(&id, address("work", "There")).await?;
                    client.delete_address(&id, "home").await?;
                    if round % 2 == 0 {
                        client.delete_profile(&id).await?;
                    }
                    Ok(())
                }
                .await;
                if let Err(err) = result {
                    panic!("{id}: a call failed: {err}");
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Kill one instance a third of the way through, calls in flight or not.
    while done.load(Ordering::Relaxed) < WORKERS * ROUNDS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    doomed.process().signal(Signal::SIGKILL).expect("kill");
    for worker in workers {
        worker.await.expect("every call of the worker succeeded");
    }
    assert_eq!(done.load(Ordering::Relaxed), WORKERS * ROUNDS);

    // The survivor has everything: odd rounds kept, with their one address; even rounds gone.
    let check = Client::new(&[instances[1].clone()]).expect("client");
    for worker in 0..WORKERS {
        for round in 0..ROUNDS {
            let id = format!("w{worker}-r{round}");
            let got = check.get_profile(&id).await;
            if round % 2 == 0 {
                assert!(matches!(got, Err(ProfileError::NotFound)), "{id}: {got:?}");
            } else {
                assert_eq!(
                    got.expect("kept"),
                    profile(&id, "patched", &[("work", "There")])
                );
            }
        }
    }
    survivor.stop();
}
