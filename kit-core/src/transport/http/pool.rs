//! The connections a client sends its requests on: HTTP/1 connections (hyper's), kept between
//! calls in a pool of their own.
//!
//! kit-core's clients (HTTP and JSON-RPC) call services, not web sites: they need no proxy
//! settings, no cookies, no redirects and no TLS, and they know their URL when they are built.
//! A general-purpose client pays for those on every call: reqwest, which kit-core used before,
//! parsed each request's URL twice (once to turn it into a `Uri`, once in its redirect policy,
//! even with redirects off) and moved a large future through several layers, about 28,000
//! instructions a call, a quarter of what forwarding one request cost stringsvc3's proxy.
//! hyper-util's pooled client, which followed, cost about 8,000 instructions a call of its own:
//! it hashed its pool key (scheme and host, a byte at a time) with SipHash twice a call, spawned
//! a task for each call to put its connection back once the connection was ready again, and,
//! when a call found no idle connection, raced a new connection against the next one given back
//! and kept whichever lost, so the number of connections it held after a load was a matter of
//! chance (21 to 92 after the same load, about 24 KiB each).
//!
//! Here a call takes the connection given back last (LIFO: the warmest, and the others age
//! out). When none is idle, it starts a new one, and takes whichever comes first: the new one,
//! or one another call gives back meanwhile (then the new one joins the idle ones); under load
//! a connection is given back within the time a new one takes, so the pool keeps about as many
//! as the load needs. A connection goes back when its answer has been read whole, straight to
//! the first call waiting for one if there is any; the next call on it waits until hyper is
//! ready for another request (a call prefers a connection hyper is ready on already, and gives
//! up on one that is not ready within the connect timeout). A connection idle for
//! [`IDLE_TIMEOUT`] is closed, and those beyond the [`KEPT_IDLE`] given back last go after
//! [`SURPLUS_IDLE_TIMEOUT`]: a surge's connections serve it while it lasts and are closed once
//! it is over. A host with none left, or whose calls all failed, is forgotten. A host's
//! connections are found by its `host:port` in one map, and a call costs one lock of it and
//! one of the host's connections.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{HeaderMap, StatusCode};
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::body::{Collect, collect};
use crate::error::BoxError;

/// How long to wait for a TCP connection unless [`Pool::with_connect_timeout`] says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle connection stays in the pool before it is closed (as Go's
/// `http.DefaultTransport`'s `IdleConnTimeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How many of a host's idle connections wait for [`IDLE_TIMEOUT`]: as many as Go's
/// `http.DefaultTransport` keeps idle per host (`DefaultMaxIdleConnsPerHost`).
const KEPT_IDLE: usize = 2;

/// How long the idle connections beyond [`KEPT_IDLE`] wait before they are closed, the oldest
/// first. Go closes them at once, as they are given back, so a load with more calls in flight
/// than that makes and closes connections all the time; here they serve the load as long as it
/// lasts, and what a surge opened (about 24 KiB of memory a connection, in the client and in
/// the server each) is given back a second after it is over, as the allocator gives back its
/// memory (`kit_core::allocator::RETURN_AFTER_MS`).
const SURPLUS_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A pool of HTTP/1 connections, shared by the clients of the same instances so that their
/// calls reuse connections. Cloning it is cheap and shares the pool.
///
/// Only `http://` URLs: a call to any other scheme fails as a transport error. Redirects are not
/// followed: a 3xx is an answer like any other.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    connect_timeout: Duration,
    /// The connections of each host, by the URL's `host:port` as written.
    hosts: Mutex<HashMap<Box<str>, Arc<Host>>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("connect_timeout", &self.shared.connect_timeout)
            .field("hosts", &lock(&self.shared.hosts).len())
            .finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

