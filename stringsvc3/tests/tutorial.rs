//! Runs the tutorial's shell transcripts that use stringsvc3 against the real binary.

use testkit::transcript::{Binary, run_pages};

#[test]
fn the_tutorial_transcripts_match_the_binary() {
    let ran = run_pages(
        "stringsvc3",
        &[Binary::service(
            "stringsvc3",
            env!("CARGO_BIN_EXE_stringsvc3"),
        )],
    );
    assert!(ran > 0, "no page of the tutorial runs stringsvc3");
}
