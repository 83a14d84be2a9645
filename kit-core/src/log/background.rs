//! Writing log lines from a background thread, in batches.
//!
//! A request's log line must not wait for stderr (a terminal scrolling, a pipe nobody reads),
//! so the thread that logs only appends the line to a buffer in memory, and a thread of its own
//! writes the buffer out. What this costs a service depends on how often that thread wakes:
//! waking it for every line, as a channel to a writer thread does, costs a switch between
//! threads and a `write` a line when requests come one at a time. Here the writer, woken by
//! the first line after a quiet spell, waits [`LINGER`] for more to gather and writes them with
//! one `write`: at a few thousand lines a second, a wake-up and a system call carry tens of
//! lines instead of one. A line is out at most [`LINGER`] after it was logged, and at once when
//! the logger's guard is dropped.
//!
//! The buffer holds at most a set number of lines; when the writer cannot keep up (stderr
//! blocked), further lines are dropped and counted rather than held in memory or waited for.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather after the first one before writing them: short
/// enough that a person watching the log sees nothing of it, long enough that a service logging
/// thousands of lines a second writes them tens at a time.
pub const LINGER: Duration = Duration::from_millis(10);

/// How long dropping the guard waits for the lines still buffered to be written: a stderr that
/// is blocked must not keep a service from exiting.
pub(super) const FLUSH_PATIENCE: Duration = Duration::from_secs(1);

/// The most bytes of buffer the writer keeps between batches; a burst's larger buffer is given
/// back once written.
const KEEP_BYTES: usize = 64 * 1024;

struct State {
    /// Lines logged and not yet taken by the writer.
    pending: Vec<u8>,
    /// How many lines `pending` holds.
    lines: usize,
    /// The writer sleeps until a line comes: the next line wakes it.
    idle: bool,
    /// The writer lets lines gather: only a buffer half full wakes it before its time.
    lingering: bool,
    /// The guard was dropped: write what is left and stop.
    closed: bool,
    /// The writer has written what was left and stopped.
    finished: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer: the first line after a quiet spell, a buffer half full, the guard
    /// dropped.
    wake: Condvar,
    /// Tells the dropped guard that the writer has finished.
    done: Condvar,
    /// The most lines `pending` may hold.
    limit: usize,
    dropped: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        // Once the writer has stopped, nobody would ever write the line: holding it would only
        // keep memory until the process ends.
        if state.lines >= self.limit || state.finished {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        state.pending.extend_from_slice(line);
        state.lines += 1;
        // The first line wakes an idle writer; half the limit wakes one lingering, so that a
        // burst is written before it fills the buffer. Any other line simply waits for the
        // batch it is part of.
        let wake =
            (state.idle && state.lines == 1) || (state.lingering && state.lines == self.limit / 2);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// Starts the writer thread, writing to `out`, with room for `limit` lines (at least one).
/// Returns what loggers write lines to, and the guard that keeps the writer going.
pub(super) fn start<W>(out: W, limit: usize) -> io::Result<(Lines, Writer)>
where
    W: io::Write + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            pending: Vec::new(),
            lines: 0,
            idle: false,
            lingering: false,
            closed: false,
            finished: false,
        }),
        wake: Condvar::new(),
        done: Condvar::new(),
        limit: limit.max(1),
        dropped: AtomicUsize::new(0),
    });
    let writer = shared.clone();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(&writer, out))?;
    Ok((Lines(shared.clone()), Writer { shared }))
}

/// The writer thread: waits for lines, lets more gather, writes them, until the guard is
/// dropped and nothing is left.
///
/// While lines keep coming, the writer wakes only by its own clock, every [`LINGER`]: waking it
/// from the thread that logs would cost that thread a system call, and the writer, having slept,
/// would take the CPU from it at once. Only when a whole [`LINGER`] has passed without a line
/// does it go idle, for the next line to wake it.
fn write_lines<W: io::Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    let mut busy = false;
    loop {
        let mut state = shared.lock();
        if !busy {
            while state.pending.is_empty() && !state.closed {
                state.idle = true;
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.idle = false;
            }
        }
        let deadline = Instant::now() + LINGER;
        while !state.closed && state.lines < shared.limit / 2 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state.lingering = true;
            state = shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.lingering = false;
        }
        if state.pending.is_empty() {
            if state.closed {
                break;
            }
            busy = false;
            continue;
        }
        std::mem::swap(&mut state.pending, &mut batch);
        state.lines = 0;
        drop(state);
        // Nothing can be done about a failing stderr: it is where the failure would be told.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        batch.shrink_to(KEEP_BYTES);
        busy = true;
    }
    let mut state = shared.lock();
    state.finished = true;
    drop(state);
    shared.done.notify_all();
}

