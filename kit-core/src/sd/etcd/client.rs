//! The calls service discovery makes to etcd: read a prefix, watch it, hold a key under a lease.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::pb::etcdserverpb::{
    DeleteRangeRequest, LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseRevokeRequest, PutRequest, RangeRequest, WatchCreateRequest, WatchRequest, WatchResponse,
    kv_client::KvClient, lease_client::LeaseClient, watch_client::WatchClient, watch_request,
};
use crate::error::{BoxError, Classify, ErrorKind};

/// How long a single call to etcd may take: etcd answers in milliseconds, so a call this slow
/// means an etcd that cannot serve, and the caller's backoff takes over.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// An etcd call failed: etcd is unreachable, or refused the call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("etcd: {0}")]
pub struct EtcdError(pub(super) String);

impl Classify for EtcdError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

impl From<tonic::Status> for EtcdError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message();
        if message.is_empty() {
            EtcdError(format!("{:?}", status.code()))
        } else {
            EtcdError(format!("{:?}: {message}", status.code()))
        }
    }
}

impl From<tokio::time::error::Elapsed> for EtcdError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        EtcdError(format!("no answer within {CALL_TIMEOUT:?}"))
    }
}

/// A connection to an etcd cluster (Go kit's `etcdv3.Client`), cheap to clone.
///
/// It connects lazily and reconnects by itself: creating one never fails because etcd is down,
/// only its calls do. HTTP/2 pings every second find a dead connection within two more, even
/// on a quiet watch.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
}

impl Client {
    /// A client of the etcd members at `endpoints`: comma-separated `host:port` or
    /// `http://host:port`, as `--etcd` takes them. Calls go to the members in turn.
    ///
    /// Must be called within a tokio runtime.
    pub fn new(endpoints: &str) -> Result<Self, BoxError> {
        let mut members = Vec::new();
        for endpoint in endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let url = if endpoint.contains("://") {
                endpoint.to_owned()
            } else {
                format!("http://{endpoint}")
            };
            let member = Endpoint::from_shared(url)
                .map_err(|err| format!("bad etcd endpoint {endpoint:?}: {err}"))?
                .connect_timeout(Duration::from_secs(1))
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2))
                .keep_alive_while_idle(true);
            members.push(member);
        }
        let channel = match members.len() {
            0 => return Err("no etcd endpoint given".into()),
            1 => members.remove(0).connect_lazy(),
            _ => Channel::balance_list(members.into_iter()),
        };
        Ok(Client { channel })
    }

    /// Every key under `prefix` with its value, in key order, and the store's revision they
    /// were read at.
    pub async fn list(&self, prefix: &str) -> Result<(Vec<(String, String)>, i64), EtcdError> {
        let request = RangeRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: range_end(prefix.as_bytes()),
            ..RangeRequest::default()
        };
        let mut kv = KvClient::new(self.channel.clone());
        let response = tokio::time::timeout(CALL_TIMEOUT, kv.range(request))
            .await??
            .into_inner();
        let revision = response.header.map_or(0, |header| header.revision);
        let pairs = response
            .kvs
            .into_iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                )
            })
            .collect();
        Ok((pairs, revision))
    }

    /// Puts `key` = `value`, attached to `lease` (0 for none).
    pub async fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), EtcdError> {
        let request = PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            lease,
            ..PutRequest::default()
        };
        let mut kv = KvClient::new(self.channel.clone());
        tokio::time::timeout(CALL_TIMEOUT, kv.put(request)).await??;
        Ok(())
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        let request = DeleteRangeRequest {
            key: key.as_bytes().to_vec(),
            ..DeleteRangeRequest::default()
        };
        let mut kv = KvClient::new(self.channel.clone());
        tokio::time::timeout(CALL_TIMEOUT, kv.delete_range(request)).await??;
        Ok(())
    }

    /// A new lease that lives `ttl` seconds unless kept alive; its id.
    pub async fn grant(&self, ttl: i64) -> Result<i64, EtcdError> {
        let mut lease = LeaseClient::new(self.channel.clone());
        let response = tokio::time::timeout(
            CALL_TIMEOUT,
            lease.lease_grant(LeaseGrantRequest { ttl, id: 0 }),
        )
        .await??
        .into_inner();
        if !response.error.is_empty() {
            return Err(EtcdError(response.error));
        }
        Ok(response.id)
    }

    /// Ends lease `id` now, deleting the keys attached to it.
    pub async fn revoke(&self, id: i64) -> Result<(), EtcdError> {
        let mut lease = LeaseClient::new(self.channel.clone());
        tokio::time::timeout(CALL_TIMEOUT, lease.lease_revoke(LeaseRevokeRequest { id })).await??;
        Ok(())
    }

    /// Opens a keep-alive stream for lease `id`, renewing it once; then each [`KeepAlive::renew`] renews it, and its
    /// answer says the time to live the lease has left (0 or less: it has expired).
    pub(super) async fn keep_alive(&self, id: i64) -> Result<KeepAlive, EtcdError> {
        let (requests, outgoing) = mpsc::channel(4);
        // etcd answers the call once it has a request to answer: the first renewal goes with it.
        requests
            .try_send(LeaseKeepAliveRequest { id })
            .map_err(|_| EtcdError("keep-alive request not queued".to_owned()))?;
        let mut lease = LeaseClient::new(self.channel.clone());
        let responses =
            tokio::time::timeout(CALL_TIMEOUT, lease.lease_keep_alive(Requests(outgoing)))
                .await??
                .into_inner();
        let mut keep_alive = KeepAlive {
            id,
            requests,
            responses,
        };
        match keep_alive.answer().await? {
            ttl if ttl > 0 => Ok(keep_alive),
            _ => Err(EtcdError("lease expired".to_owned())),
        }
    }

    /// Opens a watch on every key under `prefix`, from `revision` on (inclusive).
    pub(super) async fn watch(&self, prefix: &str, revision: i64) -> Result<Watch, EtcdError> {
        let (requests, outgoing) = mpsc::channel(1);
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: prefix.as_bytes().to_vec(),
                    range_end: range_end(prefix.as_bytes()),
                    start_revision: revision,
                    ..WatchCreateRequest::default()
                },
            )),
        };
        requests
            .try_send(create)
            .map_err(|_| EtcdError("watch request not queued".to_owned()))?;
        let mut watch = WatchClient::new(self.channel.clone());
        let responses = tokio::time::timeout(CALL_TIMEOUT, watch.watch(Requests(outgoing)))
            .await??
            .into_inner();
        Ok(Watch {
            _requests: requests,
            responses,
        })
    }
}

