//! Run with: `cargo run -p addsvc --bin addcli -- -grpc-addr localhost:8082 1 2`
//!
//! Go kit's `addcli`: calls addsvc once, over the transport whose address is given, through the
//! client package, and prints the answer.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    addsvc::cli::addcli().await
}
