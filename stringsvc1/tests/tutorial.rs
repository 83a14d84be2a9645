//! Runs the tutorial's shell transcripts that use stringsvc1 against the real binary.

use testkit::transcript::{Binary, run_pages};

#[test]
fn the_tutorial_transcripts_match_the_binary() {
    let ran = run_pages(
        "stringsvc1",
        &[Binary::service(
            "stringsvc1",
            env!("CARGO_BIN_EXE_stringsvc1"),
        )],
    );
    assert!(ran > 0, "no page of the tutorial runs stringsvc1");
}
