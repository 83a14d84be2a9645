//! The instances of an [`Instancer`] as a `tower::discover::Discover`, for tower's balancers.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::watch;
use tower::discover::Change;

use super::cache::{Cache, Factory};
use super::{Event, Instancer};
use crate::endpoint::Endpoint;
use crate::error::BoxError;

type Changed = Pin<Box<dyn Future<Output = (watch::Receiver<Event>, bool)> + Send>>;

/// The changes of an [`Instancer`]'s instances, as the `Insert` and `Remove` that tower's
/// balancers (`tower::balance::p2c::Balance`) take: a `tower::discover::Discover` keyed by
/// instance, with endpoints made by `factory`.
///
/// The first poll inserts every current instance; later updates insert new instances and remove
/// vanished ones. An instance whose factory fails is skipped (and logged); a discovery error
/// changes nothing. The stream ends when the instancer is gone.
///
/// ```
/// use kit_core::endpoint::{endpoint_fn, Endpoint, EndpointExt};
/// use kit_core::sd::{discover, FixedInstancer};
/// use tower::discover::Change;
///
/// # tokio_test::block_on(async {
/// let instancer = FixedInstancer::new(["a:1", "b:2"]);
/// let mut changes = discover(&instancer, |instance: &str| {
///     let name = instance.to_owned();
///     let endpoint: Endpoint<(), String> =
///         endpoint_fn(move |()| { let name = name.clone(); async move { Ok::<_, kit_core::BoxError>(name) } });
///     Ok::<_, kit_core::BoxError>(endpoint)
/// });
/// let first = std::future::poll_fn(|cx| std::pin::Pin::new(&mut changes).poll_next(cx)).await;
/// assert!(matches!(first, Some(Ok(Change::Insert(key, _))) if key == "a:1"));
/// # });
/// # use futures_core::Stream;
/// ```
pub fn discover<Req, Resp, F, E>(instancer: &impl Instancer, factory: F) -> Discover<Req, Resp>
where
    F: Fn(&str) -> Result<Endpoint<Req, Resp>, E> + Send + Sync + 'static,
    E: Into<BoxError>,
{
    let mut updates = instancer.subscribe();
    let first = updates.borrow_and_update().clone();
    let mut discover = Discover {
        cache: Cache::new(),
        pending: VecDeque::new(),
        changed: Some(wait(updates)),
        factory: Arc::new(move |instance: &str| factory(instance).map_err(Into::into)),
    };
    discover.apply(&first);
    discover
}

/// See [`discover`].
pub struct Discover<Req, Resp> {
    cache: Cache<Req, Resp>,
    pending: VecDeque<Change<String, Endpoint<Req, Resp>>>,
    changed: Option<Changed>,
    factory: Arc<Factory<Req, Resp>>,
}

fn wait(mut updates: watch::Receiver<Event>) -> Changed {
    Box::pin(async move {
        let open = updates.changed().await.is_ok();
        (updates, open)
    })
}

impl<Req, Resp> Discover<Req, Resp> {
    /// Queues the changes that bring the known instances to `event`'s.
    fn apply(&mut self, event: &Event) {
        if event.error.is_some() {
            return;
        }
        let update = self.cache.update(&event.instances, &*self.factory);
        self.pending
            .extend(update.removed.into_iter().map(Change::Remove));
        self.pending.extend(
            update
                .added
                .into_iter()
                .map(|(instance, endpoint)| Change::Insert(instance, endpoint)),
        );
    }
}

impl<Req, Resp> Stream for Discover<Req, Resp> {
    type Item = Result<Change<String, Endpoint<Req, Resp>>, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(change) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(change)));
            }
            let Some(changed) = this.changed.as_mut() else {
                return Poll::Ready(None);
            };
            let (mut updates, open) = std::task::ready!(changed.as_mut().poll(cx));
            if !open {
                this.changed = None;
                return Poll::Ready(None);
            }
            let event = updates.borrow_and_update().clone();
            this.changed = Some(wait(updates));
            this.apply(&event);
        }
    }
}

impl<Req, Resp> Unpin for Discover<Req, Resp> {}

impl<Req, Resp> fmt::Debug for Discover<Req, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discover")
            .field(
                "known",
                &self
                    .cache
                    .entries()
                    .iter()
                    .map(|(instance, _)| instance)
                    .collect::<Vec<_>>(),
            )
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointExt, endpoint_fn};
    use crate::sd::Broadcaster;
    use std::collections::BTreeSet;
    use tower::balance::p2c::Balance;
    use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
    use tower::{Service, ServiceExt};

    fn named(instance: &str) -> Result<Endpoint<(), String>, BoxError> {
        let name = instance.to_owned();
        Ok(endpoint_fn(move |()| {
            let name = name.clone();
            async move { Ok::<_, BoxError>(name) }
        }))
    }

    #[tokio::test]
    async fn tower_p2c_balances_over_the_discovered_instances() {
        let broadcaster = Broadcaster::new();
        broadcaster.publish(["a", "b"]);
        let changes = PendingRequestsDiscover::new(
            discover(&broadcaster, named),
            CompleteOnResponse::default(),
        );
        let mut balance = Balance::new(changes);
        let mut seen = BTreeSet::new();
        for _ in 0..50 {
            let answer = balance
                .ready()
                .await
                .expect("ready")
                .call(())
                .await
                .expect("an answer");
            seen.insert(answer);
        }
        assert_eq!(seen, BTreeSet::from(["a".to_owned(), "b".to_owned()]));

        broadcaster.publish(["b"]);
        // The balancer applies discovery changes when it is next polled for readiness.
        for _ in 0..20 {
            let answer = balance
                .ready()
                .await
                .expect("ready")
                .call(())
                .await
                .expect("an answer");
            assert_eq!(answer, "b");
        }
    }

    async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
    }

    #[tokio::test]
    async fn changes_follow_updates() {
        let broadcaster = Broadcaster::new();
        broadcaster.publish(["a", "b"]);
        let mut changes = discover(&broadcaster, named);
        let mut keys = Vec::new();
        for _ in 0..2 {
            match next(&mut changes).await {
                Some(Ok(Change::Insert(key, endpoint))) => {
                    assert_eq!(endpoint.invoke(()).await.expect("answer"), key);
                    keys.push(format!("+{key}"));
                }
                other => panic!("expected an insert, got {:?}", other.map(|r| r.is_ok())),
            }
        }
        broadcaster.publish(["b", "c"]);
        for _ in 0..2 {
            match next(&mut changes).await {
                Some(Ok(Change::Insert(key, _))) => keys.push(format!("+{key}")),
                Some(Ok(Change::Remove(key))) => keys.push(format!("-{key}")),
                other => panic!("expected a change, got {:?}", other.map(|r| r.is_ok())),
            }
        }
        assert_eq!(keys, ["+a", "+b", "-a", "+c"]);
        drop(broadcaster);
        assert!(
            next(&mut changes).await.is_none(),
            "the stream ends with the instancer"
        );
    }
}
