//! Registering and discovering against a real etcd, started on free ports by testkit.

use std::time::Duration;

use testkit::etcd::Etcd;
use tokio::sync::watch;

use super::*;
use crate::sd::{Endpointer, Event, Instancer as _};

/// Waits (at most `within`) until the instancer's current event satisfies `ok`.
async fn until(
    updates: &mut watch::Receiver<Event>,
    within: Duration,
    ok: impl Fn(&Event) -> bool,
) -> Event {
    let waited = tokio::time::timeout(within, updates.wait_for(|event| ok(event)))
        .await
        .map(|found| found.map(|event| event.clone()));
    match waited {
        Ok(Ok(event)) => event,
        _ => panic!("not within {within:?}; last event: {:?}", *updates.borrow()),
    }
}

fn instances(event: &Event) -> Vec<&str> {
    event.instances.iter().map(String::as_str).collect()
}

#[test]
fn backoff_doubles_up_to_its_ceiling_and_starts_over_after_a_success() {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
    let waits: Vec<_> = (0..4).map(|_| backoff.next_wait()).collect();
    assert_eq!(
        waits,
        [100, 200, 350, 350].map(Duration::from_millis).to_vec()
    );
    backoff.reset();
    assert_eq!(backoff.next_wait(), Duration::from_millis(100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_instances_are_discovered_and_deregistered_at_once() {
    let etcd = Etcd::start();
    let client = Client::new(&etcd.endpoint()).expect("client");
    let instancer = Instancer::new(client.clone(), prefix("addsvc"));
    let mut updates = instancer.subscribe();
    let ttl = Duration::from_secs(5);

    let a = Registrar::start(
        client.clone(),
        key("addsvc", "127.0.0.1:1"),
        "127.0.0.1:1",
        ttl,
    );
    let b = Registrar::start(
        client.clone(),
        key("addsvc", "127.0.0.1:2"),
        "127.0.0.1:2",
        ttl,
    );
    // Another service's keys are not this service's instances.
    let other = Registrar::start(
        client.clone(),
        key("addsvc2", "127.0.0.1:3"),
        "127.0.0.1:3",
        ttl,
    );
    let event = until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.len() == 2
    })
    .await;
    assert_eq!(instances(&event), ["127.0.0.1:1", "127.0.0.1:2"]);
    assert_eq!(event.error, None);
    assert_eq!(a.key(), "/services/addsvc/127.0.0.1:1");

    // Deregistering is seen well before any lease could expire.
    let started = tokio::time::Instant::now();
    a.deregister().await;
    let event = until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.len() == 1
    })
    .await;
    assert_eq!(instances(&event), ["127.0.0.1:2"]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (listed, _) = client.list(&prefix("addsvc")).await.expect("list");
    assert_eq!(
        listed,
        [(
            "/services/addsvc/127.0.0.1:2".to_owned(),
            "127.0.0.1:2".to_owned()
        )]
    );

    // A new instancer starts from what is registered now, read before it says it is ready.
    let late = Instancer::new(client.clone(), prefix("addsvc"));
    tokio::time::timeout(Duration::from_secs(5), late.ready())
        .await
        .expect("read");
    assert_eq!(instances(&late.subscribe().borrow()), ["127.0.0.1:2"]);
    b.deregister().await;
    other.deregister().await;
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_nobody_renews_expires_with_its_lease() {
    let etcd = Etcd::start();
    let client = Client::new(&etcd.endpoint()).expect("client");
    let instancer = Instancer::new(client.clone(), prefix("stringsvc"));
    let mut updates = instancer.subscribe();
    let crashed = Registrar::start(
        client.clone(),
        key("stringsvc", "127.0.0.1:9"),
        "127.0.0.1:9",
        Duration::from_secs(1),
    );
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.len() == 1
    })
    .await;
    // Dropped without deregistering: the renewals stop, as they do when a process is killed.
    drop(crashed);
    let started = tokio::time::Instant::now();
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.is_empty()
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "gone in {took:?}: deleted, not expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_outage_keeps_the_endpoints_and_registrations_come_back() {
    let mut etcd = Etcd::start();
    let client = Client::new(&etcd.endpoint()).expect("client");
    let instancer = Instancer::new(client.clone(), prefix("addsvc"));
    let mut updates = instancer.subscribe();
    let endpointer = Endpointer::new(&instancer, |instance: &str| {
        let instance = instance.to_owned();
        Ok::<_, crate::BoxError>(crate::endpoint::endpoint_fn(move |()| {
            let instance = instance.clone();
            async move { Ok::<_, crate::BoxError>(instance) }
        }))
    });
    let ttl = Duration::from_secs(2);
    let a = Registrar::start(
        client.clone(),
        key("addsvc", "127.0.0.1:1"),
        "127.0.0.1:1",
        ttl,
    );
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.len() == 1
    })
    .await;
    assert_eq!(endpointer.instances(), ["127.0.0.1:1"]);

    let stopping = tokio::task::spawn_blocking(move || {
        etcd.stop();
        etcd
    });
    let event = until(&mut updates, Duration::from_secs(10), |e| e.error.is_some()).await;
    assert!(event.error.is_some_and(|e| e.starts_with("etcd: ")));
    // The endpointer keeps what it had.
    assert_eq!(endpointer.instances(), ["127.0.0.1:1"]);
    assert_eq!(endpointer.endpoints().expect("kept").len(), 1);

    // A registration made while etcd is down is put once it is back.
    let b = Registrar::start(
        client.clone(),
        key("addsvc", "127.0.0.1:2"),
        "127.0.0.1:2",
        ttl,
    );
    // Long enough for the old lease to have expired, had etcd been running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut etcd = stopping.await.expect("stopped");
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.resume();
        etcd
    })
    .await
    .expect("resumed");
    let event = until(&mut updates, Duration::from_secs(10), |e| {
        e.error.is_none() && e.instances.len() == 2
    })
    .await;
    assert_eq!(instances(&event), ["127.0.0.1:1", "127.0.0.1:2"]);
    assert_eq!(endpointer.instances(), ["127.0.0.1:1", "127.0.0.1:2"]);

    a.deregister().await;
    b.deregister().await;
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.is_empty()
    })
    .await;
    drop(etcd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_registration_outlives_its_time_to_live() {
    let etcd = Etcd::start();
    let client = Client::new(&etcd.endpoint()).expect("client");
    let instancer = Instancer::new(client.clone(), prefix("stringsvc"));
    let mut updates = instancer.subscribe();
    let alive = Registrar::start(
        client.clone(),
        key("stringsvc", "127.0.0.1:9"),
        "127.0.0.1:9",
        Duration::from_secs(1),
    );
    until(&mut updates, Duration::from_secs(5), |e| {
        e.instances.len() == 1
    })
    .await;
    updates.borrow_and_update();
    // Three times the time to live: without renewals the key would have gone (and come back).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !updates.has_changed().expect("open"),
        "{:?}",
        *updates.borrow()
    );
    alive.deregister().await;
}

#[tokio::test]
async fn an_instancer_without_etcd_is_ready_with_the_error() {
    let nobody = testkit::process::free_port();
    let client = Client::new(&format!("127.0.0.1:{nobody}")).expect("client");
    let instancer = Instancer::new(client, prefix("addsvc"));
    tokio::time::timeout(Duration::from_secs(5), instancer.ready())
        .await
        .expect("ready without etcd");
    let event = instancer.subscribe().borrow().clone();
    assert!(event.instances.is_empty());
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("etcd: ")),
        "{event:?}"
    );
}