impl Pool {
    /// A pool whose connections must be made within [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> Self {
        Pool::with_connect_timeout(DEFAULT_CONNECT_TIMEOUT)
    }

    /// A pool whose connections must be made within `timeout`, the name's lookup included;
    /// when a name has several addresses, each is tried in turn with an equal share of the time
    /// left.
    pub fn with_connect_timeout(timeout: Duration) -> Self {
        Pool {
            shared: Arc::new(Shared {
                connect_timeout: timeout,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Sends `request` and reads its whole answer, of at most `max_bytes`, by `deadline`.
    ///
    /// A call cut short (by the deadline, by an answer too large, or because its caller went)
    /// closes its connection: what was left of the exchange on it cannot be told apart from the
    /// next answer.
    pub(crate) async fn send(
        &self,
        request: http::Request<Bytes>,
        deadline: Option<Instant>,
        max_bytes: usize,
    ) -> Result<Answer, SendError> {
        let host = self.host(request.uri()).map_err(SendError::Transport)?;
        let exchange = self.exchange(&host, request, max_bytes);
        let answer = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, exchange)
                .await
                .unwrap_or(Err(SendError::Timeout)),
            None => exchange.await,
        };
        if answer.is_err() {
            // A host whose calls fail keeps no connection, and no task will come to forget it.
            self.forget_if_unused(host);
        }
        answer
    }

    async fn exchange(
        &self,
        host: &Arc<Host>,
        request: http::Request<Bytes>,
        max_bytes: usize,
    ) -> Result<Answer, SendError> {
        let (mut parts, body) = request.into_parts();
        // On the wire the target is the path and query, the host goes in `Host`.
        parts.uri = origin_form(&parts.uri);
        if !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, host.header.clone());
        }
        let mut request = http::Request::from_parts(parts, Full::new(body));
        let (sender, response) = loop {
            let (mut sender, reused) = match host.take() {
                Ok(sender) => (sender, true),
                Err(given) => self.connect_or_take_given(host, given).await?,
            };
            // A connection given back before hyper had finished with its last exchange; or
            // closed since (by the server, idle): then nothing was sent, try another. One that
            // stays busy (still writing a request body the server stopped reading) is given up
            // after the connect timeout rather than waited on without end. Most are ready at
            // once, and are taken without setting that timer (a clock read and a timer entry).
            if reused
                && !sender.is_ready()
                && !matches!(
                    tokio::time::timeout(self.shared.connect_timeout, sender.ready()).await,
                    Ok(Ok(()))
                )
            {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => break (sender, response),
                Err(mut error) => match error.take_message() {
                    // The connection closed before the request went out on it: as safe to send
                    // again as if it had never been taken.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Transport(error.into_error().into())),
                },
            }
        };
        let (parts, body) = response.into_parts();
        let bytes = collect(body, Some(max_bytes))
            .await
            .map_err(|error| match error {
                Collect::TooLarge => SendError::TooLarge,
                Collect::Failed(error) => SendError::Transport(error.into()),
            })?;
        host.give_back(sender, &self.shared);
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: bytes,
        })
    }

    /// A new connection, or one given back while it is being made, whichever comes first (and
    /// the new one, when it comes second, joins the idle ones). Under load, when every
    /// connection is busy for a moment, one is given back within the time a new one takes:
    /// without this, the pool would end up holding as many connections as calls were ever in
    /// flight at once, each taking some 20 KiB, where a few served them one after another.
    async fn connect_or_take_given(
        &self,
        host: &Arc<Host>,
        mut given: oneshot::Receiver<SendRequest<Full<Bytes>>>,
    ) -> Result<(SendRequest<Full<Bytes>>, bool), SendError> {
        let mut connect = Box::pin(host.clone().connect(self.shared.connect_timeout));
        tokio::select! {
            biased;
            connected = &mut connect => {
                // A connection handed over at the same moment is not lost: it serves this call
                // if the new one failed, and goes back to the pool otherwise.
                given.close();
                let handed = given.try_recv().ok();
                match (connected, handed) {
                    (Ok(sender), handed) => {
                        if let Some(handed) = handed {
                            host.give_back(handed, &self.shared);
                        }
                        Ok((sender, false))
                    }
                    (Err(_), Some(handed)) => Ok((handed, true)),
                    (Err(error), None) => Err(SendError::Transport(error.into())),
                }
            }
            Ok(sender) = &mut given => {
                let (host, shared) = (host.clone(), self.shared.clone());
                tokio::spawn(async move {
                    if let Ok(spare) = connect.await {
                        host.give_back(spare, &shared);
                    }
                });
                Ok((sender, true))
            }
        }
    }

    /// Forgets `host` if it has no idle connection, no call waiting for one and nobody else
    /// holds it.
    fn forget_if_unused(&self, host: Arc<Host>) {
        {
            let idle = lock(&host.idle);
            let waited_on = idle.waiting.iter().any(|waiting| !waiting.is_closed());
            if !idle.connections.is_empty() || waited_on || idle.reaping {
                return;
            }
        }
        forget(&self.shared, &host);
    }

    /// The connections to `uri`'s host, made the first time it is called.
    fn host(&self, uri: &Uri) -> Result<Arc<Host>, BoxError> {
        if uri.scheme_str() != Some("http") {
            return Err(format!("{uri}: only http:// URLs are supported").into());
        }
        let Some(authority) = uri.authority() else {
            return Err(format!("{uri}: no host").into());
        };
        let mut hosts = lock(&self.shared.hosts);
        if let Some(host) = hosts.get(authority.as_str()) {
            return Ok(host.clone());
        }
        let host = Arc::new(Host::new(authority.clone())?);
        hosts.insert(authority.as_str().into(), host.clone());
        Ok(host)
    }
}

