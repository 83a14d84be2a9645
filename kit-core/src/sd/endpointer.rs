//! One endpoint per discovered instance.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::{Event, Instancer};
use crate::BoxError;
use crate::endpoint::Endpoint;

type Factory<Req, Resp> = dyn Fn(&str) -> Result<Endpoint<Req, Resp>, BoxError> + Send + Sync;

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
    updates: RwLock<watch::Receiver<Event>>,
    state: RwLock<Arc<State<Req, Resp>>>,
    factory: Box<Factory<Req, Resp>>,
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
        let mut updates = instancer.subscribe();
        let event = updates.borrow_and_update().clone();
        let factory: Box<Factory<Req, Resp>> =
            Box::new(move |instance| factory(instance).map_err(Into::into));
        let empty = State {
            instances: Vec::new(),
            endpoints: Arc::from(Vec::new()),
            failed: Vec::new(),
            error: None,
        };
        let state = Arc::new(update(&empty, &event, &*factory));
        Endpointer {
            shared: Arc::new(Shared {
                updates: RwLock::new(updates),
                state: RwLock::new(state),
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
            return Err(DiscoveryError(error.clone()).into());
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
            .updates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .has_changed()
            .unwrap_or(false);
        if changed {
            let mut updates = shared
                .updates
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            // Another caller may have applied this update while we waited for the lock.
            if updates.has_changed().unwrap_or(false) {
                let event = updates.borrow_and_update().clone();
                let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                *state = Arc::new(update(&state, &event, &*shared.factory));
            }
        }
        shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The state after `event`: endpoints kept for instances that stay, made for new ones.
fn update<Req: 'static, Resp: 'static>(
    current: &State<Req, Resp>,
    event: &Event,
    factory: &Factory<Req, Resp>,
) -> State<Req, Resp> {
    if let Some(error) = &event.error {
        return State {
            instances: current.instances.clone(),
            endpoints: current.endpoints.clone(),
            failed: current.failed.clone(),
            error: Some(error.clone()),
        };
    }
    let mut instances = Vec::with_capacity(event.instances.len());
    let mut endpoints = Vec::with_capacity(event.instances.len());
    let mut failed = Vec::new();
    for instance in &event.instances {
        let kept = current
            .instances
            .iter()
            .position(|known| known == instance)
            .map(|at| current.endpoints[at].clone());
        match kept.map_or_else(|| factory(instance), Ok) {
            Ok(endpoint) => {
                instances.push(instance.clone());
                endpoints.push(endpoint);
            }
            Err(error) => {
                tracing::warn!(instance = instance.as_str(), err = %error, "cannot make an endpoint");
                failed.push((instance.clone(), error.to_string()));
            }
        }
    }
    State {
        instances,
        endpoints: endpoints.into(),
        failed,
        error: None,
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

        broadcaster.publish(["a"]);
        assert_eq!(endpointer.endpoints().expect("found").len(), 1);
        broadcaster.publish_error("DNS timeout");
        assert_eq!(endpointer.endpoints().expect("kept").len(), 1);
        assert_eq!(endpointer.instances(), ["a"]);
    }
}
