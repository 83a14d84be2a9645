//! Run with: `cargo run -p addsvc`
//!
//! The binary only hands over to [`addsvc::cli::main`], so that tests reach everything it does
//! through the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    addsvc::cli::main().await
}
