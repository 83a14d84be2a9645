//! What a request learns of its server's drain: the accept loop runs each connection with the
//! server's [`Shutdown`] token at hand, and the [`Server`](super::Server) cuts a request off
//! with a 503 when the drain deadline passes before it is done, rather than leave its client to
//! a connection that is simply closed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::futures::TaskLocalFuture;

use crate::shutdown::Shutdown;

tokio::task_local! {
    static DRAINING: Shutdown;
}

/// Runs a connection with `shutdown` at hand for the requests it serves.
pub(super) fn scope<F: Future>(shutdown: Shutdown, connection: F) -> TaskLocalFuture<Shutdown, F> {
    DRAINING.scope(shutdown, connection)
}

/// Watches the server's drain on behalf of one request, to cut it off with
/// [`CutOff`](crate::shutdown::CutOff) if the drain deadline passes before it is done.
///
/// A request that finishes in its first poll, as most do, never asks and costs nothing: the
/// drain is only watched (a registration with the shutdown token and a timer) once a request
/// has had to wait. Outside a kit-core accept loop there is no drain to watch, and the deadline
/// never passes.
#[derive(Default)]
pub(super) struct DrainWatch {
    deadline: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl DrainWatch {
    /// Ready once the drain deadline has passed; the shutdown token then records the cut-off.
    pub(super) fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.deadline.is_none() {
            let Ok(shutdown) = DRAINING.try_with(Shutdown::clone) else {
                return Poll::Pending;
            };
            self.deadline = Some(Box::pin(async move {
                let deadline = shutdown.requested().await;
                tokio::time::sleep_until(deadline).await;
                shutdown.record_cut_off();
            }));
        }
        match &mut self.deadline {
            Some(deadline) => deadline.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}
