//! Profiles in a SQLite file that outlives the process and can be shared by several.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kit_core::error::{Error, ErrorKind};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use tokio::sync::oneshot;

use super::Repository;
use crate::service::{Address, Profile, ProfileError};

/// How long a write waits for another process's write to the same file to finish before it
/// fails with `Unavailable` (SQLite's busy timeout).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most reads that run at once, however many CPUs there are (see [`readers`]).
const MOST_READERS: usize = 8;

/// How long a database thread waits for a call before it closes its connection and gives back
/// its thread's cache of freed blocks; the next call opens a connection again, in about 0.1 ms.
/// A busy service keeps both. A connection holds up to 2 MB of the file's pages (the writer's
/// fills as the file grows), its schema and its prepared statements: left idle after a burst
/// of writes, the service held about 1 MiB more when nothing was given back (the load
/// benchmark's POST on SQLite, 2.5 seconds after the load), and still about 0.8 MiB more in
/// most runs when the writer only gave back its page cache (`sqlite3_db_release_memory`)
/// rather than closing. And once every connection of the process is closed, the last one has
/// copied the write-ahead log into the file and removed it: an idle service's file holds
/// every write by itself.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How many reads run at once, each on a thread and a connection of its own, kept for the next
/// reads: one thread is started with the repository, the others when reads queue up, and each
/// opens its connection with its first read (and again after it closed it, idle: see
/// [`IDLE_AFTER`]). More reads wait their turn in a queue (see [`Shared`]).
///
/// Two for each CPU the process may run on, from 2 to [`MOST_READERS`]. A read served from
/// SQLite's cache keeps its CPU busy, so more readers than CPUs only take turns; a second one
/// per CPU runs while another waits on the disk. Each holds a thread and a connection with its
/// caches, about 200 KiB: on one CPU, 64 clients reading as fast as they could were served as
/// fast by two readers as by eight, which held about 1.1 MiB more.
fn readers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cpus| cpus.get())
        .saturating_mul(2)
        .clamp(2, MOST_READERS)
}

// ANCHOR: migrations
/// The schema, one migration per version: version N is reached by running the first N, in
/// order. A migration, once released, is never edited; a change to the schema is a new one at
/// the end.
const MIGRATIONS: &[&str] = &[
    // 1: profiles, and their addresses in order. Go kit lets a profile hold two addresses with
    // the same id (through POST or PUT of a whole profile), so an address is keyed by its
    // position, not its id.
    "CREATE TABLE profiles (
         id   TEXT NOT NULL PRIMARY KEY,
         name TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE addresses (
         profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
         position   INTEGER NOT NULL,
         id         TEXT NOT NULL,
         location   TEXT NOT NULL,
         PRIMARY KEY (profile_id, position)
     ) WITHOUT ROWID;",
];

/// The schema version this program writes and reads.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();
// ANCHOR_END: migrations

// ANCHOR: sqlite
/// Profiles in a SQLite file.
///
/// - **Durable**: each call is one transaction, committed before the call returns. The file
///   is in WAL mode with `synchronous=NORMAL`: a commit is in the write-ahead log, handed to
///   the operating system, before it is acknowledged, so it survives the process being killed
///   (SIGKILL included); a power cut may lose the last commits, which `synchronous=FULL` would
///   keep at the price of a disk flush per write.
/// - **Shared**: several processes may open the same file. Readers never wait for writers; a
///   write waits up to 5 seconds in all, for the writes queued before it and for another
///   process's write (SQLite's busy timeout), then fails as `Unavailable` (503), which a client
///   may retry.
/// - **Off the runtime**: SQLite's calls block, so none runs on the threads that serve
///   requests: writes run one after another on a thread of their own, reads on a few threads of
///   their own (two a CPU, at most eight). A call waiting for its turn holds no thread.
///
/// The schema is created, or migrated to [`SCHEMA_VERSION`], when the file is opened; a file
/// written by a newer version of the program is refused rather than misread.
///
/// Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct SqliteRepository {
    shared: Arc<Shared>,
}

/// What the clones share: the threads that own the file's connections.
///
/// A call takes a thread only while SQLite works for it; calls wait for their turn in a queue.
/// Writes queue for the one thread that writes, which runs them back to back; reads for at most
/// [`readers`] threads. When every call took one of Tokio's blocking threads first, writes
/// queued for the writer on threads of their own (100 writes behind another process's lock:
/// 99 threads more), and 64 clients reading as fast as they could, each read on a thread and on
/// a connection opened whenever none was idle, left the process with 516 threads and 39 MiB
/// resident; reads that waited for one of eight permits before they took a blocking thread
/// still left 25 (Tokio starts a blocking thread for a task that arrives before the last
/// thread to finish has gone back to waiting).
struct Shared {
    /// The threads that read. Declared before the writer, so they close their connections
    /// first and the writer's is the last to close (see [`Threads`]'s `Drop`).
    readers: Threads,
    /// The thread that owns the one connection that writes: a process's writes take turns
    /// there, so they never contend with each other for SQLite's write lock, only with other
    /// processes'.
    writer: Threads,
}

