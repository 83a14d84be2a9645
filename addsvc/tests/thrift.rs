//! Thrift on the real binary, driven by hand-written binary-protocol bytes rather than our
//! generated code: Go kit's calls, business errors, exceptions, garbage, truncated frames.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use support::Addsvc;
use support::thrift::{Value, call, closed, concat_args, connect, message, sum_args};

const CALL: u8 = 1;
const REPLY: u8 = 2;
const EXCEPTION: u8 = 3;

fn reply(value: Value, err: &str) -> Vec<(i16, Value)> {
    vec![(
        0,
        Value::Struct(vec![(1, value), (2, Value::Str(err.into()))]),
    )]
}

#[test]
fn answers_a_client_written_by_hand() {
    let svc = Addsvc::start(&[]);
    let mut conn = connect(svc.thrift);
    let sum = call(&mut conn, &message(CALL, "Sum", 7, &sum_args(1, 2)));
    assert_eq!((sum.kind, sum.name.as_str(), sum.seq), (REPLY, "Sum", 7));
    assert_eq!(sum.fields, reply(Value::I64(3), ""));
    // The same connection, call after call; negative sums crash nothing.
    let negative = call(&mut conn, &message(CALL, "Sum", 8, &sum_args(-5, 2)));
    assert_eq!(negative.fields, reply(Value::I64(-3), ""));
    let concat = call(
        &mut conn,
        &message(CALL, "Concat", 9, &concat_args("1", "2")),
    );
    assert_eq!(concat.fields, reply(Value::Str("12".into()), ""));
    // Business errors in the reply's err, as Go kit.
    for (bytes, value, err) in [
        (
            message(CALL, "Sum", 10, &sum_args(0, 0)),
            Value::I64(0),
            "can't sum two zeroes",
        ),
        (
            message(CALL, "Sum", 11, &sum_args(2_147_483_647, 1)),
            Value::I64(0),
            "integer overflow",
        ),
        (
            message(CALL, "Concat", 12, &concat_args("hello", "world!")),
            Value::Str(String::new()),
            "result exceeds maximum size",
        ),
    ] {
        assert_eq!(call(&mut conn, &bytes).fields, reply(value, err));
    }
    // An unknown method is an exception, UNKNOWN_METHOD (1), and the connection goes on.
    let unknown = call(&mut conn, &message(CALL, "Nope", 13, &[0]));
    assert_eq!(unknown.kind, EXCEPTION);
    assert!(unknown.fields.contains(&(2, Value::I32(1))), "{unknown:?}");
    assert_eq!(
        call(&mut conn, &message(CALL, "Sum", 14, &sum_args(2, 2))).fields,
        reply(Value::I64(4), "")
    );
    svc.service.stop();
}

#[test]
fn garbage_closes_that_connection_and_nothing_else() {
    let svc = Addsvc::start(&[]);
    let mut good = connect(svc.thrift);
    assert_eq!(
        call(&mut good, &message(CALL, "Sum", 1, &sum_args(1, 2))).fields,
        reply(Value::I64(3), "")
    );
    // Not Thrift at all.
    let mut bad = connect(svc.thrift);
    bad.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    assert!(closed(&mut bad));
    // A string that claims 2 GiB.
    let mut greedy = connect(svc.thrift);
    let mut bytes = message(CALL, "Concat", 1, &[]);
    bytes.extend_from_slice(&[11, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
    greedy.write_all(&bytes).expect("write");
    assert!(closed(&mut greedy));
    // A call cut short: the peer closes its side mid-message.
    let mut truncated = connect(svc.thrift);
    truncated
        .write_all(&message(CALL, "Sum", 1, &sum_args(1, 2))[..15])
        .expect("write");
    truncated.shutdown(Shutdown::Write).expect("half-close");
    assert!(closed(&mut truncated));
    // The first connection never noticed.
    assert_eq!(
        call(&mut good, &message(CALL, "Sum", 2, &sum_args(2, 3))).fields,
        reply(Value::I64(5), "")
    );
    svc.service.stop();
}

#[test]
fn framed_transport_refuses_truncated_and_oversized_frames() {
    let svc = Addsvc::start(&["-thrift-framed"]);
    let framed = |bytes: &[u8]| {
        let mut out = (bytes.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    };
    let mut conn = connect(svc.thrift);
    conn.write_all(&framed(&message(CALL, "Sum", 3, &sum_args(20, 22))))
        .expect("write");
    let mut length = [0u8; 4];
    std::io::Read::read_exact(&mut conn, &mut length).expect("a frame");
    let answer = support::thrift::read_reply(&mut conn);
    assert_eq!((answer.seq, answer.fields), (3, reply(Value::I64(42), "")));
    assert_eq!(
        i32::from_be_bytes(length) as usize,
        4 + 3 + 4 + 4 + 1 + 2 + 1 + 2 + 8 + 1 + 2 + 4 + 1 + 1
    );

    // A frame that claims more than 1 MiB: closed before anything is allocated.
    let mut huge = connect(svc.thrift);
    huge.write_all(&(i32::MAX).to_be_bytes()).expect("write");
    assert!(closed(&mut huge));
    // A frame cut short.
    let mut truncated = connect(svc.thrift);
    let whole = framed(&message(CALL, "Sum", 4, &sum_args(1, 2)));
    truncated
        .write_all(&whole[..whole.len() - 5])
        .expect("write");
    truncated.shutdown(Shutdown::Write).expect("half-close");
    assert!(closed(&mut truncated));
    // Unframed bytes to a framed server: the version word reads as a negative length.
    let mut unframed = connect(svc.thrift);
    unframed
        .write_all(&message(CALL, "Sum", 5, &sum_args(1, 2)))
        .expect("write");
    assert!(closed(&mut unframed));
    svc.service.stop();
}

#[test]
fn a_refused_call_is_go_kits_internal_error_exception() {
    let svc = Addsvc::start(&["--sum-rate", "1", "--sum-burst", "1"]);
    let mut conn = connect(svc.thrift);
    assert_eq!(
        call(&mut conn, &message(CALL, "Sum", 1, &sum_args(1, 2))).kind,
        REPLY
    );
    let limited = call(&mut conn, &message(CALL, "Sum", 2, &sum_args(1, 2)));
    assert_eq!((limited.kind, limited.seq), (EXCEPTION, 2));
    assert_eq!(
        limited.fields,
        vec![
            (
                1,
                Value::Str("Internal error processing Sum: rate limit exceeded".into())
            ),
            (2, Value::I32(6)),
        ]
    );
    svc.service.stop();
}

#[test]
fn sigterm_closes_idle_connections_at_once() {
    let svc = Addsvc::start(&[]);
    let mut idle = connect(svc.thrift);
    assert_eq!(
        call(&mut idle, &message(CALL, "Sum", 1, &sum_args(1, 2))).kind,
        REPLY
    );
    let started = Instant::now();
    svc.service.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(closed(&mut idle));
}

#[test]
fn protocols_the_rust_library_lacks_are_refused_in_one_line() {
    let refused = testkit::process::run(support::BIN, &["-thrift-protocol", "json"]);
    assert_eq!(refused.code, Some(2));
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("not supported by the Rust Thrift library"),
        "{}",
        refused.stderr
    );
}
