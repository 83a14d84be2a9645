//! The header read timeout: how long a connection may go without a request to handle before
//! the next request's head has arrived whole.
//!
//! Each request on a connection must send its head (request line and headers) within
//! [`HEADER_READ_TIMEOUT`](super::HEADER_READ_TIMEOUT) of the moment the connection is free for
//! it: when it was accepted, or when the previous answer was written out, its body whole and
//! hyper's write buffer flushed to the socket. A client that connects and then trickles bytes, or
//! leaves a keep-alive connection idle, is disconnected; one that reads a large answer slowly is
//! not.
//!
//! hyper can enforce this itself, with a timer of its own per request: on every request of a
//! keep-alive connection it boxes a Tokio `Sleep`, inserts it into the runtime's timer wheel,
//! polls it, takes it out again once the head has arrived, and runs its read loop a second time
//! to start the next one. That cost stringsvc1 about 1 600 of its 22 500 instructions a request
//! (callgrind, one worker). Here a request costs a clock read when its answer is written out
//! ([`Activity::flushed`]), and each connection keeps one alarm, set once per timeout at most:
//! when it rings, the connection is closed if it has been free that long, and otherwise the alarm
//! is set again for the new deadline. The connection is polled as before; the alarm only when it
//! has rung.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// No request is being handled.
const FREE: u8 = 0;
/// A request's head has arrived; its answer is not yet handed to hyper whole.
const BUSY: u8 = 1;
/// hyper has the whole answer, and is writing it out.
const ANSWERED: u8 = 2;

/// What one connection is doing, as its requests and its socket tell it: whether a request is
/// being handled, and since when the connection has been free for the next.
#[derive(Debug)]
pub(super) struct Activity {
    accepted: Instant,
    state: AtomicU8,
    /// When the connection was last free for a request, in nanoseconds after `accepted`.
    free_since: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Self {
        Activity {
            accepted: Instant::now(),
            state: AtomicU8::new(FREE),
            free_since: AtomicU64::new(0),
        }
    }

    /// Whether a request is being handled: its head has arrived and its answer is not written
    /// out yet.
    pub(super) fn is_busy(&self) -> bool {
        self.state.load(Ordering::Acquire) != FREE
    }

    /// A request's head has arrived.
    pub(super) fn begin(&self) {
        self.state.store(BUSY, Ordering::Release);
    }

    /// hyper has taken a request's whole answer (or the request was dropped); the connection
    /// is free once hyper has flushed what it holds.
    pub(super) fn answered(&self) {
        self.state.store(ANSWERED, Ordering::Release);
    }

