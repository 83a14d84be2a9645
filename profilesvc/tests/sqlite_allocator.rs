//! SQLite allocates with the C library's `malloc`, which the service's jemalloc replaces
//! (kit-core's `jemalloc` feature, as `src/main.rs` uses it): what a database connection frees
//! goes back to the system within a second like the rest of the service's memory, rather than
//! staying in a thread's glibc heap, which glibc gives back only from its top.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use rusqlite::Connection;
use tikv_jemalloc_ctl::thread;

#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

/// 10 000 rows of 100 bytes, made by SQLite itself (no value passes through Rust), fill pages
/// of an in-memory database that SQLite allocates on the calling thread.
#[test]
fn sqlites_pages_come_from_jemalloc() {
    let conn = Connection::open_in_memory().expect("an in-memory database opens");
    conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, s TEXT NOT NULL)")
        .expect("the table is created");
    let allocated = thread::allocatedp::read().expect("jemalloc counts what a thread allocates");
    let before = allocated.get();
    conn.execute_batch(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10000)
         INSERT INTO t SELECT n, printf('%0100d', n) FROM c",
    )
    .expect("the rows are inserted");
    let during = allocated.get() - before;
    assert!(
        during >= 1_000_000,
        "a megabyte of rows inserted, {during} bytes allocated from jemalloc: SQLite's malloc \
         is not jemalloc's"
    );
}
