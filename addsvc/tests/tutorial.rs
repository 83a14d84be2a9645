//! Runs the tutorial's shell transcripts that use addsvc and addcli against the real binaries.

use testkit::transcript::{Binary, run_pages};

#[test]
fn the_tutorial_transcripts_match_the_binaries() {
    let ran = run_pages(
        "addsvc",
        &[
            Binary::server(
                "addsvc",
                env!("CARGO_BIN_EXE_addsvc"),
                &[
                    ("-debug.addr", ":8080"),
                    ("-http-addr", ":8081"),
                    ("-grpc-addr", ":8082"),
                    ("-thrift-addr", ":8083"),
                    ("-jsonrpc-addr", ":8084"),
                ],
            ),
            Binary::tool("addcli", env!("CARGO_BIN_EXE_addcli")),
        ],
    );
    assert!(ran > 0, "no page of the tutorial runs addsvc");
}
