//! How long to wait before trying an unreachable etcd again.

use std::time::Duration;

/// Exponential backoff: a first wait, doubled after each failure up to a ceiling, and back to
/// the first once a try succeeds. Without jitter: the processes that wait on one etcd started
/// at different times, and a restarted etcd should see them back within the ceiling.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    ceiling: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits starting at `first`, never longer than `ceiling`.
    pub fn new(first: Duration, ceiling: Duration) -> Self {
        Backoff {
            first,
            ceiling,
            next: first,
        }
    }

    /// The wait before the next try, doubling the one after it.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.ceiling);
        wait
    }

    /// A try succeeded: the next failure waits the first wait again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    /// 100 ms doubling up to 2 s: an etcd that comes back is found again within 2 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
    }
}
