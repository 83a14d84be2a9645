//! Run with: `cargo run -p profilesvc` (or `-- --db profiles.db` to keep the profiles)
//!
//! The binary only hands over to [`profilesvc::cli::main`], so that tests reach everything it
//! does through the library.

use std::process::ExitCode;

/// jemalloc rather than the system's malloc: it gives the memory of a surge of connections back
/// (see `kit_core::allocator`).
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    kit_core::allocator::purge_in_background();
    profilesvc::cli::main().await
}
