//! Graceful shutdown: the signals that start it, and the token that tells every listener of a
//! process to stop accepting and drain by one deadline.
//!
//! Go kit leaves shutdown to `net/http`, and its examples simply die on a signal, cutting off
//! requests in flight. A service built on kit-core may listen on several ports at once (HTTP,
//! gRPC, a debug port), each served by its own transport. One [`Trigger`] tells them all, through
//! their [`Shutdown`] tokens, to stop accepting and to finish what they are doing by the same
//! deadline; each transport's `serve` function (such as `transport::http::serve`) reports
//! whether it managed, as an [`Outcome`].
//!
//! This module decides nothing about the process: it neither prints nor exits. What a second
//! signal means (stop at once, usually) is for the program to decide; kit-core's program runner,
//! `run::Program`, decides it for the services of this workspace.
//!
//! ```
//! use std::time::Duration;
//! use kit_core::shutdown;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (trigger, shutdown) = shutdown::channel();
//! let server = tokio::spawn({
//!     let shutdown = shutdown.clone();
//!     async move {
//!         // A server accepts until this resolves, then drains until the deadline it gives.
//!         let _deadline = shutdown.requested().await;
//!     }
//! });
//! trigger.drain(Duration::from_secs(10));
//! server.await.unwrap();
//! assert!(shutdown.is_requested());
//! # }
//! ```

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Classify, ErrorKind};

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every request in flight was answered.
    Drained,
    /// The drain deadline passed with requests still in flight; they were cut off (answered
    /// with [`CutOff`] where the transport could still answer).
    DeadlineExceeded,
}

/// A request was still being handled when the drain deadline passed, and was answered without
/// finishing: over HTTP, a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the service is shutting down and could not finish this request in time")]
pub struct CutOff;

impl Classify for CutOff {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

/// Starts the drain of every server holding one of its [`Shutdown`] tokens.
#[derive(Debug)]
pub struct Trigger {
    sender: watch::Sender<Option<Instant>>,
    flags: Arc<Flags>,
}

/// What a server watches to know when to stop accepting and by when to have drained.
///
/// Cheap to clone; all clones see the same trigger.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<Option<Instant>>,
    flags: Arc<Flags>,
}

/// What a trigger and its tokens share beside the deadline.
#[derive(Debug, Default)]
struct Flags {
    /// Set when the drain starts, before its deadline is sent: asked on every answer and every
    /// time a connection is polled, so read without the deadline's lock.
    requested: AtomicBool,
    /// Set once any request of any server of this trigger is cut off at the deadline: a
    /// transport's count of unfinished connections can reach zero by the time it looks (the
    /// 503s have left), so the requests themselves say so.
    cut_off: AtomicBool,
}

/// A trigger and the token its servers watch.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(None);
    let flags = Arc::new(Flags::default());
    (
        Trigger {
            sender,
            flags: flags.clone(),
        },
        Shutdown { receiver, flags },
    )
}

impl Trigger {
    /// Asks every server to stop accepting and to finish its requests within `within`. Only the
    /// first call counts: a drain already under way keeps its deadline.
    pub fn drain(&self, within: Duration) {
        let deadline = Instant::now()
            .checked_add(within)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        self.sender.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                // Under the deadline's lock: whoever sees the flag and then asks for the
                // deadline waits for it.
                self.flags.requested.store(true, Ordering::Release);
                *current = Some(deadline);
            }
            first
        });
    }

    /// Another token for this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
            flags: self.flags.clone(),
        }
    }
}

impl Shutdown {
    /// Resolves when the drain starts, with its deadline. Never resolves if the trigger is
    /// dropped without firing.
    pub fn requested(&self) -> impl Future<Output = Instant> + Send + 'static + use<> {
        let mut receiver = self.receiver.clone();
        async move {
            let deadline = match receiver.wait_for(Option::is_some).await {
                Ok(deadline) => *deadline,
                Err(_) => None,
            };
            match deadline {
                Some(deadline) => deadline,
                None => std::future::pending().await,
            }
        }
    }

    /// Whether the drain has started.
    pub fn is_requested(&self) -> bool {
        self.flags.requested.load(Ordering::Acquire)
    }

    /// The drain's deadline, once it has started.
    pub fn deadline(&self) -> Option<Instant> {
        *self.receiver.borrow()
    }

    /// Records that a request was cut off at the drain deadline; every token of this trigger
    /// then reports it in [`cut_off`](Self::cut_off).
    pub fn record_cut_off(&self) {
        self.flags.cut_off.store(true, Ordering::Release);
    }

    /// Whether any request was cut off at the drain deadline.
    pub fn cut_off(&self) -> bool {
        self.flags.cut_off.load(Ordering::Acquire)
    }

    /// `outcome`, unless a request was cut off: then [`Outcome::DeadlineExceeded`], however
    /// quickly its connection closed afterwards.
    pub fn outcome(&self, outcome: Outcome) -> Outcome {
        if self.cut_off() {
            Outcome::DeadlineExceeded
        } else {
            outcome
        }
    }
}

/// The process's shutdown signals: SIGINT (Ctrl-C) and SIGTERM.
///
/// The handlers are installed when this is created, so a signal that arrives before anything
/// awaits [`recv`](Self::recv) is kept rather than killing the process: create it before binding,
/// so that once clients can connect, a signal finds its handler.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_token_sees_the_first_drain_and_its_deadline() {
        let (trigger, first) = channel();
        let second = trigger.subscribe();
        assert!(!first.is_requested());
        let waiting = tokio::spawn(second.requested());
        tokio::task::yield_now().await;
        let start = Instant::now();
        trigger.drain(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(1)).await;
        trigger.drain(Duration::from_secs(1));
        assert_eq!(
            waiting.await.expect("join"),
            start + Duration::from_secs(10)
        );
        assert_eq!(first.deadline(), Some(start + Duration::from_secs(10)));
        // A token taken after the drain started resolves at once.
        assert_eq!(
            trigger.subscribe().requested().await,
            start + Duration::from_secs(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_dropped_unfired_never_requests_a_drain() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        let waited = tokio::time::timeout(Duration::from_secs(3600), shutdown.requested()).await;
        assert!(waited.is_err());
    }

    /// A server whose connections all closed by the time it looked still reports a request
    /// cut off by another token of the same trigger.
    #[test]
    fn a_cut_off_request_is_seen_by_every_token() {
        let (trigger, first) = channel();
        let second = trigger.subscribe();
        assert_eq!(second.outcome(Outcome::Drained), Outcome::Drained);
        first.record_cut_off();
        assert!(second.cut_off());
        assert_eq!(second.outcome(Outcome::Drained), Outcome::DeadlineExceeded);
        assert_eq!(
            trigger.subscribe().outcome(Outcome::Drained),
            Outcome::DeadlineExceeded
        );
    }
}
