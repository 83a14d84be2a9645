//! `scripts/apigateway-fleet`: one command starts etcd, the instances and the gateway; SIGTERM
//! stops them all.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use testkit::http::HttpClient;
use testkit::process::{Spawned, free_port, free_ports, workspace_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_script_starts_everything_and_stops_everything() {
    workspace_binary("addsvc", "addsvc");
    workspace_binary("stringsvc3", "stringsvc3");
    let bin_dir = std::path::Path::new(support::GATEWAY)
        .parent()
        .expect("target dir");
    let (gateway, first, etcd) = (free_port(), free_ports(4), free_ports(2));
    let script = testkit::book::workspace_root().join("scripts/apigateway-fleet");
    let mut command = Command::new(script);
    command
        .args([gateway.to_string(), first.to_string(), etcd.to_string()])
        .env("FLEET_BIN_DIR", bin_dir);
    let mut fleet = Spawned::start(command).expect("starts");
    for port in [etcd, gateway, first, first + 1, first + 2, first + 3] {
        fleet.wait_for_port(port).expect("listens");
    }

    // Every instance registers; the gateway reaches all of them.
    let http = HttpClient::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = |route: &str| format!("http://127.0.0.1:{gateway}{route}");
    loop {
        let sum = http
            .post_json(&url("/addsvc/sum"), r#"{"a":1,"b":2}"#)
            .await;
        let upper = http
            .post_json(&url("/stringsvc/uppercase"), r#"{"s":"fleet"}"#)
            .await;
        if sum.status == 200 && upper.status == 200 {
            assert_eq!(sum.body.trim(), r#"{"v":3}"#);
            assert_eq!(upper.body.trim(), r#"{"v":"FLEET","err":null}"#);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer: {} {}; {} {}\n{}",
            sum.status,
            sum.body,
            upper.status,
            upper.body,
            fleet.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let status = fleet.terminate().expect("stops");
    let output = fleet.output();
    assert!(status.success(), "{status}\n{output}");
    // The instances deregistered while etcd was still up.
    assert_eq!(output.matches("msg=deregistered").count(), 4, "{output}");
    for port in [etcd, gateway, first, first + 1, first + 2, first + 3] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}
