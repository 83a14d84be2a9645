//! Runs the tutorial's apigateway page against the real binaries: etcd, the gateway, and the
//! addsvc and stringsvc3 instances behind it.

use testkit::process::workspace_binary;
use testkit::tools;
use testkit::transcript::{Binary, run_pages_with};

#[test]
fn the_tutorial_transcripts_match_the_binaries() {
    let addsvc = workspace_binary("addsvc", "addsvc");
    let stringsvc3 = workspace_binary("stringsvc3", "stringsvc3");
    let etcd = tools::etcd();
    let ran = run_pages_with(
        "apigateway",
        &["addsvc", "stringsvc3"],
        &[
            Binary::server(
                "apigateway",
                env!("CARGO_BIN_EXE_apigateway"),
                &[("-http.addr", ":8000")],
            ),
            Binary::server(
                "addsvc",
                &addsvc.to_string_lossy(),
                &[
                    ("-debug.addr", ":8080"),
                    ("-http-addr", ":8081"),
                    ("-grpc-addr", ":8082"),
                    ("-thrift-addr", ":8083"),
                    ("-jsonrpc-addr", ":8084"),
                ],
            ),
            Binary::service("stringsvc3", &stringsvc3.to_string_lossy()),
            Binary::external(
                "target/tools/etcd",
                &etcd.to_string_lossy(),
                &["--listen-client-urls"],
            )
            .dies_by_sigterm(),
        ],
    );
    assert!(ran > 0, "no page of the tutorial runs the apigateway");
}
