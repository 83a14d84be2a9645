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

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
///
/// Once `shutdown` resolves, the listener is closed and idle connections are closed; requests in
/// flight get up to `drain` to finish. Returns whether they all did.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    shutdown: F,
    drain: Duration,
) -> io::Result<Shutdown>
where
    F: Future<Output = ()> + Send + 'static,
{
    // Tells us when the shutdown began, so that the drain deadline starts then.
    let (began, began_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = began.send(());
    };
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let mut server = std::pin::pin!(server.into_future());

    tokio::select! {
        result = &mut server => return result.map(|()| Shutdown::Drained),
        _ = began_rx => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result.map(|()| Shutdown::Drained),
        Err(_) => Ok(Shutdown::DeadlineExceeded),
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
