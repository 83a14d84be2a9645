//! Serving HTTP/1.1 on a listener until shutdown, then draining.
//!
//! This is the accept loop every HTTP listener of a kit-core service runs: hyper's HTTP/1
//! connections, with `TCP_NODELAY` and a header read timeout, each watched so that a
//! [`Shutdown`] can close the idle ones and wait for the busy ones.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::shutdown::{Outcome, Shutdown};

/// How long a client may take to send a request's head (its line and headers) before the
/// connection is closed: the guard against clients that connect and then trickle bytes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` is requested, then drains.
///
/// Once the drain starts, the listener is closed and idle connections are closed; requests in
/// flight have until the drain's deadline to finish. Returns whether they all did; those still
/// in flight at the deadline are cut off, their connections closed.
///
/// Connections speak HTTP/1.1 with `TCP_NODELAY`, and a client gets [`HEADER_READ_TIMEOUT`] to
/// send each request's head. The timer starts when the connection is ready for the next request,
/// so a keep-alive connection left idle that long is closed too; HTTP clients reconnect on their
/// next call. Connection upgrades (WebSocket) are not served: hyper's upgradeable connections
/// cannot take part in the graceful drain.
pub async fn serve(listener: TcpListener, app: Router, shutdown: Shutdown) -> io::Result<Outcome> {
    // Tracks every connection, so that shutdown can tell them to finish and wait until they have.
    let connections = GracefulShutdown::new();
    // Tells every connection to stop at once, when the drain deadline passes with some still
    // busy: without it they would go on, unwatched, until the process ends.
    let (cut_off, cut) = tokio::sync::watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let requested = shutdown.requested();
    let mut requested = std::pin::pin!(requested);

    let deadline = loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    pause_after_accept_error(&err).await;
                    continue;
                }
            },
            deadline = &mut requested => break deadline,
        };
        // Small JSON answers should leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        let mut cut = cut.clone();
        tokio::spawn(async move {
            // A connection's own failure (a reset, a timeout) concerns only that client.
            tokio::select! {
                _ = connection => {}
                _ = cut.wait_for(|cut| *cut) => {}
            }
        });
    };

    drop(listener);
    match tokio::time::timeout_at(deadline, connections.shutdown()).await {
        Ok(()) => Ok(Outcome::Drained),
        Err(_) => {
            // Dropping a connection closes it: its client sees the connection end unanswered.
            let _ = cut_off.send(true);
            Ok(Outcome::DeadlineExceeded)
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
            let app = Router::new().route(
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
}
