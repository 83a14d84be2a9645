//! Serving gRPC on a listener until shutdown, then draining.
//!
//! tonic's own server spawns its connections where a drain deadline cannot reach them, so this
//! is the accept loop of kit-core's HTTP transport on HTTP/2: every connection is watched, so
//! that a [`Shutdown`] can tell them all to finish (HTTP/2's `GOAWAY`: calls in flight go on,
//! new ones go elsewhere) and cut off the ones still busy at the deadline.

use std::io;
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
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(routes.clone());
        let connection = connections.watch(http.serve_connection(TokioIo::new(stream), service));
        let mut cut = cut.clone();
        tokio::spawn(async move {
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