/// `uri` as a request line names it to the server: its path and query alone.
fn origin_form(uri: &Uri) -> Uri {
    let path = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::from(path)
}

/// One host's idle connections.
struct Host {
    authority: Authority,
    /// The `Host` header of its requests: the URL's `host:port` (its port only if it has one).
    header: HeaderValue,
    idle: Mutex<Idle>,
    /// Tells the task closing idle connections that more than [`KEPT_IDLE`] are idle now: the
    /// oldest is then due sooner than it was waiting for.
    surplus: Arc<Notify>,
}

#[derive(Default)]
struct Idle {
    /// Oldest first, each with when it was given back.
    connections: VecDeque<(SendRequest<Full<Bytes>>, Instant)>,
    /// Calls making a new connection for want of an idle one, oldest first: a connection given
    /// back goes to the first still waiting instead.
    waiting: VecDeque<oneshot::Sender<SendRequest<Full<Bytes>>>>,
    /// Whether a task is closing the connections idle too long.
    reaping: bool,
}

impl Idle {
    /// When the oldest idle connection is to be closed: [`IDLE_TIMEOUT`] after it was given
    /// back, or [`SURPLUS_IDLE_TIMEOUT`] while more than [`KEPT_IDLE`] are idle.
    fn next_expiry(&self) -> Option<Instant> {
        let (_, since) = self.connections.front()?;
        let timeout = if self.connections.len() > KEPT_IDLE {
            SURPLUS_IDLE_TIMEOUT
        } else {
            IDLE_TIMEOUT
        };
        Some(*since + timeout)
    }

    /// Closes the connections idle too long by `now`.
    fn expire(&mut self, now: Instant) {
        while self.next_expiry().is_some_and(|at| at <= now) {
            self.connections.pop_front();
        }
    }
}

impl Host {
    fn new(authority: Authority) -> Result<Self, BoxError> {
        // `host:port` as the URL writes them, without any `user:password@`.
        let header = match authority.port() {
            Some(port) => HeaderValue::from_str(&format!("{}:{port}", authority.host())),
            None => HeaderValue::from_str(authority.host()),
        }?;
        Ok(Host {
            authority,
            header,
            idle: Mutex::new(Idle::default()),
            surplus: Arc::new(Notify::new()),
        })
    }

    /// An idle connection (the last given back that hyper is ready on, else the last given back
    /// that is still open); or, when there is none, where to receive the next one given back.
    fn take(
        &self,
    ) -> Result<SendRequest<Full<Bytes>>, oneshot::Receiver<SendRequest<Full<Bytes>>>> {
        let mut idle = lock(&self.idle);
        // The last given back that hyper is ready to send on (the very last is often not yet:
        // its connection's task has not run since its answer was read), or else the last given
        // back that is still open: it should be ready in a moment.
        let ready = idle
            .connections
            .iter()
            .rposition(|(sender, _)| sender.is_ready());
        if let Some((sender, _)) = ready.and_then(|at| idle.connections.remove(at)) {
            return Ok(sender);
        }
        while let Some((sender, _)) = idle.connections.pop_back() {
            if !sender.is_closed() {
                return Ok(sender);
            }
        }
        // Those who stopped waiting (their own connection came first) go.
        idle.waiting.retain(|waiting| !waiting.is_closed());
        let (hand, given) = oneshot::channel();
        idle.waiting.push_back(hand);
        Err(given)
    }

