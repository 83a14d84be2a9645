//! The `stringsvc1` binary against clients that do not play by the rules: each probe is what an
//! attacker or a broken client sends, over a raw TCP connection, and each answer is what a
//! careful server gives. Those that once got through (lenient framings, HTTP/2 prior
//! knowledge) are kept here with those that always held, so that none regresses.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use testkit::process::Service;

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc1");

/// Sends `raw` on a new connection and reads until the server closes it (or 10 s pass).
fn exchange(service: &Service, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", service.port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    // The server may answer and close before it has read everything; that is its right.
    let _ = stream.write_all(raw);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn statuses(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answer[at + 9..at + 12])
        .collect()
}

fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").into_bytes();
    raw.extend_from_slice(body);
    raw
}

#[test]
fn framings_that_two_servers_could_read_differently_are_refused() {
    let service = Service::start(BIN, &[]);
    // A transfer coding other than chunked alone: 501, and the connection closes.
    for coding in ["foo, chunked", "chunked, chunked", "gzip, chunked"] {
        let answer = exchange(
            &service,
            &post(
                "/count",
                &format!("Transfer-Encoding: {coding}\r\n"),
                b"b\r\n{\"s\":\"abc\"}\r\n0\r\n\r\n",
            ),
        );
        assert_eq!(statuses(&answer), ["501"], "{coding}: {answer}");
        assert!(answer.contains("connection: close"), "{answer}");
        assert!(answer.contains("is not supported"), "{answer}");
    }
    // Two Transfer-Encoding headers are one list, and refused alike.
    let answer = exchange(
        &service,
        &post(
            "/count",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            b"b\r\n{\"s\":\"abc\"}\r\n0\r\n\r\n",
        ),
    );
    assert_eq!(statuses(&answer), ["501"], "{answer}");
    // Content-Length and Transfer-Encoding both: read as chunked, the request smuggled after the
    // chunked end is not run, and the connection closes.
    let answer = exchange(
        &service,
        &post(
            "/count",
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            b"0\r\n\r\nPOST /count HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"s\":\"abc\"}",
        ),
    );
    assert_eq!(statuses(&answer).len(), 1, "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    // Two different lengths.
    let answer = exchange(
        &service,
        &post(
            "/count",
            "Content-Length: 11\r\nContent-Length: 12\r\n",
            b"{\"s\":\"abc\"} ",
        ),
    );
    assert_eq!(statuses(&answer), ["400"], "{answer}");
    service.stop();
}

#[test]
fn a_body_in_an_encoding_the_service_cannot_read_is_415() {
    let service = Service::start(BIN, &[]);
    let answer = exchange(
        &service,
        &post(
            "/count",
            "Content-Encoding: gzip\r\nContent-Length: 11\r\n",
            b"{\"s\":\"abc\"}",
        ),
    );
    assert_eq!(statuses(&answer), ["415"], "{answer}");
    assert!(answer.contains("accept-encoding: identity"), "{answer}");
    service.stop();
}

#[test]
fn an_http2_client_is_told_this_server_speaks_http1() {
    let service = Service::start(BIN, &[]);
    let answer = exchange(&service, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        "{answer:?}"
    );
    assert!(answer.ends_with("{\"error\":\"this server speaks HTTP/1.1 only\"}\n"));
    service.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let service = Service::start(BIN, &[]);
    let mut raw = Vec::new();
    for s in ["a", "bb", "ccc"] {
        let body = format!("{{\"s\":\"{s}\"}}");
        raw.extend(post(
            "/count",
            &format!("Content-Length: {}\r\n", body.len()),
            body.as_bytes(),
        ));
    }
    raw.extend_from_slice(
        b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    );
    let answer = exchange(&service, &raw);
    assert_eq!(statuses(&answer), ["200", "200", "200", "200"], "{answer}");
    let counts: Vec<usize> = answer.match_indices("{\"v\":").map(|(at, _)| at).collect();
    let values: Vec<&str> = counts.iter().map(|at| &answer[at + 5..at + 6]).collect();
    assert_eq!(values, ["1", "2", "3", "0"], "{answer}");
    service.stop();
}

#[test]
fn oversized_heads_and_bodies_are_refused_without_being_read_whole() {
    let service = Service::start(BIN, &[]);
    let huge_header = format!("X-Big: {}\r\n", "a".repeat(200_000));
    let answer = exchange(&service, &post("/count", &huge_header, b""));
    assert_eq!(statuses(&answer), ["431"], "{answer}");

    let body = format!("{{\"s\":\"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let declared = exchange(
        &service,
        &post(
            "/count",
            &format!("Content-Length: {}\r\n", body.len()),
            body.as_bytes(),
        ),
    );
    assert_eq!(statuses(&declared), ["413"], "{declared}");
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(body.as_bytes());
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let streamed = exchange(
        &service,
        &post("/count", "Transfer-Encoding: chunked\r\n", &chunked),
    );
    assert_eq!(statuses(&streamed), ["413"], "{streamed}");
    service.stop();
}

/// A client that sends a whole body over the limit in one go, as most HTTP clients do, reads
/// the 413 that refuses it: the server does not close the connection under the client's
/// unread bytes, which would reset it and lose the answer.
#[test]
fn a_refused_upload_gets_its_answer_however_fast_it_is_sent() {
    let service = Service::start(BIN, &[]);
    let body = format!("{{\"s\":\"{}\"}}", "x".repeat(1024 * 1024 + 100));
    let request = post(
        "/uppercase",
        &format!("Content-Length: {}\r\n", body.len()),
        body.as_bytes(),
    );
    for attempt in 0..30 {
        let mut stream = TcpStream::connect(("127.0.0.1", service.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let sent = stream.write_all(&request);
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            sent.is_ok() && read.is_ok() && answer.starts_with("HTTP/1.1 413"),
            "attempt {attempt}: sent {sent:?}, read {read:?}: {answer}"
        );
        // And the answer says the connection closes, so that no client sends another
        // request on it.
        assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    }
    service.stop();
}

#[test]
fn hostile_json_is_refused_quickly_with_a_reason() {
    let service = Service::start(BIN, &[]);
    for (body, reason) in [
        ("[".repeat(100_000), "unexpected end of input"),
        (
            format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
            "expected an object, found an array",
        ),
        (
            format!(
                "{{\"s\":{}\"x\"{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            "field \\\"s\\\": expected a string, found an array",
        ),
        (
            format!("{{\"s\":{}}}", "9".repeat(100_000)),
            "number out of range",
        ),
        ("{\"s\":1e999999}".to_owned(), "number out of range"),
        (
            format!("{{\"pad\":[{}0],\"s\":\"x\"}}", "0,".repeat(200_000)),
            "{\"v\":1}",
        ),
    ] {
        let answer = exchange(
            &service,
            &post(
                "/count",
                &format!("Content-Length: {}\r\nConnection: close\r\n", body.len()),
                body.as_bytes(),
            ),
        );
        assert!(answer.contains(reason), "{}: {answer}", &body[..20]);
    }
    service.stop();
}

/// The soft limit on open files the process runs with, and the hard one.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    // Started as a shell started it with a low soft limit, the usual 1024 or less.
    let port = testkit::process::free_port();
    let script = format!("ulimit -Sn 256 && exec {BIN} --listen 127.0.0.1:{port}");
    let mut service = Service::start_on("bash", &["-c", &script], &[], port);
    let pid = service.process().pid();
    let (soft, hard) = open_file_limits(pid);
    assert_ne!(soft, "256", "the soft limit was not raised");
    assert_eq!(soft, hard, "soft {soft}, hard {hard}");
    service.stop();
}

#[test]
fn a_client_is_served_while_someone_holds_every_connection() {
    let service = Service::start(BIN, &["--max-connections", "20"]);
    // 50 connections that send nothing: far more than the cap.
    let held: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(("127.0.0.1", service.port())).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..5 {
        let answer = exchange(
            &service,
            &post(
                "/count",
                "Content-Length: 11\r\nConnection: close\r\n",
                b"{\"s\":\"abc\"}",
            ),
        );
        assert_eq!(statuses(&answer), ["200"], "{answer}");
    }
    drop(held);
    service.stop();
}

/// The process's peak resident memory, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("a VmHWM line")
}

/// A field the service does not read is skipped, not built: sixteen bodies of a megabyte each,
/// all of it an ignored array, cost the service little more than the bodies themselves.
#[test]
fn large_ignored_fields_are_not_built_in_memory() {
    let mut service = Service::start(BIN, &[]);
    let pid = service.process().pid();
    // Just under the 1 MiB limit.
    let body = format!(
        r#"{{"pad":[{}0],"s":"abc"}}"#,
        "12345,".repeat(1024 * 1024 / 6 - 10)
    );
    let request = post(
        "/count",
        &format!("Content-Length: {}\r\nConnection: close\r\n", body.len()),
        body.as_bytes(),
    );
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| exchange(&service, &request)))
            .collect();
        for sender in senders {
            let answer = sender.join().expect("a sender");
            assert_eq!(statuses(&answer), ["200"], "{answer}");
            assert!(answer.ends_with("{\"v\":3}\n"), "{answer}");
        }
    });
    let peak = peak_rss_kib(pid);
    // The bodies alone are 16 MiB, and the process about 18 MiB at its peak; building the
    // ignored arrays took it to 45 MiB (and further in longer runs).
    assert!(peak < 32 * 1024, "peak RSS {peak} KiB");
    service.stop();
}
