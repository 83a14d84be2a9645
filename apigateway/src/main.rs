//! Run with: `cargo run -p apigateway -- -http.addr :8000 --etcd 127.0.0.1:2379`
//!
//! The binary only hands over to [`apigateway::cli::main`], so that tests reach everything it
//! does through the library.

use std::process::ExitCode;

/// jemalloc rather than the system's malloc: it gives the memory of a surge of connections back
/// (see `kit_core::allocator`).
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    kit_core::allocator::purge_in_background();
    apigateway::cli::main().await
}
