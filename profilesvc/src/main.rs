//! Run with: `cargo run -p profilesvc` (or `-- --db profiles.db` to keep the profiles)
//!
//! The binary only hands over to [`profilesvc::cli::main`], so that tests reach everything it
//! does through the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    profilesvc::cli::main().await
}