    /// hyper's write buffer is flushed to the socket: if that was an answer's end, the
    /// connection is free for the next request, from now.
    fn flushed(&self) {
        if self.state.load(Ordering::Acquire) == ANSWERED {
            let since = u64::try_from(self.accepted.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.free_since.store(since, Ordering::Release);
            self.state.store(FREE, Ordering::Release);
        }
    }

    /// When the connection was last free for a request: when it was accepted, or when its
    /// last answer was written out.
    pub(super) fn free_since(&self) -> Instant {
        self.accepted + Duration::from_nanos(self.free_since.load(Ordering::Acquire))
    }

    /// When the connection is to be closed if no request's head has arrived by then.
    fn deadline(&self, timeout: Duration, now: Instant) -> Instant {
        if self.is_busy() {
            // The head has arrived; the deadline moves on when the answer is done.
            now + timeout
        } else {
            self.free_since() + timeout
        }
    }
}

/// A connection's socket as hyper sees it, telling the connection's [`Activity`] when hyper
/// has flushed its writes: hyper flushes the socket only once its write buffer is empty, so
/// the first flush after an answer was handed over is that answer's end on the wire.
pub(super) struct Flushes<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T> Flushes<T> {
    pub(super) fn new(io: T, activity: Arc<Activity>) -> Self {
        Flushes { io, activity }
    }
}

impl<T: Read + Unpin> Read for Flushes<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for Flushes<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.activity.flushed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

pin_project! {
    /// A connection, closed (dropped) when it has been free for `timeout` without a request's
    /// head arriving. Resolves to `None` when that happened.
    pub(super) struct HeadTimeout<F> {
        #[pin]
        connection: F,
        #[pin]
        alarm: Sleep,
        activity: Arc<Activity>,
        timeout: Duration,
        bell: Arc<Bell>,
        bell_waker: Waker,
        armed: bool,
    }
}

impl<F> HeadTimeout<F> {
    pub(super) fn new(connection: F, activity: Arc<Activity>, timeout: Duration) -> Self {
        let bell = Arc::new(Bell::default());
        HeadTimeout {
            connection,
            alarm: tokio::time::sleep_until(activity.accepted + timeout),
            activity,
            timeout,
            bell_waker: Waker::from(bell.clone()),
            bell,
            armed: false,
        }
    }
}

impl<F: Future> Future for HeadTimeout<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(done) = this.connection.poll(cx) {
            return Poll::Ready(Some(done));
        }
        // Polled at every wake-up of the connection: one load, unless the alarm rang.
        if *this.armed && !this.bell.rang.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        this.bell.rang.store(false, Ordering::Release);
        this.bell.listen(cx.waker());
        loop {
            if *this.armed {
                let now = Instant::now();
                let deadline = this.activity.deadline(*this.timeout, now);
                if deadline <= now {
                    return Poll::Ready(None);
                }
                if deadline != this.alarm.deadline() {
                    this.alarm.as_mut().reset(deadline);
                }
            }
            *this.armed = true;
            // Polled with the bell's waker, so that a wake-up tells whether the alarm rang.
            let mut bell = Context::from_waker(this.bell_waker);
            if this.alarm.as_mut().poll(&mut bell).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// The alarm's waker: notes that it rang, then wakes the connection's task.
#[derive(Default)]
struct Bell {
    rang: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Bell {
    fn listen(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if !task.as_ref().is_some_and(|task| task.will_wake(waker)) {
            *task = Some(waker.clone());
        }
    }
}

impl Wake for Bell {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::pending;

    const TIMEOUT: Duration = Duration::from_secs(30);
    const SECOND: Duration = Duration::from_secs(1);

    /// A connection that never finishes by itself, watched with `activity`.
    fn watched(activity: &Arc<Activity>) -> tokio::task::JoinHandle<Option<()>> {
        tokio::spawn(HeadTimeout::new(pending::<()>(), activity.clone(), TIMEOUT))
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_head_is_closed_when_the_timeout_has_passed() {
        let activity = Arc::new(Activity::new());
        let accepted = Instant::now();
        assert_eq!(watched(&activity).await.expect("join"), None);
        assert_eq!(accepted.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_handling_a_request_is_not_closed() {
        let activity = Arc::new(Activity::new());
        let accepted = Instant::now();
        let connection = watched(&activity);
        tokio::time::sleep(5 * SECOND).await;
        activity.begin();
        // The request takes three timeouts; its connection stays.
        tokio::time::sleep(3 * TIMEOUT).await;
        assert!(!connection.is_finished());
        activity.answered();
        activity.flushed();
        let answered = Instant::now();
        assert_eq!(connection.await.expect("join"), None);
        assert_eq!(answered.elapsed(), TIMEOUT);
        assert_eq!(accepted.elapsed(), 5 * SECOND + 4 * TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_gives_the_next_head_the_whole_timeout() {
        let activity = Arc::new(Activity::new());
        let connection = watched(&activity);
        // A request every 20 seconds for five minutes: never 30 seconds free.
        for _ in 0..15 {
            tokio::time::sleep(20 * SECOND).await;
            assert!(!connection.is_finished());
            activity.begin();
            tokio::time::sleep(SECOND).await;
            activity.answered();
            activity.flushed();
        }
        let last = Instant::now();
        assert_eq!(connection.await.expect("join"), None);
        assert_eq!(last.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_finishes_is_not_cut_off() {
        let activity = Arc::new(Activity::new());
        let done = HeadTimeout::new(tokio::time::sleep(10 * SECOND), activity.clone(), TIMEOUT);
        assert_eq!(done.await, Some(()));
    }
}
