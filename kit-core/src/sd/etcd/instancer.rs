//! Following a service's instances in etcd.

use std::collections::BTreeMap;
use std::fmt;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Backoff;
use super::client::{Client, EtcdError};
use super::pb::mvccpb::event::EventType;
use crate::sd::{Broadcaster, Event};

/// The instances registered under a key prefix (Go kit's `etcdv3.Instancer`): the values of the
/// keys, kept up to date by a watch, published to every subscriber.
///
/// A background task reads the prefix, then follows its watch. When etcd is unreachable it
/// publishes the error (an [`Endpointer`](crate::sd::Endpointer) keeps its endpoints through
/// it) and tries again with a [`Backoff`], reading the whole prefix again when etcd answers, so
/// that nothing that changed meanwhile is missed. Dropping the instancer stops the task.
pub struct Instancer {
    broadcaster: Broadcaster,
    prefix: String,
    /// Whether the first read of the prefix is over, found or failed.
    read: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Instancer {
    /// Follows the keys under `prefix` (see [`prefix`](super::prefix)) with the default
    /// [`Backoff`]. Must be called within a tokio runtime.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Instancer::with_backoff(client, prefix, Backoff::default())
    }

    /// Follows the keys under `prefix`, waiting as `backoff` says between tries while etcd is
    /// unreachable.
    pub fn with_backoff(client: Client, prefix: impl Into<String>, backoff: Backoff) -> Self {
        let prefix = prefix.into();
        let broadcaster = Broadcaster::new();
        let (first_read, read) = watch::channel(false);
        let task = tokio::spawn(follow(
            client,
            prefix.clone(),
            broadcaster.clone(),
            backoff,
            first_read,
        ));
        Instancer {
            broadcaster,
            prefix,
            read,
            task,
        }
    }

    /// Waits until the first read of the prefix is over: its instances are published, or etcd
    /// could not be reached (and the error is). A program that serves calls waits for it, so
    /// that its first calls know the instances registered before it started.
    pub async fn ready(&self) {
        let mut read = self.read.clone();
        let _ = read.wait_for(|read| *read).await;
    }
}

impl crate::sd::Instancer for Instancer {
    fn subscribe(&self) -> watch::Receiver<Event> {
        self.broadcaster.subscribe()
    }
}

impl Drop for Instancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Instancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instancer")
            .field("prefix", &self.prefix)
            .field("current", &*crate::sd::Instancer::subscribe(self).borrow())
            .finish()
    }
}

/// Reads and watches `prefix` for good, starting over after each failure.
async fn follow(
    client: Client,
    prefix: String,
    broadcaster: Broadcaster,
    mut backoff: Backoff,
    first_read: watch::Sender<bool>,
) {
    let mut failing = false;
    loop {
        let error = session(
            &client,
            &prefix,
            &broadcaster,
            &mut backoff,
            &mut failing,
            &first_read,
        )
        .await;
        if !failing {
            tracing::warn!(prefix = prefix.as_str(), err = %error, "etcd unreachable; keeping the instances known so far");
            failing = true;
        }
        broadcaster.publish_error(&error);
        first_read.send_replace(true);
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

// ANCHOR: session
/// One connection's worth of following: reads the prefix, publishes it, then applies the
/// watch's changes until it fails. Returns why it stopped.
async fn session(
    client: &Client,
    prefix: &str,
    broadcaster: &Broadcaster,
    backoff: &mut Backoff,
    failing: &mut bool,
    first_read: &watch::Sender<bool>,
) -> EtcdError {
    let (pairs, revision) = match client.list(prefix).await {
        Ok(listed) => listed,
        Err(error) => return error,
    };
    let mut instances: BTreeMap<String, String> = pairs.into_iter().collect();
    // Watching from the revision after the read: no change falls between the two.
    let mut watch = match client.watch(prefix, revision + 1).await {
        Ok(watch) => watch,
        Err(error) => return error,
    };
    broadcaster.publish(instances.values().cloned());
    first_read.send_replace(true);
    backoff.reset();
    if *failing {
        tracing::info!(prefix, instances = instances.len(), "etcd reachable again");
        *failing = false;
    }
    loop {
        let response = match watch.next().await {
            Ok(response) => response,
            Err(error) => return error,
        };
        for event in response.events {
            let Some(kv) = event.kv else { continue };
            let key = String::from_utf8_lossy(&kv.key).into_owned();
            if event.r#type == EventType::Delete as i32 {
                instances.remove(&key);
            } else {
                instances.insert(key, String::from_utf8_lossy(&kv.value).into_owned());
            }
        }
        broadcaster.publish(instances.values().cloned());
    }
}
// ANCHOR_END: session
