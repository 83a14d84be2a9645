//! The request context: a deadline and request-scoped values, from the server that received a
//! request to everything that works on it, and on to the services it calls.
//!
//! Go kit threads a `context.Context` through every endpoint, middleware and service method:
//! it carries the request's deadline and cancellation, and values that transports and
//! middlewares put there (an authenticated principal, a trace, a request id). kit-core's
//! [`Context`] carries the same things, but it is not a parameter: a transport's server makes
//! one for each request and runs the request's whole handling [in its scope](Context::scope),
//! and anything that runs as part of that handling reads it with [`Context::current`]. A client
//! endpoint that calls another service reads it too, and sends the deadline (what is left of it)
//! and the request id on with the call, so a deadline set by the first caller bounds every hop.
//!
//! ```
//! use std::time::Duration;
//! use kit_core::context::{Context, RequestId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let ctx = Context::new()
//!     .with_timeout(Duration::from_secs(2))
//!     .with_value(RequestId::new("42").unwrap());
//! ctx.scope(async {
//!     // Deep inside the request: a middleware, the service, a client endpoint.
//!     let ctx = Context::current();
//!     assert_eq!(ctx.get::<RequestId>().map(RequestId::as_str), Some("42"));
//!     assert!(ctx.remaining().unwrap() <= Duration::from_secs(2));
//! })
//! .await;
//! assert!(Context::current().deadline().is_none(), "nothing outside the scope");
//! # }
//! ```
//!
//! # Why a task-local, and not a parameter or an envelope
//!
//! A context can reach the service in three ways: as a parameter of every method (Go's way), in
//! an envelope around every request (`Request<T>` with extensions, tonic's and hyper's way), or
//! as a value scoped to the task that handles the request (tracing's spans, OpenTelemetry's
//! context). kit-core takes the third:
//!
//! - Endpoints stay typed by what they carry: an `Endpoint<UppercaseRequest, UppercaseResponse>`
//!   is still that, and a service trait needs no context parameter it would only pass along.
//! - Every middleware already written as a tower layer (timeouts, breakers, retries) passes the
//!   context through without knowing about it, because it runs on the same task.
//! - A transport's before-hook, an endpoint middleware, the service and a client endpoint all
//!   see the same values, which is what Go kit's context is for.
//!
//! The price is the one tokio's task-locals always have: work moved to another task
//! (`tokio::spawn`) does not inherit the context. Carry it over explicitly with
//! [`Context::scope`]: `tokio::spawn(Context::current().scope(work))`.
//!
//! # Cancellation
//!
//! Cancelling in Rust is dropping: when the client disconnects or the deadline passes, the
//! server drops the future that handles the request, and everything that future was awaiting
//! (middlewares, the service, calls to other services) stops at its next `.await`. A call to
//! another service stops with it, which closes that connection, so the cancellation travels on
//! to the next hop too. There is no `Done` channel to check.
//!
//! # Deadlines
//!
//! A context's deadline is a point in time ([`tokio::time::Instant`], so tests can pause the
//! clock). It only ever gets earlier: [`Context::with_deadline`] keeps the sooner of the two, as
//! Go's `context.WithDeadline` does. Servers fail a request whose deadline passes with
//! [`DeadlineExceeded`], and a client endpoint refuses to start a call with no time left.
//!
//! A middleware that gives up on a call after a while should say so to the call, so that the
//! service it calls knows how long it will be waited for: [`DeadlineLayer`] is tower's timeout
//! that does, by running the call in a context with the shorter deadline (as Go's
//! `context.WithTimeout` around a call does). `lb::retry` does the same for its attempts.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Extensions;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;

use crate::error::{Classify, ErrorKind};

mod deadline;
pub mod trace;

pub use deadline::{Deadline, DeadlineFuture, DeadlineLayer};
pub use trace::TraceParent;

tokio::task_local! {
    static CURRENT: Context;
}

/// A request's deadline and request-scoped values (see the [module docs](crate::context)).
///
/// Cheap to clone, and immutable: the `with_*` methods return a new context. A context with
/// no values, [`Context::new`] or one with only a deadline, costs no allocation: the deadline,
/// set at every hop of a call that has one (the server, a retry, each attempt), is kept
/// beside the values, not behind their shared pointer.
#[derive(Clone, Default)]
pub struct Context {
    deadline: Option<Instant>,
    values: Option<Arc<Extensions>>,
}

impl Context {
    /// An empty context: no deadline, no values (Go's `context.Background()`).
    pub fn new() -> Self {
        Context::default()
    }

    /// The context of the request being handled on this task, or an empty one outside any
    /// request.
    pub fn current() -> Self {
        CURRENT.try_with(Context::clone).unwrap_or_default()
    }

    /// Runs `f` on the context of the request being handled on this task (an empty one outside
    /// any request), without cloning it: for code on every request's path, such as log lines.
    pub fn with_current<R>(f: impl FnOnce(&Context) -> R) -> R {
        if CURRENT.try_with(|_| ()).is_ok() {
            CURRENT.with(f)
        } else {
            f(&Context::new())
        }
    }

    /// Runs `future` with this context as the [current](Context::current) one.
    pub fn scope<F: Future>(self, future: F) -> TaskLocalFuture<Context, F> {
        CURRENT.scope(self, future)
    }

