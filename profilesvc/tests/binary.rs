//! The `profilesvc` binary as a user runs it: flags, log lines, metrics, and a SQLite file that
//! keeps every acknowledged write through a SIGKILL and serves two processes at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use http::{Method, StatusCode};
use nix::sys::signal::Signal;
use regex::Regex;
use testkit::http::{Answer, HttpClient};
use testkit::process::{Service, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_profilesvc");

async fn send(
    client: &HttpClient,
    svc: &Service,
    method: Method,
    path: &str,
    body: &str,
) -> Answer {
    client.send(method, &svc.url(path), body, &[]).await
}

#[tokio::test]
async fn logs_go_kits_lines() {
    let svc = Service::start(BIN, &[]);
    let port = svc.port();
    let client = HttpClient::new();
    send(
        &client,
        &svc,
        Method::POST,
        "/profiles/",
        r#"{"id":"1234","name":"Go Kit"}"#,
    )
    .await;
    send(&client, &svc, Method::GET, "/profiles/1234", "").await;
    send(
        &client,
        &svc,
        Method::PUT,
        "/profiles/1234",
        r#"{"id":"1234"}"#,
    )
    .await;
    send(
        &client,
        &svc,
        Method::PATCH,
        "/profiles/1234",
        r#"{"name":"x"}"#,
    )
    .await;
    send(
        &client,
        &svc,
        Method::POST,
        "/profiles/1234/addresses/",
        r#"{"id":"home"}"#,
    )
    .await;
    send(&client, &svc, Method::GET, "/profiles/1234/addresses/", "").await;
    send(
        &client,
        &svc,
        Method::GET,
        "/profiles/1234/addresses/home",
        "",
    )
    .await;
    send(
        &client,
        &svc,
        Method::DELETE,
        "/profiles/1234/addresses/home",
        "",
    )
    .await;
    send(&client, &svc, Method::DELETE, "/profiles/1234", "").await;
    send(&client, &svc, Method::GET, "/profiles/a%20b", "").await;
    let output = svc.stop();
    let took = r"took=\d+(\.\d+)?(ns|µs|ms)";
    let expected = [
        format!("^transport=HTTP addr=127.0.0.1:{port}$"),
        format!("^method=PostProfile id=1234 {took} err=null$"),
        format!("^method=GetProfile id=1234 {took} err=null$"),
        format!("^method=PutProfile id=1234 {took} err=null$"),
        format!("^method=PatchProfile id=1234 {took} err=null$"),
        format!("^method=PostAddress profileID=1234 {took} err=null$"),
        format!("^method=GetAddresses profileID=1234 {took} err=null$"),
        format!("^method=GetAddress profileID=1234 addressID=home {took} err=null$"),
        format!("^method=DeleteAddress profileID=1234 addressID=home {took} err=null$"),
        format!("^method=DeleteProfile id=1234 {took} err=null$"),
        format!(r#"^method=GetProfile id="a b" {took} err="not found"$"#),
    ];
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{output}");
    for (line, pattern) in lines.iter().zip(&expected) {
        let pattern = Regex::new(pattern).expect("pattern");
        assert!(pattern.is_match(line), "{line:?} does not match {pattern}");
    }
}

#[tokio::test]
async fn go_kits_flag_and_ours_both_set_the_address() {
    let client = HttpClient::new();
    let port = free_port();
    let go_style = format!("-http.addr=127.0.0.1:{port}");
    let svc = Service::start_on(BIN, &[&go_style], &[], port);
    let answer = send(&client, &svc, Method::GET, "/profiles/x", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    svc.stop();

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let svc = Service::start_on(BIN, &["--http.addr", &listen], &[], port);
    svc.stop();

    let both = testkit::process::run(BIN, &["--http.addr", ":1", "--listen", ":2"]);
    assert_eq!(both.code, Some(2), "{both:?}");
    assert_eq!(both.stderr.lines().count(), 1, "{}", both.stderr);
}

#[test]
fn help_explains_every_flag() {
    let help = testkit::process::help_text(BIN);
    for needle in [
        "--http.addr",
        "--listen",
        "--db",
        ":memory:",
        "--log-format",
        "--drain-timeout",
        "--max-connections",
        "/metrics",
        "/openapi.json",
        "SQLite",
    ] {
        assert!(help.contains(needle), "{needle} missing from\n{help}");
    }
}

/// `--max-connections` caps the connections served at once: at the cap, a newcomer makes room
/// by closing the connection idle the longest.
#[tokio::test]
async fn max_connections_caps_the_connections_served() {
    use tokio::io::AsyncReadExt;
    let svc = Service::start(BIN, &["--max-connections", "1"]);
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", svc.port()))
        .await
        .expect("connect");
    // Let the listener take it in before the next one comes.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let answer = send(&HttpClient::new(), &svc, Method::GET, "/profiles/none", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{answer:?}");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        idle.read_to_end(&mut rest),
    )
    .await
    .expect("the idle connection is closed to make room");
    assert!(read.is_err() || rest.is_empty(), "{rest:?}");
    svc.stop();

    let zero = testkit::process::run(BIN, &["--max-connections", "0"]);
    assert_eq!(zero.code, Some(2), "{zero:?}");
}

#[test]
fn a_database_that_cannot_be_opened_is_one_line_and_status_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port of its own rather than "any port": see `testkit::process::free_port`.
    let listen = format!("127.0.0.1:{}", free_port());
    let missing = dir.path().join("no/such/folder/profiles.db");
    let finished = testkit::process::run(
        BIN,
        &[
            "--db",
            missing.to_str().expect("utf-8"),
            "--listen",
            &listen,
        ],
    );
    assert_eq!(finished.code, Some(1), "{finished:?}");
    assert_eq!(finished.stderr.lines().count(), 1, "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .starts_with("error: cannot open the database "),
        "{}",
        finished.stderr
    );
    // An empty path would be a temporary database that SQLite deletes on exit: refused.
    let finished = testkit::process::run(BIN, &["--db", "", "--listen", &listen]);
    assert_eq!(finished.code, Some(2), "{finished:?}");

    // A file that is not a database is refused the same way, and left as it was.
    let not_a_db = dir.path().join("notes.txt");
    std::fs::write(
        &not_a_db,
        "not a database, but a note that must not be lost\n".repeat(100),
    )
    .expect("write");
    let finished = testkit::process::run(
        BIN,
        &[
            "--db",
            not_a_db.to_str().expect("utf-8"),
            "--listen",
            &listen,
        ],
    );
    assert_eq!(finished.code, Some(1), "{finished:?}");
    assert!(
        std::fs::read_to_string(&not_a_db)
            .expect("read")
            .starts_with("not a database")
    );
}

/// Every sample of a Prometheus text exposition, by series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_every_method_and_pass_promtool() {
    let svc = Service::start(BIN, &[]);
    let client = HttpClient::new();
    send(&client, &svc, Method::POST, "/profiles/", r#"{"id":"1"}"#).await;
    send(&client, &svc, Method::POST, "/profiles/", r#"{"id":"1"}"#).await;
    send(&client, &svc, Method::GET, "/profiles/1", "").await;
    send(&client, &svc, Method::GET, "/profiles/1/addresses/x", "").await;
    let answer = send(&client, &svc, Method::GET, "/metrics", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let samples = samples(&answer.body);
    let total = |method: &str, error: &str| {
        samples
            .get(&format!(
                "my_group_profile_service_requests_total{{method=\"{method}\",error=\"{error}\"}}"
            ))
            .copied()
    };
    assert_eq!(total("PostProfile", "false"), Some(1.0));
    assert_eq!(total("PostProfile", "true"), Some(1.0));
    assert_eq!(total("GetProfile", "false"), Some(1.0));
    assert_eq!(total("GetAddress", "true"), Some(1.0));
    assert_eq!(total("DeleteAddress", "false"), Some(0.0));

    let mut promtool = Command::new(testkit::tools::promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(answer.body.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // Everything it has called so far, its maths included, came without libm (kit-core's `libm`).
    svc.assert_no_libm();
    svc.stop();
}

fn db_args(path: &Path) -> Vec<String> {
    vec!["--db".into(), path.to_str().expect("utf-8").into()]
}

fn start_on_db(path: &Path) -> Service {
    let args = db_args(path);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Service::start(BIN, &args)
}

#[tokio::test]
async fn every_acknowledged_write_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let client = HttpClient::new();
    let mut svc = start_on_db(&db);
    let mut expected = BTreeMap::new();
    for n in 0..100 {
        let id = format!("p{n}");
        let body = format!(r#"{{"id":"{id}","name":"n{n}"}}"#);
        let answer = send(&client, &svc, Method::POST, "/profiles/", &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        expected.insert(
            id,
            serde_json::json!({ "id": format!("p{n}"), "name": format!("n{n}") }),
        );
    }
    // Every kind of write, each acknowledged before the kill.
    let answer = send(
        &client,
        &svc,
        Method::PUT,
        "/profiles/p1",
        r#"{"id":"p1","name":"put"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    expected.insert(
        "p1".into(),
        serde_json::json!({ "id": "p1", "name": "put" }),
    );
    let answer = send(
        &client,
        &svc,
        Method::PATCH,
        "/profiles/p2",
        r#"{"name":"patched"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    expected.insert(
        "p2".into(),
        serde_json::json!({ "id": "p2", "name": "patched" }),
    );
    let answer = send(
        &client,
        &svc,
        Method::POST,
        "/profiles/p3/addresses/",
        r#"{"id":"home","location":"Here"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    expected.insert(
        "p3".into(),
        serde_json::json!({ "id": "p3", "name": "n3", "addresses": [{ "id": "home", "location": "Here" }] }),
    );
    let answer = send(&client, &svc, Method::DELETE, "/profiles/p4", "").await;
    assert_eq!(answer.status, StatusCode::OK);
    expected.remove("p4");

    svc.process().signal(Signal::SIGKILL).expect("kill");
    let status = svc.process().wait().expect("dies");
    assert!(!status.success());

    let svc = start_on_db(&db);
    for n in 0..100 {
        let id = format!("p{n}");
        let answer = send(&client, &svc, Method::GET, &format!("/profiles/{id}"), "").await;
        match expected.get(&id) {
            Some(profile) => {
                assert_eq!(answer.status, StatusCode::OK, "{id}: {answer:?}");
                assert_eq!(answer.json()["profile"], *profile, "{id}");
            }
            None => assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}: {answer:?}"),
        }
    }
    svc.stop();
}

#[tokio::test]
async fn two_instances_on_one_file_both_serve_correct_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let (a, b) = (start_on_db(&db), start_on_db(&db));
    let client = HttpClient::new();
    // What one writes, the other reads at once.
    let answer = send(
        &client,
        &a,
        Method::POST,
        "/profiles/",
        r#"{"id":"shared","name":"A"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let answer = send(&client, &b, Method::GET, "/profiles/shared", "").await;
    assert_eq!(answer.json()["profile"]["name"], "A");
    let answer = send(
        &client,
        &b,
        Method::POST,
        "/profiles/",
        r#"{"id":"shared"}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);

    // Both add addresses to one profile at once: none is lost.
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut calls = Vec::new();
    for n in 0..40 {
        let svc = if n % 2 == 0 { a.clone() } else { b.clone() };
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let body = format!(r#"{{"id":"a{n}"}}"#);
            send(
                &client,
                &svc,
                Method::POST,
                "/profiles/shared/addresses/",
                &body,
            )
            .await
        }));
    }
    for call in calls {
        let answer = call.await.expect("join");
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    for svc in [&a, &b] {
        let answer = send(&client, svc, Method::GET, "/profiles/shared/addresses/", "").await;
        assert_eq!(
            answer.json()["addresses"].as_array().map(Vec::len),
            Some(40)
        );
    }
    for svc in [a, b] {
        std::sync::Arc::into_inner(svc).expect("last").stop();
    }
}

#[tokio::test]
async fn in_memory_profiles_are_gone_after_a_restart() {
    let client = HttpClient::new();
    let svc = Service::start(BIN, &["--db", ":memory:"]);
    send(&client, &svc, Method::POST, "/profiles/", r#"{"id":"1"}"#).await;
    svc.stop();
    let svc = Service::start(BIN, &[]);
    let answer = send(&client, &svc, Method::GET, "/profiles/1", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    svc.stop();
}

/// The number on the line of Linux's `/proc/<pid>/status` that starts with `key` (a unit
/// after it, "kB", left out).
#[cfg(target_os = "linux")]
fn status(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("a {key} line in {status}"))
}

/// How many threads the process `pid` has now.
#[cfg(target_os = "linux")]
fn threads(pid: u32) -> usize {
    status(pid, "Threads:") as usize
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn calls_waiting_for_the_database_hold_no_threads() {
    const CALLS: usize = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let mut svc = start_on_db(&db);
    let pid = svc.process().pid();
    let client = HttpClient::new();
    let base = threads(pid);

    // Another process holds the file's write lock, so the service's writes queue up behind it.
    let other = rusqlite::Connection::open(&db).expect("open the file");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let url = svc.url("/profiles/");
    let writes: Vec<_> = (0..CALLS)
        .map(|n| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let body = format!(r#"{{"id":"c{n}","name":"n{n}"}}"#);
                client.send(Method::POST, &url, body, &[]).await
            })
        })
        .collect();
    // While they wait (for a second, well within the service's 5-second busy timeout), count
    // its threads.
    let mut most = base;
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        most = most.max(threads(pid));
    }
    assert!(
        writes.iter().all(|write| !write.is_finished()),
        "a write was answered while another connection held the lock"
    );
    other
        .execute_batch("COMMIT")
        .expect("release the write lock");
    for write in writes {
        let answer = write.await.expect("join");
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    // A write waiting on a thread of its own for the service's one writer made a thread of
    // every call in the queue.
    assert!(
        most - base <= 8,
        "{} threads more than before the calls ({base}) while {CALLS} writes waited",
        most - base
    );

    // A crowd of reads, more than there are read connections, each gets what was written, and
    // no more than eight threads read (they stay, for the next reads).
    let reads: Vec<_> = (0..CALLS)
        .map(|n| {
            let (client, url) = (client.clone(), svc.url(&format!("/profiles/c{n}")));
            tokio::spawn(async move { (n, client.send(Method::GET, &url, "", &[]).await) })
        })
        .collect();
    for read in reads {
        let (n, answer) = read.await.expect("join");
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.json()["profile"]["name"], format!("n{n}"));
    }
    let more = threads(pid).saturating_sub(base);
    assert!(
        more <= 8,
        "{more} threads more than before the calls ({base}) after {CALLS} reads at once"
    );
    svc.stop();
}

/// The process's own memory (its anonymous pages, in KiB) now.
#[cfg(target_os = "linux")]
fn own_kib(pid: u32) -> u64 {
    status(pid, "RssAnon:")
}

/// A burst of writes fills the writing connection's page cache (up to 2 MB in SQLite); once the
/// service has been idle for a second, its database threads close their connections, and the
/// memory they held goes back; the last to close copies the write-ahead log into the file and
/// removes it.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn an_idle_service_gives_its_database_cache_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let mut svc = start_on_db(&db);
    let pid = svc.process().pid();
    let client = HttpClient::new();
    // About 3 MB of profiles, written one at a time: more pages than the cache holds.
    let name = "n".repeat(3000);
    for n in 0..1000 {
        let body = format!(r#"{{"id":"p{n}","name":"{name}"}}"#);
        let answer = send(&client, &svc, Method::POST, "/profiles/", &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    // A read, so that a reader has a connection open too.
    let answer = send(&client, &svc, Method::GET, "/profiles/p0", "").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let busy = own_kib(pid);
    let wal = dir.path().join("profiles.db-wal");
    assert!(wal.exists(), "the writes went to the write-ahead log first");
    // Idle: the threads close their connections after a second, and jemalloc returns the
    // freed pages at its next tick. Waited for until a deadline, not timed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut now = busy;
    while (now + 1024 > busy || wal.exists()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        now = own_kib(pid);
    }
    assert!(
        now + 1024 <= busy,
        "{busy} KiB of its own after the writes, still {now} KiB after 20 idle seconds"
    );
    assert!(
        !wal.exists(),
        "the write-ahead log is still there after 20 idle seconds: a connection stayed open"
    );
    // What was written is still read right, from the file, on connections opened again.
    let answer = send(&client, &svc, Method::GET, "/profiles/p999", "").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json()["profile"]["name"], name);
    let body = format!(r#"{{"id":"p1000","name":"{name}"}}"#);
    let answer = send(&client, &svc, Method::POST, "/profiles/", &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let answer = send(&client, &svc, Method::GET, "/profiles/p1000", "").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    svc.stop();
}
