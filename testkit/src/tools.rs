//! Tools the tests run beside the binaries, installed by the project's own scripts.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::book::workspace_root;

/// The path of `promtool`, Prometheus's checker for exposition output, installed by
/// `scripts/install-promtool` on first use (from Debian's `prometheus` package).
///
/// Panics with the script's own message when it cannot be installed: a check that cannot run
/// must fail, not pass.
pub fn promtool() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    installed(&PATH, "install-promtool", "promtool")
}

/// The path of schemathesis's `st`, an API fuzzer driven by an OpenAPI document, installed by
/// `scripts/install-schemathesis` on first use (from PyPI, into a virtual environment under
/// `target/tools`).
///
/// Panics with the script's own message when it cannot be installed, as [`promtool`] does.
pub fn schemathesis() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    installed(&PATH, "install-schemathesis", "schemathesis")
}

/// The path of an etcd server, installed by `scripts/install-etcd` on first use (from Debian's
/// `etcd-server` package, without setting up its system service).
///
/// Panics with the script's own message when it cannot be installed, as [`promtool`] does.
pub fn etcd() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    installed(&PATH, "install-etcd", "etcd")
}

/// Runs `scripts/<script>` once per process, which prints the tool's path.
fn installed(cell: &OnceLock<Result<PathBuf, String>>, script: &str, tool: &str) -> PathBuf {
    let found = cell.get_or_init(|| {
        let script = workspace_root().join("scripts").join(script);
        let output = Command::new(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}):\n{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok(PathBuf::from(path))
    });
    match found {
        Ok(path) => path.clone(),
        Err(problem) => panic!("{tool} is not available: {problem}"),
    }
}
