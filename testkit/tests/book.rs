//! The tutorial's own checks: includes resolve, Rust blocks are included from the crates, every
//! page is in the table of contents, and every transcript has a crate that runs it (a page about
//! several services, the crate whose test names them all).

use std::fs;

use testkit::book::{self, blocks, check_includes, display, is_include, summary_links};
use testkit::transcript::{packages_of, pages_with_transcripts, steps};

#[test]
fn every_include_resolves() {
    let mut problems = Vec::new();
    for page in book::pages() {
        let text = fs::read_to_string(&page).unwrap_or_default();
        problems.extend(check_includes(&page, &text));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rust_blocks_show_real_code() {
    let mut problems = Vec::new();
    for page in book::pages() {
        let text = fs::read_to_string(&page).unwrap_or_default();
        for block in blocks(&page, &text) {
            if block.language() == "rust" && !block.lines.iter().all(|l| is_include(l)) {
                problems.push(format!(
                    "{}: a Rust block must only {{{{#include}}}} code from the crates, so that it compiles",
                    block.location()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_summary_lists_every_page_and_only_existing_ones() {
    let src = book::book_src();
    let summary = fs::read_to_string(src.join("SUMMARY.md")).expect("docs/src/SUMMARY.md");
    let links = summary_links(&summary);
    let mut problems = Vec::new();
    for link in &links {
        if !src.join(link).is_file() {
            problems.push(format!("SUMMARY.md links to {link}, which does not exist"));
        }
    }
    for page in book::pages() {
        let Ok(relative) = page.strip_prefix(&src) else {
            continue;
        };
        let relative = relative.display().to_string();
        if relative != "SUMMARY.md" && !links.contains(&relative) {
            problems.push(format!("docs/src/{relative} is not linked from SUMMARY.md"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_transcript_is_run_by_a_crate() {
    let root = book::workspace_root();
    let mut problems = Vec::new();
    let mut transcripts = 0;
    for (page, page_blocks) in pages_with_transcripts() {
        for block in &page_blocks {
            transcripts += 1;
            if let Err(problem) = steps(block) {
                problems.push(problem);
            }
        }
        let packages = packages_of(&page_blocks);
        let page = display(&page);
        match packages.len() {
            0 => problems.push(format!(
                "{page}: its transcripts run no `cargo run -p PACKAGE`, so no crate runs them"
            )),
            1 => {
                let package = packages
                    .iter()
                    .next()
                    .map(String::as_str)
                    .unwrap_or_default();
                let runner = root.join(package).join("tests").join("tutorial.rs");
                let runs = fs::read_to_string(&runner).is_ok_and(|text| text.contains("run_pages"));
                if !runs {
                    problems.push(format!(
                        "{page}: its transcripts run {package}, but {package}/tests/tutorial.rs does not call testkit::transcript::run_pages"
                    ));
                }
            }
            _ => {
                // One of them runs the page with the others' binaries.
                let runs = packages.iter().any(|package| {
                    fs::read_to_string(root.join(package).join("tests").join("tutorial.rs"))
                        .is_ok_and(|text| {
                            text.contains("run_pages_with")
                                && packages
                                    .iter()
                                    .all(|other| text.contains(&format!("\"{other}\"")))
                        })
                });
                if !runs {
                    problems.push(format!(
                        "{page}: its transcripts run several packages ({packages:?}), and none of their tests/tutorial.rs runs it with testkit::transcript::run_pages_with and the others' binaries"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(transcripts > 0, "the tutorial has no transcripts at all");
}
