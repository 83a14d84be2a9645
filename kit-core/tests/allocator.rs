//! `kit_core::allocator` (the `jemalloc` feature) as a service's binary uses it: jemalloc as the
//! global allocator and `purge_in_background` called inside the runtime, which then hands a
//! worker's cache of freed blocks back once a second, and the pages freed by then to the system.
#![cfg(feature = "jemalloc")]

use std::time::Duration;

use kit_core::allocator::{self, CACHE_RETURN_PERIOD, Jemalloc};

mod arena;
use arena::{active_pages, dirty_pages};

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

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
async fn an_idle_workers_cache_and_its_pages_go_back_within_a_period() {
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
    // And the pages it freed went back to the system there and then, not a second later.
    let dirty = dirty_pages();
    assert!(
        dirty < 16,
        "the freed pages were returned at the tick: {dirty} pages still held"
    );
}
