//! Service discovery: where a service's instances are, and one endpoint per instance (Go kit's
//! `sd`).
//!
//! An [`Instancer`] is a source of instance sets: it pushes a full snapshot, an [`Event`], to
//! every subscriber whenever the set changes, and a new subscriber gets the current one at once.
//! [`FixedInstancer`] is a set given at start-up; a dynamic backend (DNS SRV, Consul, etcd) owns
//! a [`Broadcaster`] and publishes what it discovers, and callers do not change: `etcd` (with
//! the `etcd` feature) is such a backend, with the registrar that services put themselves in
//! it with.
//!
//! An [`Endpointer`] turns the instances into endpoints with a factory (instance string to
//! [`Endpoint`](crate::endpoint::Endpoint)), keeping one endpoint per instance: kept across
//! updates, built for new instances, dropped for vanished ones. Balancers
//! ([`lb`](crate::lb)) pick from it. [`discover`] offers the same instances to tower's own
//! balancers (`tower::balance::p2c`) as a `tower::discover::Discover`.
//!
//! | Go kit | kit-core |
//! |---|---|
//! | `sd.Event{Instances, Err}` | [`Event`] |
//! | `sd.Instancer` (`Register`, `Deregister`) | [`Instancer::subscribe`] (a `tokio::sync::watch` receiver; dropping it deregisters) |
//! | `sd.FixedInstancer` | [`FixedInstancer`] |
//! | `sd.Factory` | any `Fn(&str) -> Result<Endpoint<Req, Resp>, E>` |
//! | `sd.NewEndpointer`, `sd.FixedEndpointer` | [`Endpointer`] |
//! | (internal instance cache) | [`Broadcaster`]: sorts, removes duplicates, skips repeats |

mod cache;
mod discover;
mod endpointer;
#[cfg(feature = "etcd")]
pub mod etcd;

use std::sync::Arc;

use tokio::sync::watch;

pub use discover::{Discover, discover};
pub use endpointer::{DiscoveryError, Endpointer};

/// A snapshot of a service's instances (Go kit's `sd.Event`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Every instance, as `host:port` or a URL, without duplicates: sorted when a
    /// [`Broadcaster`] published them, in the given order for a [`FixedInstancer`].
    pub instances: Vec<String>,
    /// Why discovery failed, if it did; `instances` is then empty, and endpointers keep the
    /// endpoints they had.
    pub error: Option<String>,
}

/// A source of instance sets (Go kit's `sd.Instancer`).
pub trait Instancer: Send + Sync {
    /// A receiver that holds the current [`Event`] and sees every later one. Dropping it stops
    /// the updates.
    fn subscribe(&self) -> watch::Receiver<Event>;
}

/// The publishing side of an [`Instancer`]: a discovery backend publishes each set it finds,
/// and every subscriber sees it. Sets are sorted and deduplicated, and a set equal to the
/// current one is not published again.
#[derive(Debug, Clone)]
pub struct Broadcaster {
    sender: Arc<watch::Sender<Event>>,
}

impl Broadcaster {
    /// A broadcaster with no instances yet.
    pub fn new() -> Self {
        Broadcaster {
            sender: Arc::new(watch::Sender::new(Event::default())),
        }
    }

    /// Publishes a new set of instances.
    pub fn publish(&self, instances: impl IntoIterator<Item = impl Into<String>>) {
        let mut instances: Vec<String> = instances.into_iter().map(Into::into).collect();
        instances.sort();
        instances.dedup();
        self.send(Event {
            instances,
            error: None,
        });
    }

    /// Publishes a discovery failure.
    pub fn publish_error(&self, error: impl std::fmt::Display) {
        self.send(Event {
            instances: Vec::new(),
            error: Some(error.to_string()),
        });
    }

    fn send(&self, event: Event) {
        self.sender.send_if_modified(|current| {
            let changed = *current != event;
            if changed {
                *current = event;
            }
            changed
        });
    }
}

impl Default for Broadcaster {
    fn default() -> Self {
        Self::new()
    }
}

impl Instancer for Broadcaster {
    fn subscribe(&self) -> watch::Receiver<Event> {
        self.sender.subscribe()
    }
}

/// A fixed set of instances (Go kit's `sd.FixedInstancer`), such as stringsvc3's `--proxy` list.
#[derive(Debug, Clone)]
pub struct FixedInstancer {
    broadcaster: Broadcaster,
}

impl FixedInstancer {
    /// These instances, for good, in the order given (duplicates dropped), so that a round
    /// robin takes them in that order as Go kit's does.
    pub fn new(instances: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for instance in instances.into_iter().map(Into::into) {
            if !unique.contains(&instance) {
                unique.push(instance);
            }
        }
        let broadcaster = Broadcaster::new();
        broadcaster.send(Event {
            instances: unique,
            error: None,
        });
        FixedInstancer { broadcaster }
    }
}

impl Instancer for FixedInstancer {
    fn subscribe(&self) -> watch::Receiver<Event> {
        self.broadcaster.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_the_current_set_sorted_and_deduplicated() {
        let broadcaster = Broadcaster::new();
        broadcaster.publish(["b:2", "a:1", "b:2"]);
        assert_eq!(broadcaster.subscribe().borrow().instances, ["a:1", "b:2"]);
    }

    #[test]
    fn a_fixed_instancer_keeps_the_given_order() {
        let instancer = FixedInstancer::new(["b:2", "a:1", "b:2"]);
        assert_eq!(instancer.subscribe().borrow().instances, ["b:2", "a:1"]);
    }

    #[test]
    fn repeats_are_not_published() {
        let broadcaster = Broadcaster::new();
        let mut updates = broadcaster.subscribe();
        broadcaster.publish(["x"]);
        assert!(updates.has_changed().expect("open"));
        updates.borrow_and_update();
        broadcaster.publish(["x", "x"]);
        assert!(!updates.has_changed().expect("open"));
        broadcaster.publish_error("lookup failed");
        assert!(updates.has_changed().expect("open"));
        assert_eq!(
            updates.borrow_and_update().error.as_deref(),
            Some("lookup failed")
        );
    }
}
