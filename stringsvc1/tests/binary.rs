//! The `stringsvc1` binary as a user runs it: flags, start-up errors, signals.

use std::process::Command;

use nix::sys::signal::Signal;
use testkit::process::{Spawned, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_stringsvc1");

fn start(args: &[&str]) -> Spawned {
    let mut command = Command::new(BIN);
    command.args(args);
    Spawned::start(command).expect("the binary starts")
}

/// Runs the binary to completion and returns its exit code and everything it printed.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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

#[test]
fn serves_until_sigterm_then_exits_zero() {
    let port = free_port();
    let mut service = start(&["--listen", &format!("127.0.0.1:{port}")]);
    service.wait_for_port(port).expect("listening");
    assert!(uppercase(port, "hi").ends_with("{\"v\":\"HI\",\"err\":null}\n"));

    // An idle keep-alive connection must not hold the shutdown up.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let status = service.terminate().expect("exits");
    assert!(status.success(), "{status}: {}", service.output());
    assert_eq!(
        service.output(),
        format!("stringsvc1 listening on 127.0.0.1:{port}\n")
    );
}

#[test]
fn ctrl_c_stops_it_too() {
    let port = free_port();
    let mut service = start(&["--listen", &format!(":{port}")]);
    service.wait_for_port(port).expect("listening");
    service.signal(Signal::SIGINT).expect("signal");
    let status = service.wait().expect("exits");
    assert!(status.success(), "{status}: {}", service.output());
    assert_eq!(
        service.output(),
        format!("stringsvc1 listening on :{port}\n")
    );
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let (code, stdout, stderr) = run(&["--listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, Some(1));
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("error: cannot listen on 127.0.0.1:{port}: Address already in use (os error 98)\n")
    );
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
