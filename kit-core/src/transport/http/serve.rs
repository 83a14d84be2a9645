//! Serving HTTP/1.1 on a listener until shutdown, then draining.
//!
//! This is the accept loop every HTTP listener of a kit-core service runs: hyper's HTTP/1
//! connections, with `TCP_NODELAY` and a header read timeout, each watched so that a
//! [`Shutdown`] can drain them without losing a request a client had already sent.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::drain;
use super::guard::Guard;
use super::head_timeout::{Activity, Flushes, HeadTimeout};
use super::preface::{self, Opening};
use crate::shutdown::{Outcome, Shutdown};

/// How long a client may take to send a request's head (its line and headers) before the
/// connection is closed: the guard against clients that connect and then trickle bytes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest request head (request line and headers) a client may send, in bytes; a larger
/// one is answered 431. It also bounds what a connection buffers of pipelined requests. Real
/// clients send a few hundred bytes; proxies such as nginx allow 8 KiB a line.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long, once the drain starts, open connections keep being read before the idle ones are
/// closed: requests their clients sent before the signal are already here or on their way, and
/// are answered.
pub const SETTLE: Duration = Duration::from_millis(100);

/// How long, after the drain deadline, requests cut off with a 503 have for their answer to
/// leave before their connections are closed.
pub const CUT_OFF_GRACE: Duration = Duration::from_millis(500);

/// Serves `app` on `listener` until `shutdown` is requested, then drains.
///
/// The drain loses no request a client sent before it began:
///
/// 1. connections still waiting in the listener's queue are accepted, then the listener is
///    closed, so new connections are refused;
/// 2. for [`SETTLE`], open connections go on being read, so that requests already on their way
///    are answered; every answer from now on says `Connection: close`;
/// 3. then idle connections are closed, and busy ones close after their answer;
/// 4. requests still running at the drain's deadline are answered 503 by their
///    [`Server`](super::Server) ([`CutOff`](crate::shutdown::CutOff)), and after
///    [`CUT_OFF_GRACE`] whatever connection is left is closed.
///
/// Returns whether everything finished before the deadline.
///
/// Connections speak HTTP/1.1 with `TCP_NODELAY`, and a client gets [`HEADER_READ_TIMEOUT`] to
/// send each request's head, counted from when the connection is free for it (accepted, or the
/// previous answer written out), so a keep-alive connection left idle that long is closed too;
/// HTTP clients reconnect on their next call. Connection upgrades (WebSocket) are not served:
/// hyper's upgradeable connections cannot take part in the graceful drain.
pub async fn serve(listener: TcpListener, app: Router, shutdown: Shutdown) -> io::Result<Outcome> {
    serve_with(listener, app, shutdown, ServeOptions::default()).await
}

/// How many connections a listener serves at once unless [`ServeOptions`] says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// What [`serve_with`] may change of [`serve`]'s defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The most connections served at once ([`DEFAULT_MAX_CONNECTIONS`] unless set).
    ///
    /// A connection that arrives when all are taken makes room by closing the connection that
    /// has been idle the longest (between requests, or still sending its request's head): idle
    /// connections are cheap to hold and someone holding thousands of them should not lock
    /// everyone else out. When every connection is busy with a request, the newcomer is answered
    /// 503 at once and closed.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ServeOptions {
    /// These options with at most `max_connections` connections at once (at least one).
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }
}

/// [`serve`], with other [`ServeOptions`].
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    options: ServeOptions,
) -> io::Result<Outcome> {
    let connections = Connections::new(app, shutdown.clone(), options);
    let requested = shutdown.requested();
    let mut requested = std::pin::pin!(requested);

    let deadline = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => connections.serve(stream),
                Err(err) => pause_after_accept_error(&err).await,
            },
            deadline = &mut requested => break deadline,
        }
    };

    // 1. What is queued was sent before the signal.
    while let Some(accepted) = queued(&listener).await {
        if let Ok((stream, _)) = accepted {
            connections.serve(stream);
        }
    }
    drop(listener);
    // 2. So were requests on their way over open connections.
    let settle = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .min(SETTLE);
    tokio::time::sleep(settle).await;
    // 3 and 4.
    let outcome = connections.drain(deadline).await;
    Ok(shutdown.outcome(outcome))
}