    /// Puts a connection whose answer was read back in the pool, and makes sure a task will
    /// close it if it stays idle too long.
    fn give_back(self: &Arc<Self>, mut sender: SendRequest<Full<Bytes>>, shared: &Arc<Shared>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = lock(&self.idle);
        while let Some(waiting) = idle.waiting.pop_front() {
            match waiting.send(sender) {
                Ok(()) => return,
                Err(back) => sender = back,
            }
        }
        let now = Instant::now();
        idle.expire(now);
        idle.connections.push_back((sender, now));
        if !idle.reaping {
            idle.reaping = true;
            tokio::spawn(reap(
                Arc::downgrade(self),
                Arc::downgrade(shared),
                self.surplus.clone(),
            ));
        } else if idle.connections.len() == KEPT_IDLE + 1 {
            self.surplus.notify_one();
        }
    }

    /// A new connection, its own task driving it.
    async fn connect(
        self: Arc<Self>,
        timeout: Duration,
    ) -> Result<SendRequest<Full<Bytes>>, ConnectError> {
        let connect = async {
            let stream = self.tcp(Instant::now() + timeout).await?;
            // Small JSON requests should leave at once, not wait for Nagle's algorithm.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(io::Error::other)?;
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "client connection ended");
                }
            });
            Ok(sender)
        };
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
        .map_err(|source| ConnectError {
            authority: self.authority.to_string(),
            source,
        })
    }

    /// A TCP connection to the first of the host's addresses that takes one by `deadline`. Each
    /// address gets an equal share of the time left, so that one that never answers leaves time
    /// for the next.
    async fn tcp(&self, deadline: Instant) -> io::Result<TcpStream> {
        let port = self.authority.port_u16().unwrap_or(80);
        // An IPv6 address is written in brackets in a URL, not in a lookup.
        let name = self.authority.host();
        let name = name
            .strip_prefix('[')
            .and_then(|name| name.strip_suffix(']'))
            .unwrap_or(name);
        let addrs: Vec<_> = tokio::net::lookup_host((name, port)).await?.collect();
        let mut last = None;
        for (n, addr) in addrs.iter().enumerate() {
            let left = u32::try_from(addrs.len() - n).unwrap_or(u32::MAX);
            let share = deadline.saturating_duration_since(Instant::now()) / left;
            match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => last = Some(error),
                Err(_) => {
                    last = Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    ));
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{name}: no address"))
        }))
    }
}

/// Closes `host`'s connections as they pass their idle timeout, until it has none; then forgets
/// the host, if no call is using it, so that a pool following instances that come and go does
/// not remember every one. `surplus` is the host's: it wakes the task early when the oldest
/// connection's time is shortened. (The task holds no `Host` while it sleeps, which would keep
/// the host from being forgotten.)
async fn reap(host: Weak<Host>, shared: Weak<Shared>, surplus: Arc<Notify>) {
    loop {
        let next = {
            let Some(host) = host.upgrade() else { return };
            let mut idle = lock(&host.idle);
            idle.expire(Instant::now());
            match idle.next_expiry() {
                Some(at) => at,
                None => {
                    idle.reaping = false;
                    drop(idle);
                    if let Some(shared) = shared.upgrade() {
                        forget(&shared, &host);
                    }
                    return;
                }
            }
        };
        // A notification sent since the lock was let go is kept for `notified`: none is lost.
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = surplus.notified() => {}
        }
    }
}

/// Removes `host` from the pool's map if the map's reference and `host` are the only ones: no
/// call is using it, and none can take it meanwhile (that takes the map's lock).
fn forget(shared: &Shared, host: &Arc<Host>) {
    let mut hosts = lock(&shared.hosts);
    if let Some(known) = hosts.get(host.authority.as_str())
        && Arc::ptr_eq(known, host)
        && Arc::strong_count(host) == 2
    {
        hosts.remove(host.authority.as_str());
    }
}

