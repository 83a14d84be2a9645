//! `kit_core::allocator` (the `jemalloc` feature) as a service's binary uses it: jemalloc as the
//! global allocator and `purge_in_background` called inside the runtime, which then hands a
//! worker's cache of freed blocks back once a second.
#![cfg(feature = "jemalloc")]

use std::time::Duration;

use kit_core::allocator::{self, CACHE_RETURN_PERIOD, Jemalloc};
use tikv_jemalloc_ctl::{Access, AsName, epoch};

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// Pages of the calling thread's arena in slabs or blocks in use: a block in a thread's cache
/// counts as in use, and the slab holding it stays there until the cache lets it go.
fn active_pages() -> usize {
    epoch::advance().expect("jemalloc refreshes its statistics");
    let arena: u32 = b"thread.arena\0"
        .name()
        .read()
        .expect("the thread has an arena");
    format!("stats.arenas.{arena}.pactive\0")
        .as_bytes()
        .name()
        .read()
        .expect("jemalloc counts its arenas' active pages")
}

/// Frees 64 blocks of 8 KiB (a connection's read buffer in hyper), of which the thread keeps
/// some in its cache.
fn free_a_connections_worth() {
    let blocks: Vec<Box<[u8]>> = (0..64)
        .map(|i| vec![i as u8; 8192].into_boxed_slice())
        .collect();
    std::hint::black_box(&blocks);
}

/// The worker is this test's thread (a current-thread runtime), idle once the blocks are freed;
/// with Tokio's clock paused, the runtime goes straight to the next timer. One test alone in
/// its binary, so that no other thread allocates from its arena meanwhile.
#[tokio::test(start_paused = true)]
async fn an_idle_workers_cache_goes_back_within_a_period() {
    let before = active_pages();
    free_a_connections_worth();
    let kept = active_pages().saturating_sub(before);
    assert!(
        kept >= 16,
        "the thread's cache keeps part of what it freed ({kept} pages in use)"
    );
    // Idle for a period without the task: the cache stays.
    tokio::time::sleep(CACHE_RETURN_PERIOD).await;
    let idle = active_pages().saturating_sub(before);
    assert!(idle + 16 > kept, "{kept} pages in use, then {idle}");

    allocator::purge_in_background();
    // The task's first tick, at once; then a load, and the worker idle for a period.
    tokio::task::yield_now().await;
    let before = active_pages();
    free_a_connections_worth();
    let kept = active_pages().saturating_sub(before);
    assert!(
        kept >= 16,
        "the cache, emptied at the task's first tick, keeps part of what the thread freed \
         again ({kept} pages in use)"
    );
    // Just past the task's next tick, so that it runs first.
    tokio::time::sleep(CACHE_RETURN_PERIOD + Duration::from_millis(1)).await;
    let left = active_pages().saturating_sub(before);
    assert!(
        left + 16 <= kept,
        "within a period the cache went back: {kept} pages in use before, {left} after"
    );
}
