//! Every fuzz target on its seed inputs, and on every input a fuzzer ever found a fault with
//! (`regressions/<target>/`), so that a fault once fixed stays fixed.

use std::path::Path;

#[test]
fn every_target_holds_on_its_seeds_and_past_findings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, target) in fuzz::TARGETS {
        let mut inputs = 0;
        for folder in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                continue;
            };
            let mut paths: Vec<_> = entries
                .map(|entry| entry.expect("a directory entry").path())
                .collect();
            paths.sort();
            for path in paths {
                let data = std::fs::read(&path).expect("a readable input");
                println!("{name}: {}", path.display());
                target(&data);
                inputs += 1;
            }
        }
        assert!(inputs >= 5, "{name}: only {inputs} seed inputs");
    }
}
