//! Keeping one instance registered in etcd while it runs.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Backoff;
use super::client::{Client, EtcdError};

/// How long deregistering may take before the process goes on stopping without it: the key's
/// lease expires by itself then.
const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(2);

/// One instance's key, held in etcd under a lease while the process runs (Go kit's
/// `etcdv3.Registrar`).
///
/// A background task grants a lease with the time to live, puts the key under it, and renews
/// the lease three times per time to live. If etcd becomes unreachable, or the lease expired
/// meanwhile, it starts again with a new lease once etcd answers, waiting as its [`Backoff`]
/// says between tries. [`deregister`](Self::deregister) stops the task and deletes the key, so
/// that clients stop calling at once; if the process dies instead, etcd deletes the key when
/// the lease's time to live runs out.
pub struct Registrar {
    key: String,
    stop: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Registrar {
    /// Registers `key` = `value` with a lease of `ttl` (whole seconds, at least one), and keeps
    /// it registered. Must be called within a tokio runtime.
    pub fn start(
        client: Client,
        key: impl Into<String>,
        value: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        let key = key.into();
        let ttl = i64::try_from(ttl.as_secs_f64().ceil() as u64)
            .unwrap_or(i64::MAX)
            .max(1);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(hold(client, key.clone(), value.into(), ttl, stopped));
        Registrar {
            key,
            stop: Mutex::new(Some((stop, task))),
        }
    }

    /// The key registered.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Deletes the key and stops renewing it, waiting at most 2 s for etcd. Later calls do
    /// nothing.
    pub async fn deregister(&self) {
        let taken = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = taken {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        if let Some((_, task)) = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl fmt::Debug for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registrar").field("key", &self.key).finish()
    }
}

// ANCHOR: hold
/// Keeps `key` registered until `stopped`, then deletes it.
async fn hold(
    client: Client,
    key: String,
    value: String,
    ttl: i64,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut backoff = Backoff::default();
    let mut lease = None;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            error = register(&client, &key, &value, ttl, &mut lease, &mut backoff, &mut failing) => {
                if !failing {
                    tracing::warn!(key = key.as_str(), err = %error, "cannot keep the registration; trying again");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = &mut stopped => break,
            () = tokio::time::sleep(backoff.next_wait()) => {}
        }
    }
    let deleted = tokio::time::timeout(DEREGISTER_TIMEOUT, async {
        client.delete(&key).await?;
        if let Some(id) = lease {
            client.revoke(id).await?;
        }
        Ok::<_, EtcdError>(())
    })
    .await;
    match deleted {
        Ok(Ok(())) => tracing::info!(key = key.as_str(), "deregistered"),
        Ok(Err(error)) => {
            tracing::warn!(key = key.as_str(), err = %error, "cannot deregister; the key expires with its lease");
        }
        Err(_) => {
            tracing::warn!(
                key = key.as_str(),
                "etcd did not answer; the key expires with its lease"
            );
        }
    }
}
// ANCHOR_END: hold

/// Grants a lease, puts the key under it and renews it until something fails; returns what.
async fn register(
    client: &Client,
    key: &str,
    value: &str,
    ttl: i64,
    lease: &mut Option<i64>,
    backoff: &mut Backoff,
    failing: &mut bool,
) -> EtcdError {
    let id = match client.grant(ttl).await {
        Ok(id) => id,
        Err(error) => return error,
    };
    *lease = Some(id);
    if let Err(error) = client.put(key, value, id).await {
        return error;
    }
    let mut keep_alive = match client.keep_alive(id).await {
        Ok(keep_alive) => keep_alive,
        Err(error) => return error,
    };
    backoff.reset();
    if std::mem::take(failing) {
        tracing::info!(key, "registered again");
    } else {
        tracing::info!(key, ttl, "registered");
    }
    // Three renewals per time to live: one lost renewal does not lose the key.
    let period = Duration::from_millis(u64::try_from(ttl).unwrap_or(1) * 1000 / 3);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match keep_alive.renew().await {
            Ok(left) if left > 0 => {}
            Ok(_) => return EtcdError("lease expired".to_owned()),
            Err(error) => return error,
        }
    }
}