/// Threads that each own a connection to the file and run the calls queued for them, one at a
/// time: one started with them, then one more whenever more calls are queued than threads wait
/// for them, up to `most`; all kept until the repository is dropped.
struct Threads {
    /// The threads' name, as `ps` and debuggers show it.
    name: &'static str,
    /// The file, one copy shared by the readers, the writer and their threads.
    path: Arc<Path>,
    most: usize,
    /// `None` once the repository is being dropped.
    queue: Option<crossbeam_channel::Sender<Call>>,
    /// Kept to hand to the threads started later.
    calls: crossbeam_channel::Receiver<Call>,
    /// How many threads are waiting for a call.
    waiting: Arc<AtomicUsize>,
    /// How many threads have been started, read without taking `started`'s lock.
    count: AtomicUsize,
    started: Mutex<Vec<JoinHandle<()>>>,
}

/// Database work for one of the threads, given its connection, or why it could not open one.
type Call = Box<dyn FnOnce(rusqlite::Result<&mut Connection>) + Send>;
// ANCHOR_END: sqlite

/// Why a SQLite file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {path}: {reason}")]
pub struct OpenError {
    path: PathBuf,
    reason: String,
}

impl SqliteRepository {
    /// Opens, or creates, the database at `path` and brings its schema up to date.
    ///
    /// Blocks while it does: call it before serving, or from a blocking thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let failed = |reason: String| OpenError {
            path: path.clone(),
            reason,
        };
        let mut writer = connect(&path).map_err(|e| failed(e.to_string()))?;
        // WAL is a property of the file: set once, every later connection uses it.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| failed(e.to_string()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(failed(format!(
                "the file cannot use write-ahead logging (journal mode {mode})"
            )));
        }
        migrate(&mut writer).map_err(failed)?;
        let shared: Arc<Path> = path.as_path().into();
        let writer = Threads::start("sqlite-writer", shared.clone(), 1, Some(writer))
            .map_err(|e| failed(format!("cannot start its writer thread: {e}")))?;
        let readers = Threads::start("sqlite-reader", shared, readers(), None)
            .map_err(|e| failed(format!("cannot start its reader thread: {e}")))?;
        Ok(SqliteRepository {
            shared: Arc::new(Shared { readers, writer }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.shared.writer.path
    }

    /// Runs `f` in a write transaction, on the writer thread, and commits if it succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T, ProfileError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ProfileError> + Send + 'static,
    {
        let queued = Instant::now();
        transact(
            &self.shared.writer,
            "write",
            move |conn| {
                // The wait in the queue counts against the busy timeout: a write is answered
                // within it, however many were queued before it. With no time left it is still
                // made if the lock is free, and is refused at once (busy) if not.
                conn.busy_timeout(BUSY_TIMEOUT.saturating_sub(queued.elapsed()))?;
                // IMMEDIATE takes the write lock now, so a read-modify-write cannot be overtaken
                // by another process between its read and its write.
                conn.transaction_with_behavior(TransactionBehavior::Immediate)
            },
            f,
        )
        .await
    }

    /// Runs `f` in a read transaction, on a reader thread: one transaction, so that a profile
    /// and its addresses are read as of one moment.
    async fn read<T, F>(&self, f: F) -> Result<T, ProfileError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ProfileError> + Send + 'static,
    {
        transact(&self.shared.readers, "read", Connection::transaction, f).await
    }
}

/// Queues `f` for one of `threads`, to run in the transaction `begin` opens on the thread's
/// connection and to commit if it succeeds, and waits for its answer. A call whose caller has
/// gone (its request was cancelled) is not made: nobody waits for a read, and a write that was
/// never acknowledged need not be made.
async fn transact<T, B, F>(
    threads: &Threads,
    what: &'static str,
    begin: B,
    f: F,
) -> Result<T, ProfileError>
where
    T: Send + 'static,
    B: for<'c> FnOnce(&'c mut Connection) -> rusqlite::Result<Transaction<'c>> + Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, ProfileError> + Send + 'static,
{
    let (answer, answered) = oneshot::channel();
    threads.send(Box::new(move |conn| {
        if answer.is_closed() {
            return;
        }
        let result = conn.and_then(begin).map_err(backend).and_then(|tx| {
            let value = f(&tx)?;
            tx.commit().map_err(backend)?;
            Ok(value)
        });
        let _ = answer.send(result);
    }))?;
    answered
        .await
        .unwrap_or_else(|_| Err(task_failed(format!("the {what} panicked"))))
}

