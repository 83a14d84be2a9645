//! What a request learns of its server's drain: the accept loop runs each connection with the
//! server's [`Shutdown`] token at hand, and the [`Server`](super::Server) cuts a request off
//! with a 503 when the drain deadline passes before it is done, rather than leave its client to
//! a connection that is simply closed.
//!
//! The deadline is watched once per connection, not once per request: an HTTP/1 connection's
//! requests are polled by the connection's own task, so the timer the connection sets when the
//! drain starts wakes whatever request is still running on it. Before the drain, a request
//! that has to wait (as every proxied call does) costs one flag read here, where registering
//! each with the shutdown token and dropping it again cost about 900 instructions.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Sleep;

use crate::shutdown::Shutdown;

tokio::task_local! {
    static DRAINING: Drain;
}

/// A connection's view of the drain, shared with the requests it serves.
pub(super) struct Drain {
    shutdown: Shutdown,
    /// Set by the connection when the drain deadline passes.
    passed: Cell<bool>,
}

/// Runs a connection with `shutdown` at hand for the requests it serves.
pub(super) fn scope<F: Future>(
    shutdown: Shutdown,
    connection: F,
) -> TaskLocalFuture<Drain, Watched<F>> {
    let drain = Drain {
        shutdown: shutdown.clone(),
        passed: Cell::new(false),
    };
    DRAINING.scope(
        drain,
        Watched {
            connection,
            shutdown,
            deadline: None,
        },
    )
}

pin_project! {
    /// A connection that, once the drain has started, also waits for its deadline, and then
    /// tells its requests before polling them.
    pub(super) struct Watched<F> {
        #[pin]
        connection: F,
        shutdown: Shutdown,
        #[pin]
        deadline: Option<Sleep>,
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // The drain's start wakes every connection (the graceful shutdown tells each to finish),
        // so the timer is set at the first poll after it.
        if this.deadline.is_none()
            && this.shutdown.is_requested()
            && let Some(deadline) = this.shutdown.deadline()
        {
            this.deadline.set(Some(tokio::time::sleep_until(deadline)));
        }
        if let Some(deadline) = this.deadline.as_pin_mut()
            && deadline.poll(cx).is_ready()
        {
            let _ = DRAINING.try_with(|drain| drain.passed.set(true));
        }
        this.connection.poll(cx)
    }
}

/// Whether the drain deadline of the connection this request came on has passed; when it has,
/// the request is about to be cut off, and the shutdown token hears of it. Outside a kit-core
/// accept loop there is no drain to watch, and the deadline never passes.
///
/// Asked only of a request that has had to wait: one that finishes in its first poll, as most
/// do, never asks.
pub(super) fn passed() -> bool {
    DRAINING
        .try_with(|drain| {
            let passed = drain.passed.get();
            if passed {
                drain.shutdown.record_cut_off();
            }
            passed
        })
        .unwrap_or(false)
}
