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
//! The background thread can only return pages that nothing holds, and each thread keeps a
//! cache of the blocks it freed last (hyper's 8 KiB buffers among them) that only its own
//! allocations empty: a worker that goes idle after a load keeps its cache for as long as it
//! stays idle, up to a mebibyte in the proxy. So, inside a Tokio runtime, the same call starts a
//! task that hands the cache of the worker it runs on back once a [second](CACHE_RETURN_PERIOD)
//! ([`return_thread_cache`]), and then returns every freed page to the system at once
//! ([`return_freed_pages`]) rather than a second later.
//!
//! On Linux, jemalloc is also the process's `malloc` (it is built unprefixed: the binary defines
//! `malloc`, `free` and the rest, ahead of the C library's), so the C code linked into a service
//! allocates from it as Rust code does: SQLite in profilesvc, and the C library's own calls. A
//! thread's glibc heap is given back only from its top: under SQLite, profilesvc kept, in about
//! one run in sixteen of the load benchmark's POST on SQLite, a free megabyte of a database
//! thread's heap beneath a few KiB still in use. jemalloc returns freed pages wherever they lie.
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

use std::time::Duration;

use tikv_jemalloc_ctl::{Access, AsName};
pub use tikv_jemallocator::Jemalloc;

/// How long freed pages stay with the process before they go back to the system: long enough
/// that a busy service reuses them rather than asking again, short enough that a surge's memory
/// is gone by the time anyone looks (jemalloc's own default is ten seconds).
pub const RETURN_AFTER_MS: isize = 1000;

/// How often the task [`purge_in_background`] starts hands a worker's cache back and returns the
/// freed pages. Under load the next few requests refill the cache from the arena, once a second,
/// a cost the load benchmark does not show; once the load is over, the cache and its pages go
/// within a second.
pub const CACHE_RETURN_PERIOD: Duration = Duration::from_secs(1);

/// Starts jemalloc's background thread, which returns freed pages to the system
/// [`RETURN_AFTER_MS`] after they are freed. Without it, jemalloc purges only while the program
/// allocates, so a service left idle after a surge would keep its memory.
///
/// Called inside a Tokio runtime, as from an `async fn main`, it also spawns a task that, every
/// [`CACHE_RETURN_PERIOD`], hands the cache of freed blocks of the worker thread running it back
/// to jemalloc ([`return_thread_cache`]) and returns the pages freed so far to the system
/// ([`return_freed_pages`]). On a runtime with one worker (a service given one CPU:
/// `available_parallelism` follows `taskset` and a container's CPU quota) that is every worker;
/// with several, it is whichever worker the task wakes on, and the others keep their caches
/// while they sit idle.
///
/// Call it first thing in `main`. Does nothing (and says so on stderr) if jemalloc refuses.
pub fn purge_in_background() {
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
        // ...and for those that exist already (the runtime's threads may have made some).
        write_every_arena(setting, value);
    }
    // One thread is enough to purge a service's few arenas; jemalloc would start one per
    // group of arenas (four on two CPUs), each with its stack and caches.
    if let Err(err) = tikv_jemalloc_ctl::max_background_threads::write(1) {
        eprintln!("jemalloc: cannot limit its background threads: {err}");
    }
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("jemalloc: cannot start the background thread that returns freed memory: {err}");
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(return_caches_periodically());
    }
}

/// Hands the calling thread's cache of freed blocks back to jemalloc's arenas, where the
/// background thread can return the pages they free. The thread starts a new, empty cache with
/// its next allocation. Call it from a thread that is about to sit idle after a busy spell (a
/// worker thread of its own, say); a thread whose cache is off (`MALLOC_CONF` `tcache:false`)
/// is left as it is.
pub fn return_thread_cache() {
    // jemalloc's `thread.tcache.flush` takes no value, which this crate's safe calls cannot
    // pass; turning the thread's cache off empties it the same way, and back on starts anew.
    let enabled = b"thread.tcache.enabled\0".name();
    if enabled.read() == Ok(true) && enabled.write(false).is_ok() {
        let _ = enabled.write(true);
    }
}

/// Every [`CACHE_RETURN_PERIOD`], the cache of whichever worker runs it.
async fn return_caches_periodically() {
    let mut ticks = tokio::time::interval(CACHE_RETURN_PERIOD);
    // After a long poll elsewhere, one hand-back is enough, not one for each period missed.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        return_thread_cache();
        return_freed_pages();
    }
}

/// Returns every freed page the arenas hold to the system now, rather than over the next
/// [`RETURN_AFTER_MS`]. The background thread returns a page a second after it was freed, so the
/// memory a load's last moments freed (a worker's cache handed back, the connections a pool
/// closes a second after the load) would go a second after the hand-back, and a service read
/// two seconds after a load would still hold it.
///
/// Under load, pages freed and reused within a second are returned and faulted in again once a
/// second: a few hundred page faults a second at most, against a load of thousands of requests.
pub fn return_freed_pages() {
    // `arena.<i>.purge` takes no value, as `thread.tcache.flush`; setting an arena's decay time
    // to zero purges its freed pages there and then (jemalloc does it in the calling thread,
    // whereas any other value leaves them to the background thread's next wake-up), and the
    // time set back starts counting afresh.
    write_every_arena("dirty_decay_ms", 0);
    write_every_arena("dirty_decay_ms", RETURN_AFTER_MS);
}

/// Writes `value` to the `setting` of every arena made so far, `arena.<i>.<setting>`; the
/// indexes not yet used by any arena refuse, and are skipped.
fn write_every_arena(setting: &str, value: isize) {
    let arenas: u32 = b"arenas.narenas\0".name().read().unwrap_or(0);
    for arena in 0..arenas {
        let key = format!("arena.{arena}.{setting}\0");
        let _ = key.as_bytes().name().write(value);
    }
}