impl Threads {
    /// Starts the first of the threads, which takes `first` as its connection if given.
    fn start(
        name: &'static str,
        path: Arc<Path>,
        most: usize,
        first: Option<Connection>,
    ) -> std::io::Result<Self> {
        let (queue, calls) = crossbeam_channel::unbounded();
        let threads = Threads {
            name,
            path,
            most,
            queue: Some(queue),
            calls,
            waiting: Arc::new(AtomicUsize::new(0)),
            count: AtomicUsize::new(1),
            started: Mutex::new(Vec::with_capacity(most)),
        };
        let thread = threads.spawn(first)?;
        threads.lock().push(thread);
        Ok(threads)
    }

    /// Queues `call`, and starts one more thread if more calls are queued than threads wait
    /// for them and there are fewer than `most`. The first thread never stops, so a call
    /// queued is always run, even when no thread more can be started.
    fn send(&self, call: Call) -> Result<(), ProfileError> {
        self.queue
            .as_ref()
            .and_then(|queue| queue.send(call).ok())
            .ok_or_else(|| task_failed("the database is closed"))?;
        if self.count.load(Ordering::Acquire) < self.most
            && self.calls.len() > self.waiting.load(Ordering::Acquire)
        {
            let mut started = self.lock();
            if started.len() < self.most {
                match self.spawn(None) {
                    Ok(thread) => {
                        started.push(thread);
                        self.count.store(started.len(), Ordering::Release);
                    }
                    Err(err) => tracing::warn!(msg = "cannot start a database thread", err = %err),
                }
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.started.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a thread that runs calls until the queue closes, on `conn` or on a connection
    /// it opens when the first call comes, and opens again for the first call after it rested
    /// ([`rest`]).
    fn spawn(&self, mut conn: Option<Connection>) -> std::io::Result<JoinHandle<()>> {
        let calls = self.calls.clone();
        let waiting = self.waiting.clone();
        let path = self.path.clone();
        std::thread::Builder::new()
            .name(self.name.into())
            .spawn(move || {
                loop {
                    waiting.fetch_add(1, Ordering::AcqRel);
                    let call = calls.recv_timeout(IDLE_AFTER).or_else(|timeout| {
                        if timeout.is_timeout() {
                            rest(conn.take());
                        }
                        // Then it sleeps until a call comes, without waking again.
                        calls.recv()
                    });
                    waiting.fetch_sub(1, Ordering::AcqRel);
                    // Until the repository is dropped.
                    let Ok(call) = call else { break };
                    // A call that panics fails alone (its caller hears that it panicked), and
                    // the thread goes on, with a new connection if the panic took its own.
                    let open = conn.take();
                    conn = catch_unwind(AssertUnwindSafe(|| {
                        let mut open = match open.map_or_else(|| connect(&path), Ok) {
                            Ok(open) => open,
                            Err(err) => {
                                call(Err(err));
                                return None;
                            }
                        };
                        call(Ok(&mut open));
                        // A connection left in a transaction (its rollback failed) would read
                        // an old snapshot, or turn every later write away: the next call opens
                        // a new one.
                        ended(&open).then_some(open)
                    }))
                    .unwrap_or(None);
                }
            })
    }
}

impl Drop for Threads {
    /// Waits for the threads to finish the calls queued and close their connections, so that
    /// a program that drops its repository before it exits leaves the file closed properly
    /// (the last connection to close checkpoints the write-ahead log).
    fn drop(&mut self) {
        drop(self.queue.take());
        let me = std::thread::current().id();
        for thread in self.lock().drain(..) {
            // The last clone may be dropped by a call running on one of the threads (an
            // update's change holding a clone): that thread ends once the call returns.
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

/// Gives back what a database thread idle for [`IDLE_AFTER`] keeps between calls: its
/// connection, closed (the next call opens another, and reads its pages again from the file,
/// which the system caches), and the thread's cache of freed blocks.
fn rest(conn: Option<Connection>) {
    if let Some(conn) = conn
        && let Err((_, err)) = conn.close()
    {
        // Dropped, the connection is closed again, and anything still open with it.
        tracing::debug!(msg = "cannot close an idle connection", err = %err);
    }
    kit_core::allocator::return_thread_cache();
}

/// Whether `conn` is out of any transaction, after trying to roll back one left open.
fn ended(conn: &Connection) -> bool {
    conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok()
}

/// A database call that ended without an answer.
fn task_failed(why: impl fmt::Display) -> ProfileError {
    ProfileError::Backend(Error::new(
        ErrorKind::Internal,
        format!("database task failed: {why}"),
    ))
}

/// A connection with the settings every connection needs.
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

// ANCHOR: migrate
/// Brings the schema up to [`SCHEMA_VERSION`], recording each version reached in
/// `schema_version`. It runs in one write transaction, so two processes starting on a new
/// file at once migrate it once.
fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER NOT NULL PRIMARY KEY,
             applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )
    .map_err(|e| e.to_string())?;
    let current: usize = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .map_err(|e| e.to_string())?;
    if current > SCHEMA_VERSION {
        return Err(format!(
            "its schema is version {current}, newer than this program's ({SCHEMA_VERSION})"
        ));
    }
    for (at, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = at + 1;
        tx.execute_batch(migration)
            .map_err(|e| format!("migration to version {version} failed: {e}"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}
// ANCHOR_END: migrate

/// A SQLite failure as the service reports it: a lock held too long by another process is
/// `Unavailable` (a retry may succeed), anything else `Internal`.
fn backend(error: rusqlite::Error) -> ProfileError {
    let kind = match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    ProfileError::Backend(Error::new(kind, error))
}

fn load(tx: &Transaction<'_>, id: &str) -> Result<Option<Profile>, ProfileError> {
    let name: Option<String> = tx
        .prepare_cached("SELECT name FROM profiles WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
        .map_err(backend)?;
    let Some(name) = name else {
        return Ok(None);
    };
    let mut stmt = tx
        .prepare_cached(
            "SELECT id, location FROM addresses WHERE profile_id = ?1 ORDER BY position",
        )
        .map_err(backend)?;
    let addresses = stmt
        .query_map([id], |row| {
            Ok(Address {
                id: row.get(0)?,
                location: row.get(1)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Address>>>())
        .map_err(backend)?;
    Ok(Some(Profile {
        id: id.to_owned(),
        name,
        addresses,
    }))
}

/// Writes `profile` whole, replacing any profile with its id.
fn store(tx: &Transaction<'_>, profile: &Profile) -> Result<(), ProfileError> {
    tx.prepare_cached(
        "INSERT INTO profiles (id, name) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    )
    .and_then(|mut stmt| stmt.execute(params![profile.id, profile.name]))
    .map_err(backend)?;
    tx.prepare_cached("DELETE FROM addresses WHERE profile_id = ?1")
        .and_then(|mut stmt| stmt.execute([&profile.id]))
        .map_err(backend)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO addresses (profile_id, position, id, location) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(backend)?;
    for (position, address) in profile.addresses.iter().enumerate() {
        insert
            .execute(params![profile.id, position, address.id, address.location])
            .map_err(backend)?;
    }
    Ok(())
}

fn exists(tx: &Transaction<'_>, id: &str) -> Result<bool, ProfileError> {
    tx.prepare_cached("SELECT 1 FROM profiles WHERE id = ?1")
        .and_then(|mut stmt| stmt.exists([id]))
        .map_err(backend)
}

impl Repository for SqliteRepository {
    async fn create(&self, profile: Profile) -> Result<(), ProfileError> {
        self.write(move |tx| {
            if exists(tx, &profile.id)? {
                return Err(ProfileError::AlreadyExists);
            }
            store(tx, &profile)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Profile>, ProfileError> {
        let id = id.to_owned();
        self.read(move |tx| load(tx, &id)).await
    }

    async fn put(&self, profile: Profile) -> Result<(), ProfileError> {
        self.write(move |tx| store(tx, &profile)).await
    }

    async fn update<F>(&self, id: &str, change: F) -> Result<(), ProfileError>
    where
        F: FnOnce(&mut Profile) -> Result<(), ProfileError> + Send + 'static,
    {
        let id = id.to_owned();
        self.write(move |tx| {
            let mut profile = load(tx, &id)?.ok_or(ProfileError::NotFound)?;
            change(&mut profile)?;
            store(tx, &profile)
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<bool, ProfileError> {
        let id = id.to_owned();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM addresses WHERE profile_id = ?1")
                .and_then(|mut stmt| stmt.execute([&id]))
                .map_err(backend)?;
            let deleted = tx
                .prepare_cached("DELETE FROM profiles WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute([&id]))
                .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }
}

impl fmt::Debug for SqliteRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteRepository")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}
