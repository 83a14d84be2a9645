//! With the `jemalloc` feature, jemalloc is the process's `malloc`, not only Rust's global
//! allocator: C code linked into a service (SQLite in profilesvc, the C library's own
//! functions) allocates from it as Rust code does, so that what it frees goes back to the
//! system like the rest, rather than staying in glibc's heaps.
#![cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]

use kit_core::allocator::Jemalloc;
use tikv_jemalloc_ctl::thread;

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// glibc's `opendir` allocates each directory stream with `malloc`, with a buffer of 32 KiB
/// for the entries; Rust's `read_dir` calls it and allocates a few dozen bytes of its own.
#[test]
fn the_c_librarys_allocations_come_from_jemalloc() {
    let allocated = thread::allocatedp::read().expect("jemalloc counts what a thread allocates");
    let before = allocated.get();
    for _ in 0..16 {
        let entries = std::fs::read_dir(env!("CARGO_MANIFEST_DIR"));
        drop(entries.expect("the crate's directory can be listed"));
    }
    let during = allocated.get() - before;
    assert!(
        during >= 16 * 32 * 1024,
        "16 directory streams opened, {during} bytes allocated from jemalloc: the C library's \
         malloc is not jemalloc's"
    );
}
