//! Profiles in a SQLite file that outlives the process and can be shared by several.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kit_core::error::{Error, ErrorKind};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use tokio::sync::{Semaphore, oneshot};

use super::Repository;
use crate::service::{Address, Profile, ProfileError};

/// How long a write waits for another process's write to the same file to finish before it
/// fails with `Unavailable` (SQLite's busy timeout).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many reads run at once, each on a connection of its own, opened when first needed and
/// kept for the next reads. More wait their turn without holding a thread (see [`Shared`]).
const READERS: usize = 8;

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
///   requests: writes run one after another on a thread of their own, reads on Tokio's blocking
///   threads (`spawn_blocking`). A call waiting for its turn holds no thread.
///
/// The schema is created, or migrated to [`SCHEMA_VERSION`], when the file is opened; a file
/// written by a newer version of the program is refused rather than misread.
///
/// Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct SqliteRepository {
    shared: Arc<Shared>,
}

/// What the clones share: the file's connections, and what bounds their use.
///
/// A call takes a thread only while SQLite works for it. Writes queue for the one thread that
/// writes, which runs them back to back; a read waits for one of [`READERS`] permits before it
/// takes one of Tokio's blocking threads. When every call took a blocking thread first, writes
/// queued for the writer on threads of their own (100 writes behind another process's lock:
/// 99 threads more), and 64 clients reading as fast as they could, each read on a thread and on
/// a connection opened whenever none was idle, left the process with 516 threads and 39 MiB
/// resident.
struct Shared {
    path: PathBuf,
    /// The thread that owns the one connection that writes: a process's writes take turns
    /// there, so they never contend with each other for SQLite's write lock, only with other
    /// processes'.
    writer: Writer,
    /// Idle read connections, at most [`READERS`].
    readers: Mutex<Vec<Connection>>,
    /// One permit per read in progress: at most [`READERS`] at once.
    reading: Arc<Semaphore>,
}

/// The writer thread and its queue of writes.
struct Writer {
    /// `None` once the repository is being dropped.
    queue: Option<mpsc::Sender<Write>>,
    thread: Option<JoinHandle<()>>,
}

/// A write for the writer thread to run on its connection.
type Write = Box<dyn FnOnce(&mut Connection) + Send>;
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
        let writer = Writer::start(writer, path.clone())
            .map_err(|e| failed(format!("cannot start its writer thread: {e}")))?;
        Ok(SqliteRepository {
            shared: Arc::new(Shared {
                path,
                writer,
                readers: Mutex::new(Vec::with_capacity(READERS)),
                reading: Arc::new(Semaphore::new(READERS)),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `f` in a write transaction, on the writer thread, and commits if it succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T, ProfileError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ProfileError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let queued = Instant::now();
        let write: Write = Box::new(move |conn| {
            // Whoever asked has gone (its request was cancelled): the write was never
            // acknowledged, and need not be made.
            if answer.is_closed() {
                return;
            }
            // The wait in the queue counts against the busy timeout: a write is answered
            // within it, however many were queued before it. With no time left it is still
            // made if the lock is free, and is refused at once (busy) if not.
            let left = BUSY_TIMEOUT.saturating_sub(queued.elapsed());
            // IMMEDIATE takes the write lock now, so a read-modify-write cannot be overtaken
            // by another process between its read and its write.
            let result = conn
                .busy_timeout(left)
                .and_then(|()| conn.transaction_with_behavior(TransactionBehavior::Immediate))
                .map_err(backend)
                .and_then(|tx| {
                    let value = f(&tx)?;
                    tx.commit().map_err(backend)?;
                    Ok(value)
                });
            let _ = answer.send(result);
        });
        self.shared.writer.send(write)?;
        answered
            .await
            .unwrap_or_else(|_| Err(task_failed("the write panicked")))
    }

    /// Runs `f` in a read transaction, on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, ProfileError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ProfileError> + Send + 'static,
    {
        // The permit goes with the work to its thread: it is given back when SQLite is done,
        // even if the caller has stopped waiting.
        let permit = self
            .shared
            .reading
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| task_failed("the database is closed"))?;
        let shared = self.shared.clone();
        blocking(move || {
            let _permit = permit;
            let idle = shared
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => connect(&shared.path).map_err(backend)?,
            };
            // One transaction, so that a profile and its addresses are read as of one moment.
            let read = conn.transaction().map_err(backend).and_then(|tx| {
                let value = f(&tx)?;
                tx.commit().map_err(backend)?;
                Ok(value)
            });
            // A failed read's transaction was rolled back as it was dropped; a connection still
            // in one (the rollback failed too) would serve an old snapshot, and is closed.
            if ended(&conn) {
                shared
                    .readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
            }
            read
        })
        .await
    }
}

/// Runs blocking database work on Tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProfileError> + Send + 'static,
) -> Result<T, ProfileError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|join| Err(task_failed(join)))
}

impl Writer {
    /// Starts the thread that runs the writes on `conn`, a connection to `path`.
    fn start(mut conn: Connection, path: PathBuf) -> std::io::Result<Self> {
        let (queue, writes) = mpsc::channel::<Write>();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                // Until the repository is dropped. A write that panics fails alone: its
                // caller hears that the write panicked.
                while let Ok(write) = writes.recv() {
                    let _ = catch_unwind(AssertUnwindSafe(|| write(&mut conn)));
                    // A transaction left open (its rollback failed) would turn every later
                    // write away: the next ones get a new connection.
                    if !ended(&conn) {
                        match connect(&path) {
                            Ok(fresh) => conn = fresh,
                            Err(err) => {
                                tracing::error!(msg = "cannot reopen the database", err = %err)
                            }
                        }
                    }
                }
            })?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `write` for the writer thread.
    fn send(&self, write: Write) -> Result<(), ProfileError> {
        self.queue
            .as_ref()
            .and_then(|queue| queue.send(write).ok())
            .ok_or_else(|| task_failed("the writer thread has stopped"))
    }
}

impl Drop for Writer {
    /// Waits for the writer thread to finish the writes queued and close its connection, so
    /// that a program that drops its repository before it exits leaves the file closed
    /// properly (the last connection to close checkpoints the write-ahead log).
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}
