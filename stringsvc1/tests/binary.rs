//! The `stringsvc1` binary as a user runs it: flags, start-up errors, signals.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::process::{PATIENCE, Service, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc1");

/// Starts the binary with `args`, which name `port`, and waits until it listens there.
fn start(args: &[&str], port: u16) -> Service {
    Service::start_on(BIN, args, &[], port)
}

/// Runs the binary to completion and returns its exit code and everything it printed.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let finished = testkit::process::run(BIN, args);
    (finished.code, finished.stdout, finished.stderr)
}

fn uppercase(port: u16, s: &str) -> String {
    let body = format!(r#"{{"s":"{s}"}}"#);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!(
        "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("write");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).expect("read");
    answer
}

/// Reads one HTTP response from a kept-alive connection: the head, then `Content-Length` bytes.
fn read_response(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("read"),
            1,
            "connection closed early"
        );
        raw.push(byte[0]);
    }
    let head = String::from_utf8(raw).expect("utf-8");
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().expect("a length"));
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("body");
    head + &String::from_utf8(body).expect("utf-8")
}

/// Sends the head of an uppercase request and waits for the server's `100 Continue`, which it
/// sends when the service starts reading the body: from then on the request is in flight.
fn start_request_in_flight(port: u16, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream
}

fn wait_until_refused(port: u16) {
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "the listener never closed");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serves_until_sigterm_then_exits_zero() {
    let port = free_port();
    let service = start(&["--listen", &format!("127.0.0.1:{port}")], port);
    assert!(uppercase(port, "hi").ends_with("{\"v\":\"HI\",\"err\":null}\n"));

    // A kept-alive connection that has been served and now sits idle must not hold up the exit.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let body = r#"{"s":"keep"}"#;
    let request = format!(
        "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    idle.write_all(request.as_bytes()).expect("write");
    assert!(read_response(&mut idle).ends_with("{\"v\":\"KEEP\",\"err\":null}\n"));

    assert_eq!(
        service.stop(),
        format!("stringsvc1 listening on 127.0.0.1:{port}\n")
    );
}

/// kit-core's `libm` feature: the service's few maths functions are in its binary, and the
/// system's maths library, half a MiB of resident memory once loaded, stays out.
#[test]
fn runs_without_the_system_maths_library() {
    let port = free_port();
    let service = start(&["--listen", &format!("127.0.0.1:{port}")], port);
    assert!(uppercase(port, "hi").ends_with("{\"v\":\"HI\",\"err\":null}\n"));
    service.assert_no_libm();
    service.stop();
}

#[test]
fn a_request_in_flight_is_answered_before_exit() {
    let port = free_port();
    let mut service = start(&["--listen", &format!("127.0.0.1:{port}")], port);
    let body = r#"{"s":"in flight"}"#;
    let mut in_flight = start_request_in_flight(port, body);

    service.process().signal(Signal::SIGTERM).expect("signal");
    wait_until_refused(port);
    in_flight
        .write_all(body.as_bytes())
        .expect("the rest of the body");
    let answer = read_response(&mut in_flight);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.ends_with("{\"v\":\"IN FLIGHT\",\"err\":null}\n"),
        "{answer}"
    );

    let status = service.process().wait().expect("exits");
    assert!(status.success(), "{status}: {}", service.output());
}

/// A request still running at the drain deadline is answered 503 rather than dropped, and the
/// exit status says that something was cut off.
#[test]
fn the_drain_deadline_bounds_the_wait_and_cut_off_requests_get_503() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let service = start(&["--listen", &listen, "--drain-timeout", "100ms"], port);
    // Its body never comes: the request waits in its decoder until the deadline.
    let mut stuck = start_request_in_flight(port, r#"{"s":"never sent"}"#);

    let (status, output) = service.terminate();
    assert_eq!(status.code(), Some(1), "{output}");
    assert_eq!(
        output,
        format!(
            "stringsvc1 listening on {listen}\nstringsvc1: requests still in flight after 100ms were cut off\n"
        )
    );
    let answer = read_response(&mut stuck);
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with(
            "{\"error\":\"the service is shutting down and could not finish this request in time\"}\n"
        ),
        "{answer}"
    );
}

#[test]
fn a_second_signal_stops_it_at_once() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut service = start(&["--listen", &listen, "--drain-timeout", "1h"], port);
    let _stuck = start_request_in_flight(port, r#"{"s":"never sent"}"#);

    service.process().signal(Signal::SIGINT).expect("signal");
    wait_until_refused(port);
    service.process().signal(Signal::SIGINT).expect("signal");
    let status = service
        .process()
        .wait()
        .expect("exits without waiting an hour");
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        service.output(),
        format!(
            "stringsvc1 listening on {listen}\nstringsvc1: second signal: stopping without waiting for requests in flight\n"
        )
    );
}

