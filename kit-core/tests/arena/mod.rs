//! What the calling thread's jemalloc arena holds, for the tests that run with jemalloc as their
//! binary's global allocator.

use tikv_jemalloc_ctl::{Access, AsName, epoch};

/// Pages of the calling thread's arena in slabs or blocks in use: a block in a thread's cache
/// counts as in use, and the slab holding it stays there until the cache lets it go.
pub(crate) fn active_pages() -> usize {
    pages("pactive")
}

/// Pages of the calling thread's arena that nothing uses any more and that it has not yet
/// returned to the system.
#[allow(dead_code)] // Not every test binary including this module reads it.
pub(crate) fn dirty_pages() -> usize {
    pages("pdirty")
}

fn pages(statistic: &str) -> usize {
    epoch::advance().expect("jemalloc refreshes its statistics");
    let arena: u32 = b"thread.arena\0"
        .name()
        .read()
        .expect("the thread has an arena");
    format!("stats.arenas.{arena}.{statistic}\0")
        .as_bytes()
        .name()
        .read()
        .expect("jemalloc counts its arenas' pages")
}
