//! The same contract, checked against both repositories.

use std::sync::Arc;

use kit_core::error::ErrorKind;

use super::*;
use crate::service::{Address, BasicProfileService, ProfileService};

fn profile(id: &str, name: &str, addresses: &[(&str, &str)]) -> Profile {
    Profile {
        id: id.into(),
        name: name.into(),
        addresses: addresses
            .iter()
            .map(|(id, location)| Address {
                id: (*id).into(),
                location: (*location).into(),
            })
            .collect(),
    }
}

async fn contract(repo: impl Repository) {
    assert_eq!(repo.get("1").await.expect("get"), None);
    let first = profile("1", "Go Kit", &[("a", "Home"), ("a", "Twice"), ("b", "")]);
    repo.create(first.clone()).await.expect("create");
    assert!(matches!(
        repo.create(profile("1", "Other", &[])).await,
        Err(ProfileError::AlreadyExists)
    ));
    assert_eq!(repo.get("1").await.expect("get"), Some(first.clone()));

    let replaced = profile("1", "", &[("c", "Work")]);
    repo.put(replaced.clone()).await.expect("put");
    assert_eq!(repo.get("1").await.expect("get"), Some(replaced));

    repo.update("1", |p| {
        p.name = "changed".into();
        Ok(())
    })
    .await
    .expect("update");
    assert_eq!(
        repo.get("1").await.expect("get").expect("some").name,
        "changed"
    );
    let refused = repo
        .update("1", |p| {
            p.name = "never stored".into();
            Err(ProfileError::AlreadyExists)
        })
        .await;
    assert!(matches!(refused, Err(ProfileError::AlreadyExists)));
    assert_eq!(
        repo.get("1").await.expect("get").expect("some").name,
        "changed"
    );
    assert!(matches!(
        repo.update("2", |_| Ok(())).await,
        Err(ProfileError::NotFound)
    ));

    // Ids are text of any kind.
    for id in [
        "a b",
        "a/b",
        "ünïcødé ✓",
        "nul\0byte",
        "'; DROP TABLE profiles; --",
    ] {
        let odd = profile(id, id, &[(id, id)]);
        repo.create(odd.clone()).await.expect("create odd");
        assert_eq!(repo.get(id).await.expect("get"), Some(odd), "{id:?}");
    }
    assert_eq!(repo.get("nul").await.expect("get"), None);

    assert!(repo.delete("1").await.expect("delete"));
    assert!(!repo.delete("1").await.expect("delete again"));
    assert_eq!(repo.get("1").await.expect("get"), None);
    // A profile created again after a delete has none of the old addresses.
    repo.create(profile("1", "new", &[])).await.expect("create");
    assert_eq!(
        repo.get("1").await.expect("get"),
        Some(profile("1", "new", &[]))
    );
}

/// Many concurrent changes of one profile: each must take effect.
async fn no_lost_updates(repo: impl Repository) {
    let svc = Arc::new(BasicProfileService::new(repo));
    svc.post_profile(profile("p", "", &[])).await.expect("post");
    let mut tasks = Vec::new();
    for n in 0..40 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let address = Address {
                id: format!("a{n}"),
                location: String::new(),
            };
            svc.post_address("p", address).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("post address");
    }
    assert_eq!(svc.get_addresses("p").await.expect("addresses").len(), 40);
}

#[tokio::test]
async fn memory_keeps_the_contract() {
    contract(MemoryRepository::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_loses_no_concurrent_update() {
    no_lost_updates(MemoryRepository::new()).await;
}

#[tokio::test]
async fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    contract(SqliteRepository::open(dir.path().join("p.db")).expect("open")).await;
}

#[tokio::test]
async fn sqlite_writes_on_after_a_write_that_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = SqliteRepository::open(dir.path().join("p.db")).expect("open");
    repo.create(profile("1", "kept", &[]))
        .await
        .expect("create");
    let failed = repo
        .update("1", |p| {
            p.name = "half-changed".into();
            panic!("a change that panics")
        })
        .await;
    assert!(
        matches!(&failed, Err(ProfileError::Backend(e)) if e.to_string().contains("panicked")),
        "{failed:?}"
    );
    // Nothing of it was written, and the next writes go through.
    repo.put(profile("2", "after", &[])).await.expect("put");
    assert_eq!(
        repo.get("1").await.expect("get"),
        Some(profile("1", "kept", &[]))
    );
    assert_eq!(
        repo.get("2").await.expect("get"),
        Some(profile("2", "after", &[]))
    );
}

