//! Instances register themselves in etcd, leave at once on SIGTERM, and when their lease
//! expires on SIGKILL.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::{addsvc, stringsvc, until_registered};
use testkit::etcd::Etcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_register_and_leave() {
    let etcd = Etcd::start();
    let mut a1 = addsvc(&etcd.endpoint());
    let a2 = addsvc(&etcd.endpoint());
    let s1 = stringsvc(&etcd.endpoint());
    let mut s2 = stringsvc(&etcd.endpoint());
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

    // SIGTERM: deregistered before the drain, well within a second.
    a1.signal(Signal::SIGTERM);
    let took = until_registered(&etcd, "addsvc", &[&a2.address], Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "deregistered after {took:?}");
    let status = a1.service.process().wait().expect("exits");
    assert!(status.success(), "{status}: {}", a1.service.output());
    assert!(
        a1.service
            .output()
            .contains("msg=deregistered key=/services/addsvc/"),
        "{}",
        a1.service.output()
    );

    // SIGKILL: nothing deregisters; the lease (2 s) expires.
    s2.signal(Signal::SIGKILL);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        support::registered(&etcd, "stringsvc").await.len(),
        2,
        "still registered until its lease expires"
    );
    until_registered(&etcd, "stringsvc", &[&s1.address], Duration::from_secs(5)).await;
}

#[test]
fn a_time_to_live_under_a_second_is_refused() {
    let bin = testkit::process::workspace_binary("stringsvc3", "stringsvc3");
    let finished = testkit::process::run(
        &bin.to_string_lossy(),
        &["--etcd", "127.0.0.1:2379", "--etcd-ttl", "500ms"],
    );
    assert_eq!(finished.code, Some(2), "{finished:?}");
    assert_eq!(
        finished.stderr.trim(),
        "error: --etcd-ttl: must be at least 1s"
    );
}