    /// Runs `f` with this context as the [current](Context::current) one: for the
    /// synchronous part of a call, such as a tower service's `call`.
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    /// When the request must be answered by, if anyone said.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long is left until the deadline (zero once it has passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline()
            .is_some_and(|deadline| deadline <= Instant::now())
    }

    /// This context with `deadline`, or with its own deadline if that is sooner.
    pub fn with_deadline(self, deadline: Instant) -> Self {
        match self.deadline() {
            Some(current) if current <= deadline => self,
            _ => Context {
                deadline: Some(deadline),
                ..self
            },
        }
    }

    /// This context with a deadline `timeout` from now, or with its own if that is sooner.
    /// A timeout too long to represent sets none.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.with_deadline(deadline),
            None => self,
        }
    }

    /// The value of type `T` in this context, if one was put there.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.as_ref().and_then(|values| values.get())
    }

    /// This context with `value`, replacing any earlier value of the same type.
    pub fn with_value<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.update(|values| {
            values.insert(value);
        })
    }

    /// This context with every value of `values` added: how a transport hands over what its
    /// hooks put in a request's extensions.
    pub fn with_values(self, values: Extensions) -> Self {
        if values.is_empty() {
            return self;
        }
        self.update(|current| current.extend(values))
    }

    fn update(self, change: impl FnOnce(&mut Extensions)) -> Self {
        let mut values = self.values.map(Arc::unwrap_or_clone).unwrap_or_default();
        change(&mut values);
        Context {
            deadline: self.deadline,
            values: Some(Arc::new(values)),
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("remaining", &self.remaining())
            .field("request_id", &self.get::<RequestId>())
            .finish_non_exhaustive()
    }
}

/// A request ended because its deadline passed (Go's `context.DeadlineExceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

impl Classify for DeadlineExceeded {
    fn kind(&self) -> ErrorKind {
        ErrorKind::DeadlineExceeded
    }
}

/// An identifier the first caller gave a request, passed on to every service it reaches so that
/// their logs can be matched up (the `X-Request-Id` header over HTTP).
///
/// It is the caller's text, limited to what is safe to copy into logs and headers: at most
/// [`RequestId::MAX_LEN`] visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The longest request id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// `id` as a request id, or `None` if it is empty, longer than [`MAX_LEN`](Self::MAX_LEN)
    /// or holds anything but visible ASCII characters.
    pub fn new(id: &str) -> Option<Self> {
        let acceptable =
            !id.is_empty() && id.len() <= Self::MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic());
        acceptable.then(|| RequestId(Arc::from(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_only_get_earlier() {
        let ctx = Context::new().with_timeout(Duration::from_secs(2));
        let sooner = ctx.clone().with_timeout(Duration::from_secs(1));
        assert_eq!(sooner.remaining(), Some(Duration::from_secs(1)));
        let later = sooner.clone().with_timeout(Duration::from_secs(5));
        assert_eq!(later.remaining(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(later.is_expired());
        assert!(!ctx.is_expired());
        assert_eq!(later.remaining(), Some(Duration::ZERO));
        assert_eq!(Context::new().remaining(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_and_values_are_kept_through_each_others_changes() {
        #[derive(Debug, Clone, PartialEq)]
        struct Principal(&'static str);

        let ctx = Context::new()
            .with_value(Principal("alice"))
            .with_timeout(Duration::from_secs(2));
        assert_eq!(ctx.get::<Principal>(), Some(&Principal("alice")));
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
        let sooner = ctx.clone().with_timeout(Duration::from_secs(1));
        let relabelled = sooner.clone().with_value(Principal("bob"));
        assert_eq!(sooner.get::<Principal>(), Some(&Principal("alice")));
        assert_eq!(relabelled.get::<Principal>(), Some(&Principal("bob")));
        assert_eq!(relabelled.remaining(), Some(Duration::from_secs(1)));
        // The earlier contexts are unchanged.
        assert_eq!(ctx.get::<Principal>(), Some(&Principal("alice")));
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
        assert_eq!(Context::new().get::<Principal>(), None);
    }

    #[tokio::test]
    async fn values_are_scoped_to_the_task_that_runs_them() {
        #[derive(Debug, Clone, PartialEq)]
        struct Principal(&'static str);

        let ctx = Context::new().with_value(Principal("alice"));
        let seen = ctx
            .clone()
            .scope(async {
                tokio::task::yield_now().await;
                let inner = Context::current();
                let spawned =
                    tokio::spawn(async { Context::current().get::<Principal>().cloned() });
                let carried = tokio::spawn(
                    Context::current()
                        .scope(async { Context::current().get::<Principal>().cloned() }),
                );
                (
                    inner.get::<Principal>().cloned(),
                    spawned.await.expect("join"),
                    carried.await.expect("join"),
                )
            })
            .await;
        assert_eq!(
            seen,
            (Some(Principal("alice")), None, Some(Principal("alice")))
        );
        assert!(Context::current().get::<Principal>().is_none());
        // The original context is untouched by later additions.
        let more = ctx.clone().with_value(7u32);
        assert_eq!(more.get::<u32>(), Some(&7));
        assert_eq!(ctx.get::<u32>(), None);
    }

    #[test]
    fn request_ids_are_what_is_safe_to_log() {
        assert_eq!(
            RequestId::new("a-1_b.c").map(|id| id.to_string()),
            Some("a-1_b.c".into())
        );
        assert!(RequestId::new("").is_none());
        assert!(RequestId::new("two words").is_none());
        assert!(RequestId::new("line\nbreak").is_none());
        assert!(RequestId::new("é").is_none());
        assert!(RequestId::new(&"x".repeat(RequestId::MAX_LEN)).is_some());
        assert!(RequestId::new(&"x".repeat(RequestId::MAX_LEN + 1)).is_none());
    }
}
