//! The third stage of the Go kit tutorial: one string service calling others.
//!
//! Run three instances and a proxy in front of them:
//!
//! ```text
//! cargo run -p stringsvc3 -- -listen=:8001 &
//! cargo run -p stringsvc3 -- -listen=:8002 &
//! cargo run -p stringsvc3 -- -listen=:8003 &
//! cargo run -p stringsvc3 -- -listen=:8080 -proxy=localhost:8001,localhost:8002,localhost:8003
//! ```
//!
//! (or `scripts/stringsvc3-fleet`, which does the same). The proxy sends `uppercase` to the
//! instances in turn and answers `count` itself.
//!
//! This crate adds one service middleware to stringsvc2's, in [`proxying`]: a `StringService`
//! whose `uppercase` calls the other instances through client endpoints, each behind a rate
//! limiter and a circuit breaker, balanced round robin, with retries.

pub mod proxying;
