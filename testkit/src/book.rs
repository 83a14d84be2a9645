//! The tutorial's pages: finding them, reading their code blocks, checking their includes.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

/// The root of the workspace.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The book's source folder, `docs/src`.
pub fn book_src() -> PathBuf {
    workspace_root().join("docs").join("src")
}

/// Every page whose transcripts and includes are checked: the book's Markdown files and the
/// README, in a stable order.
pub fn pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    collect_markdown(&book_src(), &mut pages);
    pages.sort();
    pages.push(workspace_root().join("README.md"));
    pages
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// A path relative to the workspace root, for messages.
pub fn display(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced code block of a page.
#[derive(Debug, Clone)]
pub struct Block {
    /// The page it is on.
    pub page: PathBuf,
    /// The 1-based line of its opening fence.
    pub line: usize,
    /// The fence's info string, e.g. `console` or `rust,ignore`.
    pub info: String,
    /// Its lines, without the fences.
    pub lines: Vec<String>,
}

impl Block {
    /// Where the block is, as `page:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", display(&self.page), self.line)
    }

    /// The block's language: the info string up to the first comma or space.
    pub fn language(&self) -> &str {
        self.info.split([',', ' ']).next().unwrap_or_default()
    }
}

/// The fenced code blocks of a page's text.
pub fn blocks(page: &Path, text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, Block)> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(fence) = fence_of(trimmed) {
                    open = Some((
                        fence.to_owned(),
                        Block {
                            page: page.to_path_buf(),
                            line: index + 1,
                            info: trimmed[fence.len()..].trim().to_owned(),
                            lines: Vec::new(),
                        },
                    ));
                }
            }
            Some((fence, block)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed[fence.len()..].trim().is_empty() {
                    if let Some((_, block)) = open.take() {
                        blocks.push(block);
                    }
                } else {
                    block.lines.push(line.to_owned());
                }
            }
        }
    }
    blocks
}

fn fence_of(line: &str) -> Option<&str> {
    for marker in ["```", "~~~"] {
        if line.starts_with(marker) {
            let len = line.len() - line.trim_start_matches(marker.as_bytes()[0] as char).len();
            return Some(&line[..len]);
        }
    }
    None
}

/// Checks every `{{#include}}` and `{{#rustdoc_include}}` of a page: the file must exist, and a
/// named anchor must be opened and closed in it. Returns one message per problem.
pub fn check_includes(page: &Path, text: &str) -> Vec<String> {
    let directive = Regex::new(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
        .unwrap_or_else(|e| panic!("include pattern: {e}"));
    let base = page.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for found in directive.captures_iter(line) {
            let escaped = found
                .get(0)
                .is_some_and(|m| line[..m.start()].ends_with('\\'));
            if escaped {
                // `\{{#include …}}` is mdBook's way of showing the directive itself.
                continue;
            }
            let where_ = format!("{}:{}", display(page), index + 1);
            let target = &found[2];
            let (file, selector) = match target.split_once(':') {
                Some((file, selector)) => (file, Some(selector)),
                None => (target, None),
            };
            let path = base.join(file);
            let Ok(source) = fs::read_to_string(&path) else {
                problems.push(format!("{where_}: includes {file}, which does not exist"));
                continue;
            };
            let Some(selector) = selector else { continue };
            if selector
                .split(':')
                .all(|n| n.is_empty() || n.parse::<usize>().is_ok())
            {
                let lines = source.lines().count();
                let first = selector
                    .split(':')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok());
                if let Some(first) = first.filter(|&first| first > lines) {
                    problems.push(format!(
                        "{where_}: includes line {first} of {file}, which has {lines} lines"
                    ));
                }
                continue;
            }
            let anchor = selector;
            let opens = source
                .lines()
                .position(|l| anchor_of(l, "ANCHOR:") == Some(anchor));
            let closes = source
                .lines()
                .position(|l| anchor_of(l, "ANCHOR_END:") == Some(anchor));
            match (opens, closes) {
                (Some(open), Some(close)) if open < close => {}
                (None, _) => problems.push(format!(
                    "{where_}: includes anchor \"{anchor}\" of {file}, which has no `ANCHOR: {anchor}`"
                )),
                (_, None) => problems.push(format!(
                    "{where_}: anchor \"{anchor}\" of {file} has no `ANCHOR_END: {anchor}`"
                )),
                _ => problems.push(format!(
                    "{where_}: anchor \"{anchor}\" of {file} ends before it begins"
                )),
            }
        }
    }
    problems
}

fn anchor_of<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let at = line.find(marker)?;
    line[at + marker.len()..].split_whitespace().next()
}

/// Whether a line is an include directive, the only content allowed in a Rust block.
pub fn is_include(line: &str) -> bool {
    let line = line.trim();
    line.is_empty()
        || ((line.starts_with("{{#include ") || line.starts_with("{{#rustdoc_include "))
            && line.ends_with("}}"))
}

/// The pages that `SUMMARY.md` links to, relative to `docs/src`.
pub fn summary_links(summary: &str) -> Vec<String> {
    let link = Regex::new(r"\]\(([^)]+\.md)\)").unwrap_or_else(|e| panic!("link pattern: {e}"));
    link.captures_iter(summary)
        .map(|c| c[1].trim_start_matches("./").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(page_text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let source = dir.path().join("code.rs");
        fs::write(
            &source,
            "// ANCHOR: good\nfn good() {}\n// ANCHOR_END: good\n// ANCHOR: open\n// ANCHOR_END: backwards\n// ANCHOR: backwards\n",
        )
        .expect("write");
        let page = dir.path().join("page.md");
        check_includes(&page, page_text)
            .into_iter()
            .map(|p| {
                p.split_once(": ")
                    .map_or(p.clone(), |(_, rest)| rest.to_owned())
            })
            .collect()
    }

    #[test]
    fn good_includes_pass() {
        assert!(
            problems("{{#include code.rs}}\n{{#include code.rs:good}}\n{{#include code.rs:1:2}}")
                .is_empty()
        );
        assert!(problems("shown, not run: `\\{{#include missing.rs}}`").is_empty());
    }

    #[test]
    fn missing_files_and_anchors_are_reported() {
        assert_eq!(
            problems("{{#include missing.rs:good}}"),
            ["includes missing.rs, which does not exist"]
        );
        assert_eq!(
            problems("{{#rustdoc_include code.rs:nope}}"),
            ["includes anchor \"nope\" of code.rs, which has no `ANCHOR: nope`"]
        );
        assert_eq!(
            problems("{{#include code.rs:open}}"),
            ["anchor \"open\" of code.rs has no `ANCHOR_END: open`"]
        );
        assert_eq!(
            problems("{{#include code.rs:backwards}}"),
            ["anchor \"backwards\" of code.rs ends before it begins"]
        );
        assert_eq!(
            problems("{{#include code.rs:40:50}}"),
            ["includes line 40 of code.rs, which has 6 lines"]
        );
    }

    #[test]
    fn blocks_are_found_with_their_language() {
        let text = "intro\n```console\n$ true\n```\n````rust,ignore\n```\ninner\n````\n";
        let found = blocks(Path::new("p.md"), text);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].language(), found[0].line), ("console", 2));
        assert_eq!(found[0].lines, ["$ true"]);
        assert_eq!(found[1].language(), "rust");
        assert_eq!(found[1].lines, ["```", "inner"]);
    }
}
