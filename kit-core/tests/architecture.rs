//! kit-core's modules import each other without circles: each file depends only on files below
//! it, so a reader can learn the toolkit from the bottom up and a module can be lifted out with
//! what it stands on.
//!
//! The check reads the source as text: every `use crate::…`, `use super::…` and inline
//! `crate::…` or `super::…` path outside test code is an arrow from its file to the file that
//! defines the item (through the re-exports of a folder's `mod.rs` and of `lib.rs`). A module
//! re-exporting its own children is their front door, not a dependency, so `pub use child::…`
//! draws no arrow; any other `pub use` does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A source file, by its module path: `["transport", "http", "server"]`, `[]` for `lib.rs`.
type Module = Vec<String>;

struct Crate {
    root: PathBuf,
    /// Every module and its file.
    files: BTreeMap<Module, PathBuf>,
    /// For each module, the names it re-exports from a module below it (`pub use x::Name`).
    reexports: BTreeMap<Module, BTreeMap<String, Module>>,
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_of(root: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(root).unwrap_or(file);
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_owned();
        if stem != "mod" && stem != "lib" {
            parts.push(stem);
        }
    }
    parts
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The file's code without its test module and without comments.
fn code(file: &Path) -> String {
    let text = fs::read_to_string(file).expect("a source file");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `use` statement of `code`, expanded into whole paths, with whether it is `pub`.
fn uses(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = find_use(rest) {
        let public = rest[..at].trim_end().ends_with("pub") || rest[..at].trim_end().ends_with(')');
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        for path in expand(after[..end].trim()) {
            found.push((public, path));
        }
        rest = &after[end..];
    }
    found
}

fn find_use(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("use ") {
        let at = from + at;
        let before = text[..at].chars().last();
        if before.is_none_or(|c| c.is_whitespace()) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e` (each split on `::`).
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(&tree).to_owned();
        return vec![path.split("::").map(str::to_owned).collect()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let bytes = inner.as_bytes();
    for at in 0..=bytes.len() {
        let end = at == bytes.len();
        match if end { b',' } else { bytes[at] } {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                let item = inner[start..at].trim();
                if !item.is_empty() {
                    for mut tail in expand(item) {
                        if tail == ["self"] {
                            tail.clear();
                        }
                        let mut path: Vec<String> = prefix.split("::").map(str::to_owned).collect();
                        path.extend(tail);
                        out.push(path);
                    }
                }
                start = at + 1;
            }
            _ => {}
        }
    }
    out
}

/// Inline `crate::a::b` and `super::a` paths (those in `use` statements are found too).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for prefix in ["crate::", "super::"] {
        found.extend(paths_from(code, prefix));
    }
    found
}

fn paths_from(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let preceded = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        let tail = &rest[at..];
        if preceded {
            rest = &tail[prefix.len()..];
            continue;
        }
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        // `super::{A, B}` is a `use` group, which `uses` reads item by item.
        if !tail[end..].starts_with('{') {
            let path: Vec<String> = tail[..end]
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            found.push(path);
        }
        rest = &tail[end..];
    }
    found
}

impl Crate {
    fn read() -> Self {
        let root = source_root();
        let mut paths = Vec::new();
        collect(&root, &mut paths);
        let files: BTreeMap<Module, PathBuf> = paths
            .into_iter()
            .map(|file| (module_of(&root, &file), file))
            .collect();
        let mut krate = Crate {
            root,
            files,
            reexports: BTreeMap::new(),
        };
        let modules: Vec<Module> = krate.files.keys().cloned().collect();
        for module in modules {
            let code = code(&krate.files[&module]);
            let mut names = BTreeMap::new();
            for (public, path) in uses(&code) {
                if !public {
                    continue;
                }
                let absolute = krate.absolute(&module, &path);
                if let (Some(name), Some(target)) = (path.last(), krate.resolve(&absolute)) {
                    names.insert(name.clone(), target);
                }
            }
            krate.reexports.insert(module, names);
        }
        krate
    }

    /// `path` as written in `module`, from the crate root.
    fn absolute(&self, module: &Module, path: &[String]) -> Vec<String> {
        match path.first().map(String::as_str) {
            Some("crate") => path[1..].to_vec(),
            Some("super") => {
                let mut base = module.clone();
                let mut rest = path;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                base
            }
            Some("self") => {
                let mut base = module.clone();
                base.extend(path[1..].iter().cloned());
                base
            }
            // A child module of this one (`use child::Name` in a mod.rs), or another crate.
            Some(first)
                if self
                    .files
                    .contains_key(&[module.clone(), vec![first.to_owned()]].concat()) =>
            {
                let mut base = module.clone();
                base.extend(path.iter().cloned());
                base
            }
            _ => Vec::new(),
        }
    }

    /// The file that defines what `path` (from the crate root) names.
    fn resolve(&self, path: &[String]) -> Option<Module> {
        if path.is_empty() {
            return None;
        }
        // The longest prefix that is a module; the next segment is an item in it, perhaps one
        // it re-exports from below.
        let mut module: Module = Vec::new();
        for segment in path {
            let mut longer = module.clone();
            longer.push(segment.clone());
            if self.files.contains_key(&longer) {
                module = longer;
            } else {
                let reexported = self
                    .reexports
                    .get(&module)
                    .and_then(|names| names.get(segment));
                return Some(reexported.cloned().unwrap_or(module));
            }
        }
        Some(module)
    }

    /// Arrows from each file to the files it takes names from.
    fn arrows(&self) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut arrows = BTreeMap::new();
        for (module, file) in &self.files {
            let code = code(file);
            let mut targets = BTreeSet::new();
            let mut paths: Vec<Vec<String>> = uses(&code)
                .into_iter()
                .filter(|(public, path)| !public || !self.is_child_of(module, path))
                .map(|(_, path)| path)
                .collect();
            paths.extend(inline_paths(&code));
            for path in paths {
                let absolute = self.absolute(module, &path);
                if let Some(target) = self.resolve(&absolute)
                    && &target != module
                {
                    targets.insert(target);
                }
            }
            arrows.insert(module.clone(), targets);
        }
        arrows
    }

    /// Whether `path`, written in `module`, starts at one of `module`'s own children.
    fn is_child_of(&self, module: &Module, path: &[String]) -> bool {
        let path = match path.first().map(String::as_str) {
            Some("self") => &path[1..],
            _ => path,
        };
        path.first().is_some_and(|first| {
            let mut child = module.clone();
            child.push(first.clone());
            self.files.contains_key(&child)
        })
    }

    fn name(&self, module: &Module) -> String {
        self.files[module]
            .strip_prefix(&self.root)
            .unwrap_or(&self.files[module])
            .display()
            .to_string()
    }
}

/// The circles of `arrows`: strongly connected components of more than one file (Tarjan).
fn circles(arrows: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        arrows: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, module: &'a Module) {
            let n = self.index.len();
            self.index.insert(module, n);
            self.low.insert(module, n);
            self.stack.push(module);
            self.on_stack.insert(module);
            for next in self.arrows.get(module).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[module].min(self.low[next]);
                    self.low.insert(module, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[module].min(self.index[next]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.clone());
                    if top == module {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        arrows,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for module in arrows.keys() {
        if !walk.index.contains_key(module) {
            walk.visit(module);
        }
    }
    walk.found
}

#[test]
fn kit_core_has_no_import_circle() {
    let krate = Crate::read();
    let arrows = krate.arrows();
    let found = circles(&arrows);
    let report: Vec<String> = found
        .iter()
        .map(|circle| {
            let members: BTreeSet<&Module> = circle.iter().collect();
            let ties: Vec<String> = circle
                .iter()
                .flat_map(|from| {
                    arrows[from]
                        .iter()
                        .filter(|to| members.contains(to))
                        .map(|to| format!("{} -> {}", krate.name(from), krate.name(to)))
                        .collect::<Vec<_>>()
                })
                .collect();
            ties.join(", ")
        })
        .collect();
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

#[test]
fn the_check_sees_arrows_and_circles() {
    // The reader of paths finds what the crate's own files import.
    let krate = Crate::read();
    let arrows = krate.arrows();
    let module = |path: &str| -> Module { path.split("::").map(str::to_owned).collect() };
    let server = &arrows[&module("transport::http::server")];
    assert!(server.contains(&module("context")), "{server:?}");
    assert!(
        server.contains(&module("transport::http::decode")),
        "{server:?}"
    );
    let retry = &arrows[&module("lb::retry")];
    assert!(retry.contains(&module("lb::balancer")), "{retry:?}");
    assert!(retry.contains(&module("error")), "{retry:?}");
    assert!(
        arrows[&module("error")].is_empty(),
        "error.rs stands on nothing"
    );

    // And the circle finder finds a circle.
    let mut made_up = BTreeMap::new();
    made_up.insert(module("a"), BTreeSet::from([module("b")]));
    made_up.insert(module("b"), BTreeSet::from([module("c")]));
    made_up.insert(module("c"), BTreeSet::from([module("a")]));
    made_up.insert(module("d"), BTreeSet::from([module("a")]));
    let found = circles(&made_up);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
}
