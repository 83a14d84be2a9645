//! The endpoints of the instances known so far, brought up to date by each discovery event
//! (Go kit's `endpointCache`): the one place that decides what an update keeps, makes and drops.

use std::collections::{HashMap, HashSet};

use crate::endpoint::Endpoint;
use crate::error::BoxError;

/// Makes the endpoint of one instance (Go kit's `sd.Factory`).
pub(super) type Factory<Req, Resp> =
    dyn Fn(&str) -> Result<Endpoint<Req, Resp>, BoxError> + Send + Sync;

/// Instances with their endpoints, in the order discovery gave them.
pub(super) struct Cache<Req, Resp> {
    entries: Vec<(String, Endpoint<Req, Resp>)>,
}

/// What one update changed.
pub(super) struct Update<Req, Resp> {
    /// Instances that have an endpoint now and did not before, with it.
    pub(super) added: Vec<(String, Endpoint<Req, Resp>)>,
    /// Instances that had an endpoint and are gone.
    pub(super) removed: Vec<String>,
    /// Instances whose factory failed, with the reason; they are tried again at the next update.
    pub(super) failed: Vec<(String, String)>,
}

impl<Req, Resp> Cache<Req, Resp> {
    pub(super) fn new() -> Self {
        Cache {
            entries: Vec::new(),
        }
    }

    /// The instances and their endpoints, in order.
    pub(super) fn entries(&self) -> &[(String, Endpoint<Req, Resp>)] {
        &self.entries
    }

    /// Brings the cache to `instances`: an instance that stays keeps its endpoint (and with it a
    /// breaker's or limiter's state), a new one gets an endpoint from `factory`, a vanished one's
    /// endpoint is dropped. An instance whose factory fails is left out, and logged.
    ///
    /// Linear in the number of instances.
    pub(super) fn update(
        &mut self,
        instances: &[String],
        factory: &Factory<Req, Resp>,
    ) -> Update<Req, Resp> {
        let mut known: HashMap<String, Endpoint<Req, Resp>> =
            std::mem::take(&mut self.entries).into_iter().collect();
        let mut listed = HashSet::with_capacity(instances.len());
        let mut update = Update {
            added: Vec::new(),
            removed: Vec::new(),
            failed: Vec::new(),
        };
        for instance in instances {
            if !listed.insert(instance.as_str()) {
                continue; // listed twice
            }
            if let Some(endpoint) = known.remove(instance) {
                self.entries.push((instance.clone(), endpoint));
                continue;
            }
            match factory(instance) {
                Ok(endpoint) => {
                    update.added.push((instance.clone(), endpoint.clone()));
                    self.entries.push((instance.clone(), endpoint));
                }
                Err(error) => {
                    tracing::warn!(instance = instance.as_str(), err = %error, "cannot make an endpoint");
                    update.failed.push((instance.clone(), error.to_string()));
                }
            }
        }
        update.removed = known.into_keys().collect();
        update.removed.sort();
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::endpoint_fn;

    fn factory(instance: &str) -> Result<Endpoint<(), ()>, BoxError> {
        if instance.starts_with("bad") {
            return Err(format!("cannot parse {instance}").into());
        }
        Ok(endpoint_fn(|()| async { Ok::<_, BoxError>(()) }))
    }

    fn names(entries: &[(String, Endpoint<(), ()>)]) -> Vec<&str> {
        entries.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn updates_keep_add_drop_and_report_failures() {
        let mut cache = Cache::new();
        let update = cache.update(&["b".into(), "a".into(), "b".into()], &factory);
        assert_eq!(names(cache.entries()), ["b", "a"]);
        assert_eq!(names(&update.added), ["b", "a"]);
        assert!(update.removed.is_empty());

        let update = cache.update(&["a".into(), "c".into(), "bad-d".into()], &factory);
        assert_eq!(names(cache.entries()), ["a", "c"]);
        assert_eq!(names(&update.added), ["c"]);
        assert_eq!(update.removed, ["b"]);
        assert_eq!(
            update.failed,
            [("bad-d".to_owned(), "cannot parse bad-d".to_owned())]
        );
    }
}
