//! Runs the tutorial's shell transcripts that use profilesvc against the real binary.

use testkit::transcript::{Binary, run_pages};

#[test]
fn the_tutorial_transcripts_match_the_binary() {
    let ran = run_pages(
        "profilesvc",
        &[Binary::service(
            "profilesvc",
            env!("CARGO_BIN_EXE_profilesvc"),
        )],
    );
    assert!(ran > 0, "no page of the tutorial runs profilesvc");
}
