//! A histogram's samples, once folded into its buckets by the registry's upkeep, are freed
//! within a few upkeeps, even when no more samples come: what a service holds after a load.
#![cfg(all(feature = "jemalloc", feature = "metrics"))]

use std::time::Duration;

use kit_core::allocator::{self, Jemalloc};
use kit_core::metrics::Registry;

mod arena;

#[global_allocator]
static ALLOCATOR: Jemalloc = Jemalloc;

/// Pages of the calling thread's arena in use, once the thread's cache of freed blocks is handed
/// back (a block in the cache counts as in use).
fn active_pages() -> usize {
    allocator::return_thread_cache();
    arena::active_pages()
}

/// The upkeep runs on this test's thread (a current-thread runtime) with Tokio's clock paused:
/// each period passes at once. One test alone in its binary, so that no other thread allocates
/// from its arena meanwhile.
#[tokio::test(start_paused = true)]
async fn a_histograms_folded_samples_are_freed_once_no_more_come() {
    let registry = Registry::new();
    let histogram = registry.histogram("test_duration_seconds", "A test's durations.", &[]);
    let upkeep = Duration::from_millis(250);
    tokio::spawn(registry.clone().upkeep(upkeep));
    tokio::task::yield_now().await;

    let before = active_pages();
    // About a quarter of a second of a busy service's requests.
    for i in 0..100_000 {
        histogram.record(f64::from(i) * 1e-6);
    }
    let recorded = active_pages().saturating_sub(before);
    assert!(
        recorded >= 150,
        "the samples take their blocks ({recorded} pages in use)"
    );

    // The next upkeep folds them into the buckets; then no more samples come, for a second.
    tokio::time::sleep(upkeep * 4 + Duration::from_millis(1)).await;
    let left = active_pages().saturating_sub(before);
    assert!(
        left * 10 < recorded,
        "a second after the last sample, its blocks are freed: {recorded} pages in use, then \
         {left}"
    );
    let text = registry.render();
    assert!(
        text.contains("test_duration_seconds_count 100000"),
        "every sample was counted: {text}"
    );
}
