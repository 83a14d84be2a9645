//! Graceful shutdown: on SIGINT or SIGTERM, stop accepting, finish what is in flight, and exit
//! within a deadline.
//!
//! Go kit leaves shutdown to `net/http`, and its examples simply die on a signal, cutting off
//! requests in flight. A service built on kit-core instead [`serve`]s until a [`Signals`] future
//! resolves, then lets in-flight requests finish, but never for longer than the drain deadline,
//! so a stuck client cannot keep a deploy waiting.
//!
//! ```no_run
//! use std::time::Duration;
//! use kit_core::shutdown::{self, Signals};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Listen for signals before binding, so none is missed once clients can connect.
//! let signals = Signals::new()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let app = axum::Router::new();
//! shutdown::serve(listener, app, signals.graceful(), Duration::from_secs(10)).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Every request in flight was answered.
    Drained,
    /// The drain deadline passed with requests still in flight; they were cut off.
    DeadlineExceeded,
}

/// The process's shutdown signals: SIGINT (Ctrl-C) and SIGTERM.
///
/// The handlers are installed when this is created, so a signal that arrives before anything
/// awaits [`recv`](Self::recv) is kept rather than killing the process. [`graceful`](Self::graceful)
/// is what a server passes to [`serve`].
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers. Needs a Tokio runtime.
    pub fn new() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolves when the next signal arrives.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Resolves on the first signal, the cue to drain; a second signal exits the process at
    /// once, with status 1, for when the user will not wait for the drain.
    pub async fn graceful(mut self) {
        self.recv().await;
        tokio::spawn(async move {
            self.recv().await;
            eprintln!("second signal: stopping without waiting for requests in flight");
            std::process::exit(1);
        });
    }
}

/// How long a client may take to send a request's head (its line and headers) before the
/// connection is closed: the guard against clients that connect and then trickle bytes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
///
/// Once `shutdown` resolves, the listener is closed and idle connections are closed; requests in
/// flight get up to `drain` to finish. Returns whether they all did.
///
/// Connections speak HTTP/1.1 with `TCP_NODELAY`, and a client gets [`HEADER_READ_TIMEOUT`] to
/// send each request's head. The timer starts when the connection is ready for the next request,
/// so a keep-alive connection left idle that long is closed too; HTTP clients reconnect on their
/// next call. Connection upgrades (WebSocket) are not served: hyper's upgradeable connections
/// cannot take part in the graceful drain.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    shutdown: F,
    drain: Duration,
) -> io::Result<Shutdown>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Tracks every connection, so that shutdown can tell them to finish and wait until they have.
    let connections = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    pause_after_accept_error(&err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small JSON answers should leave at once, not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A connection's own failure (a reset, a timeout) concerns only that client.
            let _ = connection.await;
        });
    }

    drop(listener);
    match tokio::time::timeout(drain, connections.shutdown()).await {
        Ok(()) => Ok(Shutdown::Drained),
        Err(_) => Ok(Shutdown::DeadlineExceeded),
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
        eprintln!("accepting a connection failed: {err}; retrying in 1s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::{Notify, oneshot};

    /// A server whose `/slow` handler says when it has started and waits to be released.
    struct Harness {
        addr: std::net::SocketAddr,
        started: Arc<Notify>,
        release: Arc<Notify>,
        stop: oneshot::Sender<()>,
        server: tokio::task::JoinHandle<io::Result<Shutdown>>,
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
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            let server = tokio::spawn(serve(listener, app, shutdown, drain));
            Self {
                addr,
                started,
                release,
                stop,
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
        harness.stop.send(()).expect("server is running");

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
        assert_eq!(outcome, Shutdown::Drained);
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
        harness.stop.send(()).expect("server is running");
        let outcome = harness.server.await.expect("join").expect("serve");
        assert_eq!(outcome, Shutdown::DeadlineExceeded);
        let waited = before.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
            "drained for {waited:?}"
        );
    }
}