/// Locks `mutex`, whether or not a thread panicked holding it: what it guards (lists of
/// connections) stays consistent at every step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// No connection could be made: nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {authority}")]
pub(crate) struct ConnectError {
    authority: String,
    #[source]
    source: io::Error,
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Why a request got no whole answer.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The deadline passed first.
    Timeout,
    /// The request could not be sent or its answer not read.
    Transport(BoxError),
    /// The answer's body was larger than allowed.
    TooLarge,
}

/// Whether `error`, or one of its causes, is a failure to connect: nothing was sent, so the
/// call is safe to try on another instance whatever it does.
pub(crate) fn is_connect(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<ConnectError>() {
            return true;
        }
        current = error.source();
    }
    false
}

/// What went wrong, in a few words: the innermost cause, an I/O error as its kind (`connection
/// refused`, `connection reset`). The layers' wrappers add nothing a reader can act on.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    // An operating-system error reads best as its kind; others (a failed DNS lookup, say)
    // carry their message in their text.
    match innermost.downcast_ref::<std::io::Error>() {
        Some(io) if io.raw_os_error().is_some() => io.kind().to_string(),
        _ => innermost.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// How the test server answers.
    #[derive(Clone, Copy, Default)]
    struct Behaviour {
        /// Waits this long before each answer.
        delay: Duration,
        /// The answer's body: this many `x`.
        body: usize,
        /// Closes each connection after this many answers (0: never).
        close_after: usize,
    }

    /// A minimal HTTP/1.1 server that counts the connections it accepts and says when one
    /// closes; each answer's body is `n=<answers on this connection>` unless `body` is set.
    struct Server {
        addr: std::net::SocketAddr,
        accepted: Arc<AtomicUsize>,
        closed: mpsc::UnboundedReceiver<()>,
    }

    async fn server(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let (closes, closed) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let closes = closes.clone();
                tokio::spawn(async move {
                    let mut answered = 0;
                    let mut buffer = Vec::new();
                    loop {
                        // One request: its head, then the body its Content-Length announces.
                        let head_end = loop {
                            if let Some(at) = find(&buffer, b"\r\n\r\n") {
                                break at + 4;
                            }
                            let mut chunk = [0; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => {
                                    let _ = closes.send(());
                                    return;
                                }
                                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |n| n.trim().parse().expect("length"));
                        while buffer.len() < head_end + length {
                            let mut chunk = [0; 4096];
                            let n = stream.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                let _ = closes.send(());
                                return;
                            }
                            buffer.extend_from_slice(&chunk[..n]);
                        }
                        buffer.drain(..head_end + length);
                        tokio::time::sleep(behaviour.delay).await;
                        answered += 1;
                        let body = if behaviour.body > 0 {
                            "x".repeat(behaviour.body)
                        } else {
                            format!("n={answered}")
                        };
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            let _ = closes.send(());
                            return;
                        }
                        if answered == behaviour.close_after {
                            let _ = closes.send(());
                            return;
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            closed,
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack
            .windows(needle.len())
            .position(|window| window == needle)
    }

    fn post(addr: std::net::SocketAddr) -> http::Request<Bytes> {
        http::Request::post(format!("http://{addr}/uppercase"))
            .body(Bytes::from_static(b"{\"s\":\"hi\"}"))
            .expect("request")
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_named_by_its_kind() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let pool = Pool::new();
        let Err(SendError::Transport(error)) = pool.send(post(addr), None, 1024).await else {
            panic!("a closed port should refuse");
        };
        assert!(is_connect(error.as_ref()), "{error:?}");
        assert_eq!(root_cause(error.as_ref()), "connection refused");
        // Nothing is kept of a host no call could reach.
        let hosts = lock(&pool.shared.hosts).len();
        assert_eq!(hosts, 0, "{pool:?}");
    }

    #[tokio::test]
    async fn another_scheme_is_a_transport_error() {
        let request = http::Request::get("https://127.0.0.1:1/x")
            .body(Bytes::new())
            .expect("request");
        let answer = Pool::new().send(request, None, 1024).await;
        let Err(SendError::Transport(error)) = answer else {
            panic!("{answer:?}");
        };
        assert!(!is_connect(error.as_ref()), "{error:?}");
        assert!(error.to_string().contains("only http://"), "{error}");
    }

    #[tokio::test]
    async fn a_name_is_looked_up() {
        let server = server(Behaviour::default()).await;
        let request = http::Request::get(format!("http://localhost:{}/x", server.addr.port()))
            .body(Bytes::new())
            .expect("request");
        let answer = Pool::new().send(request, None, 1024).await.expect("answer");
        assert_eq!(answer.body, "n=1");
    }

    #[tokio::test]
    async fn calls_one_after_another_share_one_connection() {
        let server = server(Behaviour::default()).await;
        let pool = Pool::new();
        for call in 1..=5 {
            let answer = pool
                .send(post(server.addr), None, 1024)
                .await
                .expect("answer");
            assert_eq!(answer.status, StatusCode::OK);
            assert_eq!(answer.body, format!("n={call}"));
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_pool_keeps_no_more_connections_than_calls_were_in_flight() {
        let server = server(Behaviour {
            delay: Duration::from_millis(50),
            ..Behaviour::default()
        })
        .await;
        let pool = Pool::new();
        for _round in 0..3 {
            let call = || pool.send(post(server.addr), None, 1024);
            let answers = tokio::join!(call(), call(), call(), call());
            for answer in [answers.0, answers.1, answers.2, answers.3] {
                answer.expect("answer");
            }
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 4);
        // One at a time now: the four idle connections serve them all.
        for _ in 0..6 {
            pool.send(post(server.addr), None, 1024)
                .await
                .expect("answer");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced() {
        let mut server = server(Behaviour {
            close_after: 1,
            ..Behaviour::default()
        })
        .await;
        let pool = Pool::new();
        for _ in 0..3 {
            let answer = pool
                .send(post(server.addr), None, 1024)
                .await
                .expect("answer");
            assert_eq!(answer.body, "n=1");
            // The server has closed it: the next call must not fail for it.
            server.closed.recv().await.expect("closed");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_answer_cut_short_by_the_deadline_leaves_nothing_for_the_next_call() {
        let mut server = server(Behaviour {
            delay: Duration::from_millis(200),
            ..Behaviour::default()
        })
        .await;
        let pool = Pool::new();
        let deadline = Instant::now() + Duration::from_millis(20);
        let answer = pool.send(post(server.addr), Some(deadline), 1024).await;
        assert!(matches!(answer, Err(SendError::Timeout)), "{answer:?}");
        // The late answer is not taken for the next call's: that one gets its own connection.
        let answer = pool
            .send(post(server.addr), None, 1024)
            .await
            .expect("answer");
        assert_eq!(answer.body, "n=1");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
        server
            .closed
            .recv()
            .await
            .expect("the first connection closed");
    }

    #[tokio::test]
    async fn an_answer_too_large_closes_its_connection() {
        let mut server = server(Behaviour {
            body: 2048,
            ..Behaviour::default()
        })
        .await;
        let pool = Pool::new();
        let answer = pool.send(post(server.addr), None, 1024).await;
        assert!(matches!(answer, Err(SendError::TooLarge)), "{answer:?}");
        server.closed.recv().await.expect("closed");
        let answer = pool
            .send(post(server.addr), None, 4096)
            .await
            .expect("answer");
        assert_eq!(answer.body.len(), 2048);
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_idle_timeout_and_its_host_forgotten() {
        let mut server = server(Behaviour::default()).await;
        let pool = Pool::new();
        pool.send(post(server.addr), None, 1024)
            .await
            .expect("answer");
        assert_eq!(lock(&pool.shared.hosts).len(), 1);
        tokio::time::pause();
        let idle_from = Instant::now();
        // Nothing else to do: the clock moves on to the pool's next timer.
        server.closed.recv().await.expect("closed");
        assert!(
            idle_from.elapsed() >= IDLE_TIMEOUT,
            "{:?}",
            idle_from.elapsed()
        );
        tokio::task::yield_now().await;
        let hosts = lock(&pool.shared.hosts).len();
        assert_eq!(hosts, 0, "{pool:?}");
        // A call after that makes a new connection.
        pool.send(post(server.addr), None, 1024)
            .await
            .expect("answer");
        assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    }

    /// Two connections idle, then a surge of six calls at once: the four connections the
    /// surge added are closed a second after it, not after the idle timeout; the two left
    /// serve the calls that follow, and go after the idle timeout.
    #[tokio::test]
    async fn a_surge_s_connections_beyond_two_are_closed_a_second_after_it() {
        // Answers slow enough that each call of the surge has its own connection before any
        // is given back, on a busy machine too.
        let mut server = server(Behaviour {
            delay: Duration::from_millis(100),
            ..Behaviour::default()
        })
        .await;
        let pool = Pool::new();
        let call = || pool.send(post(server.addr), None, 1024);
        let (first, second) = tokio::join!(call(), call());
        first.expect("answer");
        second.expect("answer");
        // The task closing idle connections now sleeps until the idle timeout of these two.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let surge = tokio::join!(call(), call(), call(), call(), call(), call());
        for answer in [surge.0, surge.1, surge.2, surge.3, surge.4, surge.5] {
            answer.expect("answer");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 6);
        let host = lock(&pool.shared.hosts)
            .values()
            .next()
            .cloned()
            .expect("host");
        assert_eq!(lock(&host.idle).connections.len(), 6);
        tokio::time::pause();
        let idle_from = Instant::now();
        for _ in 0..4 {
            server.closed.recv().await.expect("closed");
        }
        let waited = idle_from.elapsed();
        // Given back a few milliseconds before the clock stopped; Tokio's timers round up to
        // the next millisecond.
        assert!(
            waited > SURPLUS_IDLE_TIMEOUT - Duration::from_millis(500)
                && waited <= SURPLUS_IDLE_TIMEOUT + Duration::from_millis(5),
            "{waited:?}"
        );
        assert_eq!(lock(&host.idle).connections.len(), KEPT_IDLE);
        drop(host);
        for _ in 0..3 {
            pool.send(post(server.addr), None, 1024)
                .await
                .expect("answer");
        }
        assert_eq!(server.accepted.load(Ordering::SeqCst), 6);
        let idle_from = Instant::now();
        for _ in 0..KEPT_IDLE {
            server.closed.recv().await.expect("closed");
        }
        assert!(idle_from.elapsed() >= IDLE_TIMEOUT - Duration::from_millis(500));
        tokio::task::yield_now().await;
        assert_eq!(lock(&pool.shared.hosts).len(), 0, "{pool:?}");
    }

    #[tokio::test]
    async fn a_connection_given_back_goes_to_a_call_waiting_for_one_first() {
        let server = server(Behaviour::default()).await;
        let pool = Pool::new();
        let host = pool
            .host(&format!("http://{}/", server.addr).parse().expect("uri"))
            .expect("host");
        let connection = host
            .clone()
            .connect(DEFAULT_CONNECT_TIMEOUT)
            .await
            .expect("connect");
        let Err(given) = host.take() else {
            panic!("no connection is idle yet");
        };
        host.give_back(connection, &pool.shared);
        let connection = given.await.expect("handed over");
        assert!(lock(&host.idle).connections.is_empty());
        // A call that stopped waiting (its own connection came first) is passed over.
        let Err(given) = host.take() else {
            panic!("no connection is idle");
        };
        drop(given);
        host.give_back(connection, &pool.shared);
        assert_eq!(lock(&host.idle).connections.len(), 1);
        assert!(lock(&host.idle).waiting.is_empty());
    }

    #[tokio::test]
    async fn a_request_carries_its_host_and_its_path_and_no_credentials() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            while find(&head, b"\r\n\r\n").is_none() {
                let mut chunk = [0; 1024];
                let n = stream.read(&mut chunk).await.expect("read");
                head.extend_from_slice(&chunk[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8(head).expect("utf-8")
        });
        // Credentials in the URL go nowhere: not in the request line, not in `Host`.
        let request = http::Request::get(format!("http://user:secret@{addr}/a/b?c=d"))
            .body(Bytes::new())
            .expect("request");
        let answer = Pool::new().send(request, None, 1024).await.expect("answer");
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        let head = seen.await.expect("server").to_lowercase();
        assert!(head.starts_with("get /a/b?c=d http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nhost: {addr}\r\n")), "{head}");
        assert!(!head.contains("secret"), "{head}");
    }
}
