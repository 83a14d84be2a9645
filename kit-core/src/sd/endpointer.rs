//! One endpoint per discovered instance.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::cache::{Cache, Factory};
use super::{Event, Instancer};
use crate::endpoint::Endpoint;
use crate::error::{BoxError, Classify, Error, ErrorKind};

/// The endpoints of an [`Instancer`]'s instances, one per instance, made by a factory (Go kit's
/// `sd.NewEndpointer`).
///
/// The endpoints follow the instancer's updates when they are asked for: an instance that stays
/// keeps its endpoint (and with it its circuit breaker's and rate limiter's state), a new one gets
/// a new endpoint from the factory, and a vanished one's endpoint is dropped. An instance whose
/// factory fails is left out, and reported by [`failed`](Self::failed). When discovery reports
/// an error, the endpoints it had stay in use.
///
/// Cheap to clone; clones share the endpoints. Endpoints come in the instancer's order.
pub struct Endpointer<Req, Resp> {
    shared: Arc<Shared<Req, Resp>>,
}

struct Shared<Req, Resp> {
    /// The instancer's updates and the endpoints made so far, changed together: a reader only
    /// takes this lock to see whether there is an update, a writer to apply it.
    tracker: RwLock<Tracker<Req, Resp>>,
    /// What callers read: replaced whole after each update, so a call holds its snapshot
    /// without holding a lock.
    state: RwLock<Arc<State<Req, Resp>>>,
    factory: Box<Factory<Req, Resp>>,
}

struct Tracker<Req, Resp> {
    updates: watch::Receiver<Event>,
    cache: Cache<Req, Resp>,
    failed: Vec<(String, String)>,
}

struct State<Req, Resp> {
    instances: Vec<String>,
    endpoints: Arc<[Endpoint<Req, Resp>]>,
    failed: Vec<(String, String)>,
    error: Option<String>,
}

/// Discovery failed before it found any instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service discovery failed: {0}")]
pub struct DiscoveryError(pub String);

impl Classify for DiscoveryError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

