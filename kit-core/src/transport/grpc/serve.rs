//! Serving gRPC on a listener until shutdown, then draining.
//!
//! tonic's own server spawns its connections where a drain deadline cannot reach them, so this
//! is the accept loop of kit-core's HTTP transport on HTTP/2: every connection is watched, so
//! that a [`Shutdown`] can tell them all to finish (HTTP/2's `GOAWAY`: calls in flight go on,
//! new ones go elsewhere) and cut off the ones still busy at the deadline.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::shutdown::{Outcome, Shutdown};

/// How often an idle connection is pinged, and how long the answer may take before the
/// connection is closed: the guard against clients that vanished without closing.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// How long a new connection may stay silent before it is closed: a gRPC client sends HTTP/2's
/// preface as soon as it connects, and a connection that sends nothing only holds a place.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections a gRPC listener serves at once unless [`ServeOptions`] says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// What [`serve_with`] may change of [`serve`]'s defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The most connections served at once ([`DEFAULT_MAX_CONNECTIONS`] unless set). A
    /// connection beyond it is closed at once: gRPC clients multiplex their calls over one
    /// connection and reconnect with backoff, so a refused one costs a client a retry, where
    /// holding it would cost every client a file descriptor.
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

/// Serves the gRPC services of `routes` on `listener` until `shutdown` is requested, then
/// drains: the listener closes, every connection is told to take no new calls, and the calls in
/// flight have until the drain's deadline to finish. Returns whether they all did; those still
/// in flight at the deadline are cut off, their connections closed.
///
/// Serve any tonic services with it, generated ones and tonic's health and reflection services
/// alike: `Routes::new(AddServer::new(svc)).add_service(health)`.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: Shutdown,
) -> io::Result<Outcome> {
    serve_with(listener, routes, shutdown, ServeOptions::default()).await
}

/// [`serve`], with other [`ServeOptions`].
pub async fn serve_with(
    listener: TcpListener,
    routes: Routes,
    shutdown: Shutdown,
    options: ServeOptions,
) -> io::Result<Outcome> {
    let max = options.max_connections.max(1);
    let open = Arc::new(AtomicUsize::new(0));
    let connections = GracefulShutdown::new();
    let (cut_off, cut) = tokio::sync::watch::channel(false);
    let mut http = http2::Builder::new(TokioExecutor::new());
    http.timer(TokioTimer::new())
        .keep_alive_interval(Some(KEEP_ALIVE))
        .keep_alive_timeout(KEEP_ALIVE);
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
        if open.fetch_add(1, Ordering::AcqRel) >= max {
            // Dropping it closes it.
            open.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let counted = Counted(open.clone());
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(routes.clone());
        let http = http.clone();
        let watcher = connections.watcher();
        let mut cut = cut.clone();
        tokio::spawn(async move {
            let _counted = counted;
            // A connection that sends nothing is closed rather than kept: until its first bytes
            // it is not in hyper's hands, whose pings only begin after the handshake.
            // (Peeking, since readiness alone may be reported before any byte has come.)
            let mut first = [0u8; 1];
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
            // A connection's own failure (a reset, garbage instead of HTTP/2) concerns only
            // that client.
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
            let _ = cut_off.send(true);
            Ok(Outcome::DeadlineExceeded)
        }
    }
}

/// Counts a connection among its listener's open ones until it ends.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client that gave up while queued concerns only itself; anything else (out of file
/// descriptors) may pass, so pause instead of spinning on it.
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
    use crate::shutdown;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// What an HTTP/2 client sends first: the preface and an empty SETTINGS frame.
    const OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

    async fn start(options: ServeOptions) -> (std::net::SocketAddr, shutdown::Trigger) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(serve_with(listener, Routes::default(), shutdown, options));
        (addr, trigger)
    }

    /// Opens an HTTP/2 connection; `true` when the server answers with its own SETTINGS,
    /// `false` when it closes the connection instead.
    async fn served(addr: std::net::SocketAddr) -> (TcpStream, bool) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.write_all(OPENING).await;
        let mut frame = [0u8; 9];
        let answered = matches!(stream.read(&mut frame).await, Ok(n) if n > 0);
        (stream, answered)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
        let (addr, _trigger) = start(ServeOptions::default()).await;
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let before = tokio::time::Instant::now();
        let mut rest = Vec::new();
        let _ = silent.read_to_end(&mut rest).await;
        assert!(rest.is_empty(), "{rest:?}");
        let waited = before.elapsed();
        assert!(
            waited >= HANDSHAKE_TIMEOUT && waited < HANDSHAKE_TIMEOUT + Duration::from_secs(1),
            "{waited:?}"
        );
        // A client that speaks is served.
        let (_client, answered) = served(addr).await;
        assert!(answered);
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_and_a_freed_place_is_taken_again() {
        let (addr, _trigger) = start(ServeOptions::default().max_connections(2)).await;
        let (first, answered) = served(addr).await;
        assert!(answered);
        let (_second, answered) = served(addr).await;
        assert!(answered);
        let (_third, answered) = served(addr).await;
        assert!(!answered, "a third connection is closed");

        drop(first);
        // The first connection's place comes free once the server has seen it close.
        let mut tries = 0;
        loop {
            let (_again, answered) = served(addr).await;
            if answered {
                break;
            }
            tries += 1;
            assert!(tries < 200, "the freed place was never taken");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
