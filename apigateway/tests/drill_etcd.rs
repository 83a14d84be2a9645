//! etcd stops and comes back under load: the gateway serves from its last view meanwhile, and
//! follows the registrations again once etcd is back.

mod support;

use std::time::Duration;

use support::{addsvc, gateway, load, stringsvc, until_registered};
use testkit::etcd::Etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_outage_under_load_costs_no_request() {
    let etcd = Etcd::start();
    let endpoint = etcd.endpoint();
    let a1 = addsvc(&endpoint);
    let a2 = addsvc(&endpoint);
    let s1 = stringsvc(&endpoint);
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
    let mut gateway = gateway(&endpoint, &[]);
    let running = tokio::spawn(load(gateway.url(""), 8, Duration::from_secs(5)));

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut etcd = tokio::task::spawn_blocking(move || {
        let mut etcd = etcd;
        etcd.stop();
        etcd
    })
    .await
    .expect("stopped");
    // Down for longer than the instances' time to live (2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let etcd = tokio::task::spawn_blocking(move || {
        etcd.resume();
        etcd
    })
    .await
    .expect("resumed");

    let outcome = running.await.expect("load");
    assert!(outcome.calls > 200, "only {} calls", outcome.calls);
    assert!(
        outcome.failures.is_empty(),
        "{} of {} calls failed: {:#?}",
        outcome.failures.len(),
        outcome.calls,
        outcome.failures
    );
    eprintln!("{} calls, none failed", outcome.calls);

    // The instances registered again, and the gateway follows etcd again: a newcomer gets calls
    // within a second of registering.
    until_registered(
        &etcd,
        "addsvc",
        &[&a1.address, &a2.address],
        Duration::from_secs(5),
    )
    .await;
    // The gateway tries etcd again on its own schedule (a backoff of up to 2 s): the promise
    // starts once it has read and watched addsvc's instances again, which it says.
    tokio::task::block_in_place(|| {
        gateway
            .process()
            .wait_for_output(r#"msg="etcd reachable again" prefix=/services/addsvc/"#)
    })
    .unwrap_or_else(|problem| panic!("{problem}"));
    let a3 = tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || addsvc(&endpoint)
    })
    .await
    .expect("started");
    until_registered(
        &etcd,
        "addsvc",
        &[&a1.address, &a2.address, &a3.address],
        Duration::from_secs(5),
    )
    .await;
    let registered = tokio::time::Instant::now();
    let more = tokio::spawn(load(gateway.url(""), 2, Duration::from_secs(1)));
    tokio::time::sleep_until(registered + Duration::from_secs(1)).await;
    assert!(a3.calls() > 0, "no call within 1s of registering");
    let more = more.await.expect("load");
    assert!(more.failures.is_empty(), "{:#?}", more.failures);
    let output = gateway.stop();
    assert!(output.contains("etcd unreachable"), "{output}");
    assert!(output.contains("etcd reachable again"), "{output}");
    drop((a1, a2, s1, s2, a3));
}