#[test]
fn ctrl_c_stops_it_too() {
    let port = free_port();
    let mut service = start(&["--listen", &format!(":{port}")], port);
    service.process().signal(Signal::SIGINT).expect("signal");
    let status = service.process().wait().expect("exits");
    assert!(status.success(), "{status}: {}", service.output());
    assert_eq!(
        service.output(),
        format!("stringsvc1 listening on :{port}\n")
    );
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let taken = testkit::process::local_listener();
    let port = taken.local_addr().expect("addr").port();
    let (code, stdout, stderr) = run(&["--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("error: cannot listen on 127.0.0.1:{port}: Address already in use (os error 98)\n")
    );
}

/// The tests' own wait for a service to listen is not fooled by a stranger on its port: had
/// something else taken the port between `free_port` and the service's start, the test would
/// otherwise talk to that stranger (and fail later, puzzlingly) while the service had exited.
#[test]
fn waiting_for_a_service_sees_its_own_listener_not_a_strangers() {
    let taken = testkit::process::local_listener();
    let port = taken.local_addr().expect("addr").port();
    let mut command = std::process::Command::new(BIN);
    command.args(["--listen", &format!("127.0.0.1:{port}")]);
    let mut spawned = testkit::process::Spawned::start(command).expect("starts");
    let problem = spawned
        .wait_for_port(port)
        .expect_err("the port is this test's, not the service's");
    assert!(problem.contains("exited (exit status: 1)"), "{problem}");
    assert!(problem.contains("Address already in use"), "{problem}");
}

#[test]
fn a_bad_listen_address_is_one_clear_line_and_exit_2() {
    for (value, reason) in [
        (
            "8080",
            r#"missing ":" before the port; did you mean ":8080"?"#,
        ),
        (
            ":99999",
            r#"invalid port "99999": expected a number from 0 to 65535"#,
        ),
        (
            "nowhere",
            "expected :PORT or HOST:PORT, e.g. :8080 or 127.0.0.1:8080",
        ),
    ] {
        let (code, stdout, stderr) = run(&["--listen", value]);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stdout, "");
        assert_eq!(
            stderr,
            format!(
                "error: invalid value '{value}' for '--listen <ADDR>': {reason} (see --help)\n"
            )
        );
    }
    let (code, _, stderr) = run(&["--no-such-flag"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn an_unknown_host_is_a_clear_error() {
    let (code, _, stderr) = run(&["--listen", "no-such-host.invalid:8080"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("error: cannot listen on no-such-host.invalid:8080: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn help_explains_every_flag_and_the_defaults() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for expected in [
        "Usage: stringsvc1 [OPTIONS]",
        "--listen <ADDR>",
        ":PORT for every interface, or HOST:PORT for one",
        "[default: :8080]",
        "--drain-timeout <DURATION>",
        "--max-connections <N>",
        "[default: 10000]",
        "[default: 10s]",
        "curl -XPOST -d'{\"s\":\"hello, world\"}' localhost:8080/uppercase",
        "Ctrl-C or SIGTERM",
    ] {
        assert!(
            stdout.contains(expected),
            "--help lacks {expected:?}:\n{stdout}"
        );
    }
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        format!("stringsvc1 {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_drain_timeout_is_refused() {
    let (code, _, stderr) = run(&["--drain-timeout", "soon"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("error: invalid value 'soon' for '--drain-timeout <DURATION>': "),
        "{stderr}"
    );
}

#[test]
fn go_style_flags_work_too() {
    let port = free_port();
    let listen = format!("-listen=127.0.0.1:{port}");
    let service = start(&[&listen, "-drain-timeout", "1s"], port);
    assert!(uppercase(port, "go").ends_with("{\"v\":\"GO\",\"err\":null}\n"));
    assert_eq!(
        service.stop(),
        format!("stringsvc1 listening on 127.0.0.1:{port}\n")
    );
}

/// A request written whole on an idle keep-alive connection just before SIGTERM is answered,
/// and the answer says the connection closes. Repeated, because the loss was a race.
#[test]
fn a_request_sent_just_before_sigterm_on_a_kept_alive_connection_is_answered() {
    for round in 0..10 {
        let port = free_port();
        let mut service = start(&["--listen", &format!("127.0.0.1:{port}")], port);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let body = r#"{"s":"first"}"#;
        let request = format!(
            "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        assert!(read_response(&mut stream).contains("FIRST"));

        // The second request is on its way when the signal comes.
        let body = r#"{"s":"second"}"#;
        let request = format!(
            "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        service.process().signal(Signal::SIGTERM).expect("signal");
        let answer = read_response(&mut stream);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n")
                && answer.ends_with("SECOND\",\"err\":null}\n"),
            "round {round}: {answer:?}"
        );
        let status = service.process().wait().expect("exits");
        assert!(status.success(), "{status}: {}", service.output());
    }
}

/// Connections that sent their request just before SIGTERM, some still waiting in the
/// listener's queue, are all answered.
#[test]
fn requests_queued_at_sigterm_are_all_answered() {
    for round in 0..5 {
        let port = free_port();
        let mut service = start(&["--listen", &format!("127.0.0.1:{port}")], port);
        let body = r#"{"s":"queued"}"#;
        let request = format!(
            "POST /uppercase HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut streams: Vec<TcpStream> = (0..16)
            .map(|_| {
                let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                stream.write_all(request.as_bytes()).expect("write");
                stream
            })
            .collect();
        service.process().signal(Signal::SIGTERM).expect("signal");
        for (n, stream) in streams.iter_mut().enumerate() {
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            assert!(
                answer.starts_with("HTTP/1.1 200 OK\r\n"),
                "round {round}, connection {n}: {answer:?}"
            );
        }
        let status = service.process().wait().expect("exits");
        assert!(status.success(), "{status}: {}", service.output());
    }
}
