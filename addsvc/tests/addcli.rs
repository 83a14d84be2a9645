//! `addcli` as a user runs it, against the real `addsvc`, on every transport.

mod support;

use support::Addsvc;
use testkit::process::run;

const CLI: &str = env!("CARGO_BIN_EXE_addcli");

#[test]
fn prints_go_kits_lines_on_every_transport() {
    let svc = Addsvc::start(&["-thrift-protocol", "compact", "-thrift-framed"]);
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let (h, g, j, t) = (
        addr(svc.http),
        addr(svc.grpc),
        addr(svc.jsonrpc),
        addr(svc.thrift),
    );
    for transport in [
        vec!["-http-addr", &h],
        vec!["-grpc-addr", &g],
        vec!["--jsonrpc-addr", &j],
        vec![
            "-thrift-addr",
            &t,
            "-thrift-protocol",
            "compact",
            "-thrift-framed",
        ],
    ] {
        let with = |rest: &[&str]| {
            let mut args = transport.clone();
            args.extend_from_slice(rest);
            run(CLI, &args)
        };
        let sum = with(&["1", "2"]);
        assert_eq!(
            (sum.code, sum.stdout.as_str()),
            (Some(0), "1 + 2 = 3\n"),
            "{transport:?} {}",
            sum.stderr
        );
        let negative = with(&["--", "-5", "2"]);
        assert_eq!(
            negative.stdout, "-5 + 2 = -3\n",
            "{transport:?} {}",
            negative.stderr
        );
        let concat = with(&["-method", "concat", "a\"b", "c"]);
        assert_eq!(
            concat.stdout, "\"a\\\"b\" + \"c\" = \"a\\\"bc\"\n",
            "{transport:?}"
        );
        let zeroes = with(&["0", "0"]);
        assert_eq!(
            (zeroes.code, zeroes.stderr.as_str()),
            (Some(1), "error: can't sum two zeroes\n"),
            "{transport:?}"
        );
        let long = with(&["-method=concat", "hello", "world!"]);
        assert_eq!(
            long.stderr, "error: result exceeds maximum size\n",
            "{transport:?}"
        );
        let not_a_number = with(&["one", "2"]);
        assert_eq!(not_a_number.code, Some(1), "{transport:?}");
        assert!(
            not_a_number
                .stderr
                .starts_with("error: invalid integer \"one\""),
            "{}",
            not_a_number.stderr
        );
        let method = with(&["-method", "divide", "1", "2"]);
        assert_eq!(method.stderr, "error: invalid method \"divide\"\n");
    }
    svc.service.stop();
}

#[test]
fn mistakes_are_one_line_errors() {
    let none = run(CLI, &["1", "2"]);
    assert_eq!(
        (none.code, none.stderr.as_str()),
        (Some(1), "error: no remote address specified\n")
    );
    let json = run(
        CLI,
        &[
            "-thrift-addr",
            "127.0.0.1:1",
            "-thrift-protocol",
            "json",
            "1",
            "2",
        ],
    );
    assert_eq!(json.code, Some(2));
    assert!(
        json.stderr
            .contains("not supported by the Rust Thrift library"),
        "{}",
        json.stderr
    );
    let missing = run(CLI, &["-http-addr", "127.0.0.1:1", "1"]);
    assert_eq!(missing.code, Some(2));
    let dead = format!("127.0.0.1:{}", testkit::process::free_port());
    let refused = run(CLI, &["-grpc-addr", &dead, "1", "2"]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .starts_with("error: rpc error: code = Unavailable"),
        "{}",
        refused.stderr
    );
    let help = testkit::process::help_text(CLI);
    for flag in [
        "--http-addr",
        "--grpc-addr",
        "--jsonrpc-addr",
        "--thrift-addr",
        "--thrift-protocol",
        "--thrift-buffer",
        "--thrift-framed",
        "--method",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}