impl<Req, Resp> Endpointer<Req, Resp>
where
    Req: 'static,
    Resp: 'static,
{
    /// Endpoints for `instancer`'s instances, each made by `factory`.
    pub fn new<F, E>(instancer: &impl Instancer, factory: F) -> Self
    where
        F: Fn(&str) -> Result<Endpoint<Req, Resp>, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let factory: Box<Factory<Req, Resp>> =
            Box::new(move |instance| factory(instance).map_err(Into::into));
        let mut tracker = Tracker {
            updates: instancer.subscribe(),
            cache: Cache::new(),
            failed: Vec::new(),
        };
        let state = tracker.apply(&*factory);
        Endpointer {
            shared: Arc::new(Shared {
                tracker: RwLock::new(tracker),
                state: RwLock::new(Arc::new(state)),
                factory,
            }),
        }
    }

    /// The current endpoints, in the order of their instances; an error only when
    /// discovery failed and no instance was ever found.
    pub fn endpoints(&self) -> Result<Arc<[Endpoint<Req, Resp>]>, BoxError> {
        let state = self.state();
        if state.endpoints.is_empty()
            && let Some(error) = &state.error
        {
            return Err(Error::from(DiscoveryError(error.clone())).into());
        }
        Ok(state.endpoints.clone())
    }

    /// The instances that have an endpoint.
    pub fn instances(&self) -> Vec<String> {
        self.state().instances.clone()
    }

    /// The instances whose factory failed, with the reason.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.state().failed.clone()
    }

    /// The state, brought up to date with the instancer first.
    fn state(&self) -> Arc<State<Req, Resp>> {
        let shared = &*self.shared;
        let changed = shared
            .tracker
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .updates
            .has_changed()
            .unwrap_or(false);
        if changed {
            let mut tracker = shared
                .tracker
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // Another caller may have applied this update while we waited for the lock.
            if tracker.updates.has_changed().unwrap_or(false) {
                let state = tracker.apply(&*shared.factory);
                *shared.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(state);
            }
        }
        shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<Req, Resp> Tracker<Req, Resp> {
    /// Applies the latest event: a set of instances updates the cache, an error keeps it.
    fn apply(&mut self, factory: &Factory<Req, Resp>) -> State<Req, Resp> {
        let event = self.updates.borrow_and_update().clone();
        if event.error.is_none() {
            self.failed = self.cache.update(&event.instances, factory).failed;
        }
        let entries = self.cache.entries();
        State {
            instances: entries
                .iter()
                .map(|(instance, _)| instance.clone())
                .collect(),
            endpoints: entries
                .iter()
                .map(|(_, endpoint)| endpoint.clone())
                .collect(),
            failed: self.failed.clone(),
            error: event.error,
        }
    }
}

impl<Req, Resp> Clone for Endpointer<Req, Resp> {
    fn clone(&self) -> Self {
        Endpointer {
            shared: self.shared.clone(),
        }
    }
}

impl<Req, Resp> fmt::Debug for Endpointer<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self
            .shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        f.debug_struct("Endpointer")
            .field("instances", &state.instances)
            .field("failed", &state.failed)
            .field("error", &state.error)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointExt, endpoint_fn};
    use crate::sd::Broadcaster;
    use std::sync::Mutex;

    /// A factory that records what it builds; "bad…" instances fail.
    fn factory(
        built: Arc<Mutex<Vec<String>>>,
    ) -> impl Fn(&str) -> Result<Endpoint<(), String>, BoxError> + Send + Sync + 'static {
        move |instance: &str| {
            if instance.starts_with("bad") {
                return Err(format!("cannot parse {instance}").into());
            }
            built.lock().expect("lock").push(instance.to_owned());
            let name = instance.to_owned();
            Ok(endpoint_fn(move |()| {
                let name = name.clone();
                async move { Ok::<_, BoxError>(name) }
            }))
        }
    }

    #[tokio::test]
    async fn follows_the_instancer_and_reuses_endpoints() {
        let broadcaster = Broadcaster::new();
        broadcaster.publish(["b", "a"]);
        let built = Arc::new(Mutex::new(Vec::new()));
        let endpointer = Endpointer::new(&broadcaster, factory(built.clone()));
        assert_eq!(endpointer.instances(), ["a", "b"]);
        let first = endpointer.endpoints().expect("endpoints");
        assert_eq!(first[0].invoke(()).await.expect("a"), "a");

        broadcaster.publish(["c", "b", "bad-d"]);
        assert_eq!(endpointer.instances(), ["b", "c"]);
        assert_eq!(
            endpointer.failed(),
            [("bad-d".to_owned(), "cannot parse bad-d".to_owned())]
        );
        // b was kept, only c was built anew.
        assert_eq!(*built.lock().expect("lock"), ["a", "b", "c"]);
        let now = endpointer.endpoints().expect("endpoints");
        assert_eq!(now.len(), 2);
        assert_eq!(now[1].invoke(()).await.expect("c"), "c");
    }

    #[tokio::test]
    async fn a_discovery_error_keeps_the_last_endpoints() {
        let broadcaster = Broadcaster::new();
        let endpointer = Endpointer::new(&broadcaster, factory(Arc::default()));
        assert_eq!(endpointer.endpoints().expect("none yet").len(), 0);

        broadcaster.publish_error("DNS timeout");
        let err = endpointer.endpoints().expect_err("nothing to fall back on");
        assert_eq!(err.to_string(), "service discovery failed: DNS timeout");
        assert_eq!(
            crate::error::ErrorExt::kind(err.as_ref()),
            ErrorKind::Unavailable
        );

        broadcaster.publish(["a"]);
        assert_eq!(endpointer.endpoints().expect("found").len(), 1);
        broadcaster.publish_error("DNS timeout");
        assert_eq!(endpointer.endpoints().expect("kept").len(), 1);
        assert_eq!(endpointer.instances(), ["a"]);
    }
}