/// The end of the key range that holds exactly the keys starting with `prefix`: the prefix
/// with its last byte that is not 0xff incremented (etcd's `clientv3.GetPrefixRangeEnd`).
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff, or empty: every key from the prefix on.
    vec![0]
}

/// A lease's keep-alive stream.
pub(super) struct KeepAlive {
    id: i64,
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: tonic::Streaming<LeaseKeepAliveResponse>,
}

impl KeepAlive {
    /// Renews the lease; the time to live it has now, in seconds (0 or less: it had expired).
    pub(super) async fn renew(&mut self) -> Result<i64, EtcdError> {
        self.requests
            .send(LeaseKeepAliveRequest { id: self.id })
            .await
            .map_err(|_| EtcdError("keep-alive stream closed".to_owned()))?;
        self.answer().await
    }

    /// The answer to the last renewal: the time to live left.
    async fn answer(&mut self) -> Result<i64, EtcdError> {
        match tokio::time::timeout(CALL_TIMEOUT, self.responses.message()).await?? {
            Some(response) => Ok(response.ttl),
            None => Err(EtcdError("keep-alive stream ended".to_owned())),
        }
    }
}

/// A watch stream; keeping the request side open keeps the watch.
pub(super) struct Watch {
    _requests: mpsc::Sender<WatchRequest>,
    responses: tonic::Streaming<WatchResponse>,
}

impl Watch {
    /// The next batch of changes; an error when the stream broke or etcd canceled the watch.
    pub(super) async fn next(&mut self) -> Result<WatchResponse, EtcdError> {
        match self.responses.message().await? {
            Some(response) if response.canceled => Err(EtcdError(format!(
                "watch canceled: {}",
                if response.cancel_reason.is_empty() {
                    format!("compacted at revision {}", response.compact_revision)
                } else {
                    response.cancel_reason
                }
            ))),
            Some(response) => Ok(response),
            None => Err(EtcdError("watch stream ended".to_owned())),
        }
    }
}

/// The request side of a streaming call: what is sent on the channel.
struct Requests<T>(mpsc::Receiver<T>);

impl<T> futures_core::Stream for Requests<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::range_end;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(range_end(b"/services/a/"), b"/services/a0");
        assert_eq!(range_end(b"a\xff"), b"b");
        assert_eq!(range_end(b"\xff"), b"\0");
    }
}
