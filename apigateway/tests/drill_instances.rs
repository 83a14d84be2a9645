//! Instances come and go under load: one SIGTERMed, one SIGKILLed, new ones started; no caller
//! sees a failure, and a new instance gets calls within a second of registering.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::{addsvc, gateway, load, stringsvc, until_listed, until_registered};
use testkit::etcd::Etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_stopped_killed_and_started_under_load_cost_no_request() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint();
    let mut a1 = addsvc(&endpoint);
    let a2 = addsvc(&endpoint);
    let mut s1 = stringsvc(&endpoint);
    let s2 = stringsvc(&endpoint);
    until_registered(
        &etcd,
        "addsvc",
        &[&a1.address, &a2.address],
        Duration::from_secs(5),
    )
    .await;
    until_registered(
        &etcd,
        "stringsvc",
        &[&s1.address, &s2.address],
        Duration::from_secs(5),
    )
    .await;
    let gateway = gateway(&endpoint, &[]);
    let running = tokio::spawn(load(gateway.url(""), 8, Duration::from_secs(5)));

    tokio::time::sleep(Duration::from_secs(1)).await;
    a1.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(500)).await;
    s1.signal(Signal::SIGKILL);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Newcomers, while the killed instance is still registered.
    let (a3, s3) = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || (addsvc(&endpoint), stringsvc(&endpoint))
    })
    .await
    .expect("started");
    // The killed instance is still listed until its lease expires; the newcomers are listed
    // once they listen.
    until_listed(&etcd, "addsvc", &a3.address, Duration::from_secs(2)).await;
    until_listed(&etcd, "stringsvc", &s3.address, Duration::from_secs(2)).await;
    let registered = tokio::time::Instant::now();
    tokio::time::sleep_until(registered + Duration::from_secs(1)).await;
    assert!(
        a3.calls() > 0,
        "no call within 1s of registering:\n{}",
        a3.service.output()
    );
    assert!(
        s3.calls() > 0,
        "no call within 1s of registering:\n{}",
        s3.service.output()
    );

    let outcome = running.await.expect("load");
    assert!(outcome.calls > 200, "only {} calls", outcome.calls);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} calls failed: {:#?}",
        outcome.failures.len(),
        outcome.calls,
        outcome.failures
    );
    let status = a1.service.process().wait().expect("exits");
    assert!(status.success(), "{status}: {}", a1.service.output());
    // The killed instance's lease expired meanwhile.
    until_registered(
        &etcd,
        "stringsvc",
        &[&s2.address, &s3.address],
        Duration::from_secs(5),
    )
    .await;
    eprintln!("{} calls, none failed", outcome.calls);
    drop((a2, s2, a3, s3, gateway));
}
