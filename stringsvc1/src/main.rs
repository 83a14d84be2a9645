//! Run with: `cargo run -p stringsvc1`
//!
//! The binary only hands over to [`stringsvc1::cli::main`], so that tests reach everything it
//! does through the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    stringsvc1::cli::main().await
}
