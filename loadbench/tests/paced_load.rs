//! The benchmark's paced load generator, as the benchmark runs it: against a server on a free
//! port, for a second, its JSON line read from its output and checked against what the server
//! itself counted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the test server answered, by kind.
#[derive(Default)]
struct Served {
    ok: AtomicU64,
    inband: AtomicU64,
    failed: AtomicU64,
    /// Requests that were not the POST /uppercase with the JSON body asked for.
    unexpected: AtomicU64,
}

/// Reads one request; `None` when the client closed the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_owned();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((request_line, String::from_utf8(body).ok()?))
}

/// Serves each connection on a thread of its own, answering in turn: 200 with a result, 200
/// with an in-band error, 500.
fn server() -> (String, Arc<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let served = Arc::new(Served::default());
    let counts = served.clone();
    std::thread::spawn(move || {
        for (turn, stream) in listener.incoming().flatten().enumerate() {
            let counts = counts.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let mut n = turn;
                while let Some((request_line, body)) = read_request(&mut reader) {
                    if request_line != "POST /uppercase HTTP/1.1"
                        || body != r#"{"s":"hello, world"}"#
                    {
                        counts.unexpected.fetch_add(1, Ordering::SeqCst);
                    }
                    let (status, body, count) = match n % 3 {
                        0 => ("200 OK", r#"{"v":"HELLO, WORLD","err":null}"#, &counts.ok),
                        1 => ("200 OK", r#"{"v":"","err":"Empty string"}"#, &counts.inband),
                        _ => ("500 Internal Server Error", "{}", &counts.failed),
                    };
                    n += 1;
                    // Counted before answering: once the client has its answer, it may stop.
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if writer.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, served)
}

fn paced_load(args: &[&str]) -> (std::process::ExitStatus, serde_json::Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_paced-load"))
        .args(args)
        .output()
        .expect("run paced-load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(serde_json::Value::Null);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status, report, stderr)
}

#[test]
fn it_reports_every_answer_the_server_gave_with_its_kind() {
    let (addr, served) = server();
    let (status, report, stderr) = paced_load(&[
        &addr,
        "--connections",
        "3",
        "--mean-us",
        "1000",
        "--duration",
        "1",
    ]);
    assert!(status.success(), "exit {status}: {stderr}");
    let count = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} in {report}"))
    };
    let (ok, inband, failed) = (
        served.ok.load(Ordering::SeqCst),
        served.inband.load(Ordering::SeqCst),
        served.failed.load(Ordering::SeqCst),
    );
    assert_eq!(
        served.unexpected.load(Ordering::SeqCst),
        0,
        "requests as asked"
    );
    // A client stops only between a request and the next: every request sent was answered.
    assert_eq!(count("requests"), ok + inband + failed, "{report}");
    assert!(
        count("requests") >= 3,
        "each client made requests: {report}"
    );
    assert_eq!(count("non2xx"), failed, "{report}");
    assert_eq!(count("inband_errors"), inband, "{report}");
    assert_eq!(
        count("connect_errors") + count("read_errors"),
        0,
        "{report}"
    );
    assert!(count("p50_us") <= count("p99_us") && count("p99_us") <= count("max_us"));
    assert!(count("duration_us") >= 1_000_000, "{report}");
}

#[test]
fn with_nothing_listening_it_counts_failed_connections_and_still_reports() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let (status, report, stderr) = paced_load(&[&addr, "--connections", "2", "--duration", "1"]);
    assert!(status.success(), "exit {status}: {stderr}");
    assert_eq!(report["requests"], 0, "{report}");
    assert!(report["connect_errors"].as_u64() > Some(0), "{report}");
}

#[test]
fn a_mistaken_command_line_is_refused_with_the_usage() {
    let (status, report, stderr) = paced_load(&["127.0.0.1:1", "--mean-us", "soon"]);
    assert_eq!(status.code(), Some(2));
    assert!(report.is_null(), "no report: {report}");
    assert!(
        stderr.contains("--mean-us needs a whole number"),
        "{stderr}"
    );
    assert!(stderr.contains("usage: paced-load HOST:PORT"), "{stderr}");
}

#[test]
fn help_says_how_to_use_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_paced-load"))
        .arg("--help")
        .output()
        .expect("run paced-load");
    assert!(output.status.success(), "exit {}", output.status);
    let usage = String::from_utf8_lossy(&output.stdout);
    assert!(usage.starts_with("usage: paced-load HOST:PORT"), "{usage}");
    assert!(usage.contains("--mean-us N"), "{usage}");
}
