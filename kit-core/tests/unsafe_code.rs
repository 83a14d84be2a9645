//! The workspace denies unsafe code (`unsafe_code = "deny"` in its Cargo.toml) and allows it in
//! one module, kit-core's `cmath`, which names five C functions for the linker. A deny, unlike a
//! forbid, can be lifted by any file with an attribute: this test keeps it to that one.

use std::fs;
use std::path::{Path, PathBuf};

/// The one file allowed to lift the lint.
const ALLOWED: &str = "kit-core/src/cmath.rs";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir)
        .expect("a folder of the workspace")
        .flatten()
    {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// The attributes of `text` that lift `unsafe_code` (`#[allow(unsafe_code)]`,
/// `#![expect(unsafe_code)]`...), with their line numbers.
fn lifts(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            (line.starts_with("#[") || line.starts_with("#!["))
                && line.contains("unsafe_code")
                && (line.contains("allow") || line.contains("expect") || line.contains("warn"))
        })
        .map(|(n, line)| (n + 1, line.trim().to_owned()))
        .collect()
}

#[test]
fn only_cmath_lifts_the_workspace_ban_on_unsafe_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 100, "too few files found: {}", files.len());
    let mut found = Vec::new();
    let mut report = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file);
        let relative = relative.to_string_lossy().replace('\\', "/");
        let text = fs::read_to_string(file).expect("a source file");
        for (line, attribute) in lifts(&text) {
            report.push(format!("{relative}:{line}: {attribute}"));
            found.push(format!("{relative}: {attribute}"));
        }
    }
    assert_eq!(
        found,
        [format!("{ALLOWED}: #![allow(unsafe_code)]")],
        "unsafe code is denied in the workspace and only {ALLOWED} may allow it; found:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_sees_every_way_of_lifting_the_lint() {
    let text = "#![allow(unsafe_code)]\n  #[expect(unsafe_code, reason = \"x\")]\n#[allow(dead_code)]\n// #[allow(unsafe_code)]\n#[warn(unsafe_code)]\n";
    let lines: Vec<usize> = lifts(text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, [1, 2, 5]);
}
