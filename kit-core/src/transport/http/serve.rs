//! Serving HTTP/1.1 on a listener until shutdown, then draining.
//!
//! This is the accept loop every HTTP listener of a kit-core service runs: hyper's HTTP/1
//! connections, with `TCP_NODELAY` and a header read timeout, each watched so that a
//! [`Shutdown`] can drain them without losing a request a client had already sent.

use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use axum::Router;
use http::{HeaderValue, header};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceBuilder;

use super::{Response, drain};
use crate::shutdown::{Outcome, Shutdown};

/// How long a client may take to send a request's head (its line and headers) before the
/// connection is closed: the guard against clients that connect and then trickle bytes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
/// send each request's head. The timer starts when the connection is ready for the next request,
/// so a keep-alive connection left idle that long is closed too; HTTP clients reconnect on their
/// next call. Connection upgrades (WebSocket) are not served: hyper's upgradeable connections
/// cannot take part in the graceful drain.
pub async fn serve(listener: TcpListener, app: Router, shutdown: Shutdown) -> io::Result<Outcome> {
    let connections = Connections::new(app, shutdown.clone());
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
    Ok(connections.drain(deadline).await)
}

/// The next connection waiting in `listener`'s queue, if there is one now.
async fn queued(listener: &TcpListener) -> Option<io::Result<(TcpStream, SocketAddr)>> {
    std::future::poll_fn(|cx| match listener.poll_accept(cx) {
        Poll::Ready(accepted) => Poll::Ready(Some(accepted)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The connections of one listener: how each is served, and how they are drained together.
struct Connections {
    http: http1::Builder,
    app: Router,
    shutdown: Shutdown,
    /// Tracks every connection, so that the drain can tell them to finish and wait until they
    /// have.
    graceful: GracefulShutdown,
    /// Tells every connection to stop at once, when the drain's grace has passed with some still
    /// open: without it they would go on, unwatched, until the process ends.
    cut_off: watch::Sender<bool>,
}

impl Connections {
    fn new(app: Router, shutdown: Shutdown) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        Connections {
            http,
            app,
            shutdown,
            graceful: GracefulShutdown::new(),
            cut_off: watch::Sender::new(false),
        }
    }

    fn serve(&self, stream: TcpStream) {
        // Small JSON answers should leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        // Once the drain has begun, every answer tells its client not to send another request
        // on this connection.
        let draining = self.shutdown.clone();
        let service = ServiceBuilder::new()
            .map_response(move |mut response: Response| {
                if draining.is_requested() {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                response
            })
            .service(self.app.clone());
        let connection = self.graceful.watch(
            self.http
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)),
        );
        let connection = drain::scope(self.shutdown.clone(), connection);
        let mut cut = self.cut_off.subscribe();
        tokio::spawn(async move {
            // A connection's own failure (a reset, a timeout) concerns only that client.
            tokio::select! {
                _ = connection => {}
                _ = cut.wait_for(|cut| *cut) => {}
            }
        });
    }

    /// Closes idle connections, lets busy ones finish until `deadline` (then a grace for the
    /// 503s of the requests cut off), and closes what is left.
    async fn drain(self, deadline: tokio::time::Instant) -> Outcome {
        let mut closing = std::pin::pin!(self.graceful.shutdown());
        match tokio::time::timeout_at(deadline, &mut closing).await {
            Ok(()) => Outcome::Drained,
            Err(_) => {
                let _ = tokio::time::timeout(CUT_OFF_GRACE, &mut closing).await;
                // Dropping a connection closes it.
                let _ = self.cut_off.send(true);
                Outcome::DeadlineExceeded
            }
        }
    }
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
        let _ = slow.read_to_end(&mut rest).await;
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
}
