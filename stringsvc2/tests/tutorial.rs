//! Runs the tutorial's shell transcripts that use stringsvc2 against the real binary.

use testkit::transcript::{Binary, run_pages};

#[test]
fn the_tutorial_transcripts_match_the_binary() {
    let ran = run_pages(
        "stringsvc2",
        &[Binary::service(
            "stringsvc2",
            env!("CARGO_BIN_EXE_stringsvc2"),
        )],
    );
    assert!(ran > 0, "no page of the tutorial runs stringsvc2");
}