/// The next connection waiting in `listener`'s queue, if there is one now.
async fn queued(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    std::future::poll_fn(|cx| match listener.poll_accept(cx) {
        Poll::Ready(accepted) => Poll::Ready(Some(accepted)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The connections of one listener: how each is served, how many there may be, and how they
/// are drained together.
struct Connections {
    http: http1::Builder,
    app: Router,
    shutdown: Shutdown,
    /// Every open connection, by the order it came in, so that the one idle the longest can be
    /// closed when the cap is reached.
    open: Arc<Mutex<Open>>,
    max: usize,
    /// Tracks every connection, so that the drain can tell them to finish and wait until they
    /// have.
    graceful: GracefulShutdown,
    /// Tells connections whose client has sent nothing yet that the drain closes idle
    /// connections now: until their first bytes they are not in hyper's hands, and the graceful
    /// drain cannot see that they are idle.
    closing: watch::Sender<bool>,
}

/// The open connections of a listener.
#[derive(Default)]
struct Open {
    next: u64,
    by_arrival: HashMap<u64, Tracked>,
}

/// What the listener knows of one open connection.
struct Tracked {
    /// Whether a request is being handled on it (told by its [`Guard`]).
    activity: Arc<Activity>,
    /// Closes it, by dropping its task: to make room for another, or when the drain's grace has
    /// passed with it still open. `None` only between admitting it and spawning its task.
    ///
    /// Aborting costs the connection nothing until it happens, where a signal it waited for
    /// would be polled at every wake-up.
    abort: Option<AbortHandle>,
}

impl Open {
    /// The connection idle the longest, taken out of the set: of those not handling a
    /// request, the one free since the earliest (the first to arrive among equals).
    fn take_longest_idle(&mut self) -> Option<Tracked> {
        let longest = self
            .by_arrival
            .iter()
            .filter(|(_, tracked)| !tracked.activity.is_busy())
            .map(|(id, tracked)| (tracked.activity.free_since(), *id))
            .min()?
            .1;
        self.by_arrival.remove(&longest)
    }
}

/// What a connection beyond the cap is told when every other one is busy.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 71\r\nconnection: close\r\nretry-after: 1\r\n\r\n{\"error\":\"too many connections: every one is busy, try again shortly\"}\n";

impl Connections {
    fn new(app: Router, shutdown: Shutdown, options: ServeOptions) -> Self {
        let mut http = http1::Builder::new();
        // The header read timeout is kept by `HeadTimeout`, for less than hyper's own costs.
        http.header_read_timeout(None).max_buf_size(MAX_HEAD_BYTES);
        Connections {
            http,
            app,
            shutdown,
            open: Arc::default(),
            max: options.max_connections.max(1),
            graceful: GracefulShutdown::new(),
            closing: watch::Sender::new(false),
        }
    }

    fn serve(&self, stream: TcpStream) {
        let Some((id, activity)) = self.admit() else {
            // Every connection is busy: say so at once rather than keep this one waiting.
            tokio::spawn(turn_away(stream));
            return;
        };
        // Small JSON answers should leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        // Requests the server will not read are refused before routing; once the drain has
        // begun, every answer tells its client not to send another request on this connection.
        let service = Guard::new(self.app.clone(), self.shutdown.clone(), activity.clone());
        let http = self.http.clone();
        let graceful = self.graceful.watcher();
        let shutdown = self.shutdown.clone();
        let mut closing = self.closing.subscribe();
        let leave = Leave {
            open: self.open.clone(),
            id,
        };
        let task = tokio::spawn(async move {
            // Dropped when the task ends, aborted or not.
            let _leave = leave;
            // A client that connected but has sent nothing is idle: the drain closes it like
            // any idle connection, rather than wait for bytes that may never come.
            let opening = tokio::select! {
                biased;
                opening = preface::sniff(stream, HEADER_READ_TIMEOUT) => opening,
                _ = closing.wait_for(|closing| *closing) => return,
            };
            let Opening::Http1(stream) = opening else {
                return;
            };
            let connection = graceful.watch(http.serve_connection(
                Flushes::new(TokioIo::new(stream), activity.clone()),
                TowerToHyperService::new(service),
            ));
            let connection = HeadTimeout::new(connection, activity, HEADER_READ_TIMEOUT);
            // A connection's own failure (a reset, a timeout) concerns only that client.
            let _ = drain::scope(shutdown, connection).await;
        });
        if let Some(tracked) = lock(&self.open).by_arrival.get_mut(&id) {
            tracked.abort = Some(task.abort_handle());
        }
    }

    /// Makes room for one more connection, closing the one idle the longest if the cap is
    /// reached; `None` when every connection is busy.
    fn admit(&self) -> Option<(u64, Arc<Activity>)> {
        let mut open = lock(&self.open);
        if open.by_arrival.len() >= self.max {
            let evicted = open.take_longest_idle()?;
            if let Some(abort) = evicted.abort {
                abort.abort();
            }
        }
        let id = open.next;
        open.next += 1;
        let activity = Arc::new(Activity::new());
        let tracked = Tracked {
            activity: activity.clone(),
            abort: None,
        };
        open.by_arrival.insert(id, tracked);
        Some((id, activity))
    }

    /// Closes idle connections, lets busy ones finish until `deadline` (then a grace for the
    /// 503s of the requests cut off), and closes what is left.
    async fn drain(self, deadline: tokio::time::Instant) -> Outcome {
        let _ = self.closing.send(true);
        let mut closing = std::pin::pin!(self.graceful.shutdown());
        match tokio::time::timeout_at(deadline, &mut closing).await {
            Ok(()) => Outcome::Drained,
            Err(_) => {
                let _ = tokio::time::timeout(CUT_OFF_GRACE, &mut closing).await;
                // Dropping a connection closes it.
                for tracked in lock(&self.open).by_arrival.values() {
                    if let Some(abort) = &tracked.abort {
                        abort.abort();
                    }
                }
                Outcome::DeadlineExceeded
            }
        }
    }
}

/// Answers a connection that came when every other was busy, and closes it without cutting
/// off that answer: the client's request, arriving after the close, would make the kernel reset
/// the connection and discard the answer unread, so what the client sends is read (and
/// dropped) for a moment first.
async fn turn_away(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.write_all(TOO_MANY).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Takes a connection out of its listener's set when its task ends, however it ends.
struct Leave {
    open: Arc<Mutex<Open>>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        lock(&self.open).by_arrival.remove(&self.id);
    }
}

fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    // Nothing can panic while the set is locked; take it as it is if something did.
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepting fails for one of two reasons: a client gave up while queued, which concerns only
/// that client, or the process is out of file descriptors, which a moment's pause may cure
/// without spinning on the error.
async fn pause_after_accept_error(err: &io::Error) {
    let client_gone = matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    );
    if !client_gone {
        tracing::warn!(err = %err, "accepting a connection failed; retrying in 1s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::{self, Trigger};
    use axum::routing::get;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::Notify;

    /// The length of `/big`'s answer: more than the loopback's socket buffers hold, so that
    /// writing it out waits for its client to read.
    const BIG: usize = 32 << 20;

    /// A server whose `/slow` handler says when it has started and waits to be released.
    struct Harness {
        addr: std::net::SocketAddr,
        started: Arc<Notify>,
        release: Arc<Notify>,
        trigger: Trigger,
        drain: Duration,
        server: tokio::task::JoinHandle<io::Result<Outcome>>,
    }

    impl Harness {
        async fn start(drain: Duration) -> Self {
            let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
            let (signal_started, wait_release) = (started.clone(), release.clone());
            let app = Router::new()
                .route("/fast", get(|| async { "fast" }))
                .route("/big", get(|| async { vec![b'x'; BIG] }))
                .route(
                    "/slow",
                    get(move || {
                        let (started, release) = (signal_started.clone(), wait_release.clone());
                        async move {
                            started.notify_one();
                            release.notified().await;
                            "done"
                        }
                    }),
                );
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (trigger, shutdown) = shutdown::channel();
            let server = tokio::spawn(serve(listener, app, shutdown));
            Self {
                addr,
                started,
                release,
                trigger,
                drain,
                server,
            }
        }

        /// Sends `GET /slow` and waits until the handler runs.
        async fn request_in_flight(&self) -> TcpStream {
            let mut stream = TcpStream::connect(self.addr).await.expect("connect");
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .expect("write");
            self.started.notified().await;
            stream
        }
    }

    #[tokio::test]
    async fn in_flight_requests_finish_and_new_ones_are_refused() {
        let harness = Harness::start(Duration::from_secs(30)).await;
        let mut in_flight = harness.request_in_flight().await;
        harness.trigger.drain(harness.drain);

        // The listener closes: a new connection is refused (or reset before it is served).
        let mut refused = false;
        for _ in 0..100 {
            match TcpStream::connect(harness.addr).await {
                Err(_) => {
                    refused = true;
                    break;
                }
                Ok(_) => tokio::task::yield_now().await,
            }
        }
        assert!(refused, "the listener must close once shutdown begins");

        harness.release.notify_one();
        let mut answer = String::new();
        in_flight
            .read_to_string(&mut answer)
            .await
            .expect("the in-flight request is answered");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        let outcome = harness.server.await.expect("join").expect("serve");
        assert_eq!(outcome, Outcome::Drained);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_finishes_its_headers_is_disconnected() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut slow = TcpStream::connect(harness.addr).await.expect("connect");
        slow.write_all(b"GET /slow HTTP/1.1\r\nhost: te")
            .await
            .expect("write");
        let before = tokio::time::Instant::now();
        let mut rest = Vec::new();
        // The server closes the connection, perhaps after a 408; either way the read ends.
        let closed = tokio::time::timeout(2 * HEADER_READ_TIMEOUT, slow.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "the connection stayed open");
        assert!(
            before.elapsed() >= HEADER_READ_TIMEOUT,
            "{:?}",
            before.elapsed()
        );
        let answer = String::from_utf8_lossy(&rest);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }

    /// Reads one answer of `Content-Length` framing from a keep-alive connection.
    async fn read_answer(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read");
            assert_eq!(
                n,
                1,
                "closed mid-answer: {}",
                String::from_utf8_lossy(&answer)
            );
            answer.push(byte[0]);
        }
        let head = String::from_utf8(answer).expect("utf-8");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .expect("content-length")
            .parse()
            .expect("length");
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.expect("body");
        head + &String::from_utf8_lossy(&body)
    }

    /// Sends `GET /fast` on a keep-alive connection and checks its answer.
    async fn get_fast_on(stream: &mut TcpStream) {
        stream
            .write_all(b"GET /fast HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .expect("write");
        let answer = read_answer(stream).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("fast"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_client_may_pause_between_requests_for_less_than_the_timeout() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut client = TcpStream::connect(harness.addr).await.expect("connect");
        // Four minutes on one connection, never free for as long as the timeout.
        for _ in 0..12 {
            get_fast_on(&mut client).await;
            tokio::time::sleep(HEADER_READ_TIMEOUT - Duration::from_secs(10)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_finishes_after_an_answer_is_cut_off_a_timeout_after_it() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut client = TcpStream::connect(harness.addr).await.expect("connect");
        get_fast_on(&mut client).await;
        let answered = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(20)).await;
        client
            .write_all(b"GET /fast HTTP/1.1\r\nhost: te")
            .await
            .expect("write");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(2 * HEADER_READ_TIMEOUT, client.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "the connection stayed open");
        assert_eq!(answered.elapsed(), HEADER_READ_TIMEOUT);
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_read_slowly_for_longer_than_the_timeout_is_written_whole() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut client = TcpStream::connect(harness.addr).await.expect("connect");
        client
            .write_all(b"GET /big HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let started = tokio::time::Instant::now();
        let mut received = 0;
        let mut chunk = vec![0; 1 << 20];
        loop {
            let n = client.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            received += n;
            // A client that reads a megabyte every five seconds.
            if received % (1 << 20) < n {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
        assert!(
            started.elapsed() > 3 * HEADER_READ_TIMEOUT,
            "{:?} {received}",
            started.elapsed()
        );
        assert!(received > BIG, "{received} bytes of an answer of {BIG}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_handled_for_longer_than_the_timeout_is_answered() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut in_flight = harness.request_in_flight().await;
        tokio::time::sleep(3 * HEADER_READ_TIMEOUT).await;
        harness.release.notify_one();
        let answer = read_answer(&mut in_flight).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
    }

    #[tokio::test(start_paused = true)]
    async fn draining_stops_at_the_deadline() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let _stuck = harness.request_in_flight().await;
        let before = tokio::time::Instant::now();
        harness.trigger.drain(harness.drain);
        let outcome = harness.server.await.expect("join").expect("serve");
        assert_eq!(outcome, Outcome::DeadlineExceeded);
        let waited = before.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
            "drained for {waited:?}"
        );
    }

    /// On real time: a request still in flight at the drain deadline is not answered later,
    /// when its handler finishes after `serve` has returned; its connection is closed.
    #[tokio::test]
    async fn what_is_left_at_the_deadline_is_cut_off() {
        let harness = Harness::start(Duration::from_millis(50)).await;
        let mut stuck = harness.request_in_flight().await;
        harness.trigger.drain(harness.drain);
        let outcome = harness.server.await.expect("join").expect("serve");
        assert_eq!(outcome, Outcome::DeadlineExceeded);
        harness.release.notify_one();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stuck.read_to_end(&mut answer))
            .await
            .expect("the connection ends");
        assert!(
            read.is_err() || answer.is_empty(),
            "answered after the deadline: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }

    /// On real time: once the drain has begun, an answer on a kept-alive connection says it
    /// closes, so the client sends no further request on it.
    #[tokio::test]
    async fn answers_during_the_drain_say_the_connection_closes() {
        let harness = Harness::start(Duration::from_secs(10)).await;
        let mut kept = TcpStream::connect(harness.addr).await.expect("connect");
        let ask = b"GET /fast HTTP/1.1\r\nhost: test\r\n\r\n";
        kept.write_all(ask).await.expect("write");
        let first = read_head(&mut kept).await;
        assert!(!first.contains("connection: close"), "{first}");
        harness.trigger.drain(harness.drain);
        // Within the settling time, the connection is still read, and answered.
        kept.write_all(ask).await.expect("write");
        let second = read_head(&mut kept).await;
        assert!(second.starts_with("http/1.1 200 ok"), "{second}");
        assert!(second.contains("connection: close"), "{second}");
        assert_eq!(
            harness.server.await.expect("join").expect("serve"),
            Outcome::Drained
        );
    }

    /// On real time: a client that connected but never sent a byte is idle, and the drain
    /// closes it at once instead of waiting for it until the deadline.
    #[tokio::test]
    async fn a_connection_that_sent_nothing_does_not_hold_up_the_drain() {
        let harness = Harness::start(Duration::from_secs(30)).await;
        let mut silent = TcpStream::connect(harness.addr).await.expect("connect");
        // Let the listener take it in.
        tokio::time::sleep(Duration::from_millis(50)).await;
        harness.trigger.drain(harness.drain);
        let outcome = tokio::time::timeout(Duration::from_secs(10), harness.server)
            .await
            .expect("the drain ends long before its deadline")
            .expect("join")
            .expect("serve");
        assert_eq!(outcome, Outcome::Drained);
        let mut rest = Vec::new();
        let read = silent.read_to_end(&mut rest).await;
        assert!(read.is_err() || rest.is_empty(), "{rest:?}");
    }

    /// Requests of kit-core's `Server` still waiting at the drain deadline, one on each of two
    /// connections, are each answered 503 at the deadline (each connection watches it for the
    /// requests it carries), and the shutdown token hears that requests were cut off.
    #[tokio::test(start_paused = true)]
    async fn requests_waiting_at_the_deadline_get_503_on_every_connection() {
        use crate::endpoint::endpoint_fn;
        use crate::transport::http::{Server, decode_json_request, encode_json_response};
        use std::convert::Infallible;

        let started = Arc::new(Notify::new());
        let signal = started.clone();
        let stuck = endpoint_fn(move |_: serde_json::Value| {
            signal.notify_one();
            std::future::pending::<Result<serde_json::Value, Infallible>>()
        });
        let app = Router::new().route(
            "/stuck",
            axum::routing::post_service(Server::new(
                stuck,
                decode_json_request,
                encode_json_response,
            )),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (trigger, shutdown) = shutdown::channel();
        let token = trigger.subscribe();
        let server = tokio::spawn(serve(listener, app, shutdown));
        let mut waiting = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"POST /stuck HTTP/1.1\r\nhost: test\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .expect("write");
            started.notified().await;
            waiting.push(stream);
        }
        let before = tokio::time::Instant::now();
        trigger.drain(Duration::from_secs(10));
        for mut stream in waiting {
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.expect("an answer");
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
                "{answer}"
            );
            assert!(answer.contains("shutting down"), "{answer}");
            let waited = before.elapsed();
            assert!(
                waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
                "answered after {waited:?}"
            );
        }
        assert!(token.cut_off());
        let outcome = server.await.expect("join").expect("serve");
        assert_eq!(outcome, Outcome::DeadlineExceeded);
    }

    /// Reads an answer's head and its `fast` body.
    async fn read_head(stream: &mut TcpStream) -> String {
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"fast") {
            stream.read_exact(&mut byte).await.expect("an answer");
            raw.push(byte[0]);
        }
        String::from_utf8_lossy(&raw).to_ascii_lowercase()
    }

    #[test]
    fn the_busy_answer_says_its_length_right() {
        let text = std::str::from_utf8(TOO_MANY).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
    }

    /// Serves a `/slow` route that holds each request until released, with a cap of `max`.
    async fn capped(max: usize) -> (std::net::SocketAddr, Arc<Notify>, Trigger) {
        let release = Arc::new(Notify::new());
        let held = release.clone();
        let app = Router::new()
            .route("/fast", get(|| async { "fast" }))
            .route(
                "/slow",
                get(move || {
                    let held = held.clone();
                    async move {
                        held.notified().await;
                        "done"
                    }
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (trigger, shutdown) = shutdown::channel();
        let options = ServeOptions::default().max_connections(max);
        tokio::spawn(serve_with(listener, app, shutdown, options));
        (addr, release, trigger)
    }

    async fn get_fast(addr: std::net::SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /fast HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    }

    #[tokio::test]
    async fn at_the_cap_the_connection_idle_the_longest_makes_room() {
        let (addr, _release, _trigger) = capped(3).await;
        // Someone holds every connection, sending nothing.
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // Let the listener take them all in.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = get_fast(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        // The first idle connection was closed to make room.
        let mut first = idle.remove(0);
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut rest))
            .await
            .expect("the oldest idle connection is closed");
        assert!(read.is_ok() && rest.is_empty(), "{rest:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_connection_free_the_longest_makes_room_not_the_first_to_come() {
        let (addr, _release, _trigger) = capped(2).await;
        let mut first = TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut second = TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The first to come asks something: it is free since its answer, later than the second.
        get_fast_on(&mut first).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let answer = get_fast(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut rest))
            .await
            .expect("the connection idle the longest is closed");
        assert!(read.is_ok() && rest.is_empty(), "{rest:?}");
        get_fast_on(&mut first).await;
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_a_newcomer_gets_503_at_once() {
        let (addr, release, _trigger) = capped(2).await;
        let mut busy = Vec::new();
        for _ in 0..2 {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .expect("write");
            busy.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = get_fast(addr).await;
        assert!(
            answer.starts_with("HTTP/1.1 503 Service Unavailable"),
            "{answer}"
        );
        assert!(answer.contains("too many connections"), "{answer}");
        // Once a busy connection is done and closed, there is room again.
        release.notify_waiters();
        drop(busy);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = get_fast(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    }
}