/// A repository on a new file, and another connection to the file holding its write lock, as
/// another process's write would (its `COMMIT` releases the lock).
fn repository_locked_by_another_writer()
-> (tempfile::TempDir, SqliteRepository, rusqlite::Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.db");
    let repo = SqliteRepository::open(&path).expect("open");
    let other = rusqlite::Connection::open(&path).expect("open the file");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    (dir, repo, other)
}

#[tokio::test]
async fn sqlite_answers_a_read_whose_connection_cannot_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = SqliteRepository::open(dir.path().join("p.db")).expect("open");
    // The reader threads open their connections with their first read: the file's directory
    // is gone by then.
    drop(dir);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(10), repo.get("1"))
        .await
        .expect("answered, not left waiting");
    assert!(
        matches!(&answer, Err(ProfileError::Backend(e))
            if e.kind() == ErrorKind::Internal && e.to_string().contains("unable to open")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn sqlite_writes_behind_another_writer_fail_as_unavailable() {
    let (_dir, repo, other) = repository_locked_by_another_writer();
    // The first waits out SQLite's busy timeout; the second, queued behind it, has no time
    // left when its turn comes. Both are Unavailable (503), which a client may retry.
    let (first, second) = tokio::join!(
        repo.put(profile("1", "first", &[])),
        repo.put(profile("2", "second", &[]))
    );
    for answer in [first, second] {
        assert!(
            matches!(&answer, Err(ProfileError::Backend(e)) if e.kind() == ErrorKind::Unavailable),
            "{answer:?}"
        );
    }
    other
        .execute_batch("COMMIT")
        .expect("release the write lock");
    repo.put(profile("3", "third", &[])).await.expect("put");
    assert_eq!(repo.get("1").await.expect("get"), None);
    assert_eq!(repo.get("2").await.expect("get"), None);
    assert!(repo.get("3").await.expect("get").is_some());
}

#[tokio::test]
async fn sqlite_skips_a_queued_write_whose_caller_has_gone() {
    let (_dir, repo, other) = repository_locked_by_another_writer();
    // The first write waits on the lock on the writer thread; the second waits in the queue
    // behind it, until its caller gives up.
    let first = tokio::spawn({
        let repo = repo.clone();
        async move { repo.put(profile("1", "first", &[])).await }
    });
    // This test's runtime has one thread: the first write is queued before the second.
    tokio::task::yield_now().await;
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        repo.put(profile("2", "gone", &[])),
    )
    .await;
    assert!(gone.is_err(), "the second write should still be waiting");
    other
        .execute_batch("COMMIT")
        .expect("release the write lock");
    first.await.expect("join").expect("the first write");
    assert!(repo.get("1").await.expect("get").is_some());
    assert_eq!(repo.get("2").await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_loses_no_concurrent_update_even_across_connections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.db");
    no_lost_updates(SqliteRepository::open(&path).expect("open")).await;
    // Two repositories on one file are two writers, as two processes are.
    let a = SqliteRepository::open(&path).expect("open a");
    let b = SqliteRepository::open(&path).expect("open b");
    let (sa, sb) = (BasicProfileService::new(a), BasicProfileService::new(b));
    sa.post_profile(profile("q", "", &[])).await.expect("post");
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (sa, sb) = (sa.clone(), sb.clone());
        tasks.push(tokio::spawn(async move {
            let address = |side: &str| Address {
                id: format!("{side}{n}"),
                location: String::new(),
            };
            sa.post_address("q", address("a")).await?;
            sb.post_address("q", address("b")).await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("post address");
    }
    assert_eq!(sb.get_addresses("q").await.expect("addresses").len(), 40);
}

#[tokio::test]
async fn sqlite_keeps_data_and_schema_across_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.db");
    let repo = SqliteRepository::open(&path).expect("open");
    repo.create(profile("1", "kept", &[("a", "Home")]))
        .await
        .expect("create");
    drop(repo);
    let again = SqliteRepository::open(&path).expect("reopen");
    assert_eq!(
        again.get("1").await.expect("get"),
        Some(profile("1", "kept", &[("a", "Home")]))
    );
    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let versions: Vec<usize> = conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("versions");
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_refuses_a_newer_schema_and_an_unusable_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.db");
    drop(SqliteRepository::open(&path).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("inspect");
    conn.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION + 1],
    )
    .expect("bump");
    drop(conn);
    let err = SqliteRepository::open(&path).expect_err("newer");
    assert!(
        err.to_string()
            .ends_with(&format!("newer than this program's ({SCHEMA_VERSION})")),
        "{err}"
    );
    let err = SqliteRepository::open(dir.path().join("no/such/dir/p.db")).expect_err("no dir");
    assert!(
        err.to_string().starts_with("cannot open the database "),
        "{err}"
    );
}
