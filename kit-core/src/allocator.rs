//! The allocator for a service's binary: jemalloc, giving freed memory back to the system.
//!
//! glibc's malloc keeps what a surge allocated. With 5,000 keep-alive connections, stringsvc1
//! goes from 4 MiB to 60; once they have closed it still holds 57 MiB, and 94 after four more
//! surges, for as long as it runs. jemalloc holds 41 MiB during the same surge and, with its
//! background thread purging freed pages a second after they are freed, is back under 8 MiB
//! a few seconds after each one. It
//! is also quicker at the small allocations a request makes: about a tenth fewer instructions
//! per request. (Figures and how to reproduce them: the book's Performance page.)
//!
//! A binary opts in; a library cannot choose the allocator of the programs that use it:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;
//!
//! fn main() {
//!     kit_core::allocator::purge_in_background();
//!     // ...
//! }
//! ```

pub use tikv_jemallocator::Jemalloc;

/// How long freed pages stay with the process before they go back to the system: long enough
/// that a busy service reuses them rather than asking again, short enough that a surge's memory
/// is gone by the time anyone looks (jemalloc's own default is ten seconds).
pub const RETURN_AFTER_MS: isize = 1000;

/// Starts jemalloc's background thread, which returns freed pages to the system
/// [`RETURN_AFTER_MS`] after they are freed. Without it, jemalloc purges only while the program
/// allocates, so a service left idle after a surge would keep its memory.
///
/// Call it first thing in `main`. Does nothing (and says so on stderr) if jemalloc refuses.
pub fn purge_in_background() {
    use tikv_jemalloc_ctl::{Access, AsName};
    // Freed pages are "dirty" for a while, then "muzzy" (given back with MADV_FREE, which
    // Linux takes only under memory pressure: they still count as resident), then returned.
    // Skipping the muzzy stage returns them for good after the dirty one.
    let decays = [("dirty_decay_ms", RETURN_AFTER_MS), ("muzzy_decay_ms", 0)];
    for (setting, value) in decays {
        // For the arenas made from now on (one per thread that allocates)...
        let key = format!("arenas.{setting}\0");
        if let Err(err) = key.as_bytes().name().write(value) {
            eprintln!("jemalloc: cannot set arenas.{setting}: {err}");
        }
        // ...and for those that exist already (the runtime's threads may have made some);
        // the others, not yet made, refuse.
        let arenas: u32 = b"arenas.narenas\0".name().read().unwrap_or(0);
        for arena in 0..arenas {
            let key = format!("arena.{arena}.{setting}\0");
            let _ = key.as_bytes().name().write(value);
        }
    }
    // One thread is enough to purge a service's few arenas; jemalloc would start one per
    // group of arenas (four on two CPUs), each with its stack and caches.
    if let Err(err) = tikv_jemalloc_ctl::max_background_threads::write(1) {
        eprintln!("jemalloc: cannot limit its background threads: {err}");
    }
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("jemalloc: cannot start the background thread that returns freed memory: {err}");
    }
}