/// Where loggers write lines: each write is one line, appended to the writer's buffer.
#[derive(Clone)]
pub(super) struct Lines(Arc<Shared>);

/// One line being written, from [`Lines`].
pub(super) struct Line<'a>(&'a Shared);

impl io::Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(&self.0)
    }
}

/// Keeps the writer thread going; dropping it writes what is buffered (waiting at most
/// [`FLUSH_PATIENCE`]) and stops the thread.
pub(super) struct Writer {
    shared: Arc<Shared>,
}

impl Writer {
    /// How many lines were dropped because the buffer was full.
    pub(super) fn dropped_lines(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Writes what is buffered, waiting at most `patience`, and stops the thread; lines logged
    /// once it has stopped are dropped and counted.
    ///
    /// Only the first call waits: a writer that did not finish within its patience (stderr
    /// blocked) is not waited for again when the guard is dropped after it.
    pub(super) fn finish(&self, patience: Duration) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        state.closed = true;
        self.shared.wake.notify_all();
        let deadline = Instant::now() + patience;
        while !state.finished {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .done
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish(FLUSH_PATIENCE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write as _;

    /// A writer that keeps what it is given and counts its writes.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Kept {
        fn contents(&self) -> (String, usize) {
            let kept = self.0.lock().expect("kept lines");
            (String::from_utf8_lossy(&kept.0).into_owned(), kept.1)
        }
    }

    impl io::Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut kept = self.0.lock().expect("kept lines");
            kept.0.extend_from_slice(bytes);
            kept.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log(lines: &Lines, text: &str) {
        lines
            .make_writer()
            .write_all(text.as_bytes())
            .expect("a line");
    }

    #[test]
    fn a_line_is_written_without_waiting_for_the_guard() {
        let kept = Kept::default();
        let (lines, _writer) = start(kept.clone(), 100).expect("writer");
        log(&lines, "one\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while kept.contents().0.is_empty() {
            assert!(Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(kept.contents().0, "one\n");
    }

    #[test]
    fn lines_logged_together_leave_together_in_order() {
        let kept = Kept::default();
        let (lines, writer) = start(kept.clone(), 10_000).expect("writer");
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        for n in 0..1000 {
            log(&lines, &format!("line {n}\n"));
        }
        drop(writer);
        let (written, writes) = kept.contents();
        assert_eq!(written, expected);
        // A write a line is what this module is there to avoid; a thread descheduled for a
        // while in the middle of the loop may split the lines into a few batches.
        assert!(writes < 100, "{writes} writes for 1000 lines");
    }

    #[test]
    fn a_full_buffer_drops_lines_and_counts_them() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (lines, writer) = start(crate::log::tests::Stuck(stuck), 10).expect("writer");
        for _ in 0..1000 {
            log(&lines, "line\n");
        }
        // At most a batch in the writer's hands and a full buffer got through.
        assert!(
            writer.dropped_lines() >= 1000 - 20,
            "{}",
            writer.dropped_lines()
        );
        drop(release);
        drop(writer);
    }

    #[test]
    fn a_blocked_writer_is_waited_for_once() {
        let (release, stuck) = std::sync::mpsc::channel();
        let (lines, writer) = start(crate::log::tests::Stuck(stuck), 10).expect("writer");
        log(&lines, "line\n");
        // The writer takes the line and blocks on it; the guard gives up after its patience...
        writer.finish(Duration::from_millis(20));
        // ...and dropping the writer afterwards does not wait a second time (a full
        // FLUSH_PATIENCE), which would keep a service whose stderr is blocked from exiting.
        let started = Instant::now();
        drop(writer);
        let waited = started.elapsed();
        assert!(waited < FLUSH_PATIENCE / 2, "waited {waited:?} again");
        drop(release);
    }

    #[test]
    fn lines_after_the_writer_stopped_are_dropped() {
        let kept = Kept::default();
        let (lines, writer) = start(kept.clone(), 5).expect("writer");
        log(&lines, "last\n");
        drop(writer);
        for _ in 0..100 {
            log(&lines, "late\n");
        }
        // Nobody writes them any more: they are counted, not kept.
        assert_eq!(kept.contents().0, "last\n");
        assert_eq!(lines.0.lock().lines, 0);
        assert_eq!(lines.0.dropped.load(Ordering::Relaxed), 100);
    }
}
