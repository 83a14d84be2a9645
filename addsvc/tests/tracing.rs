//! Request tracing across real processes: `addcli` → `addsvc` over gRPC, HTTP and JSON-RPC, each
//! call one trace of two spans, exported to a real OTLP receiver.

mod support;

use std::time::Duration;

use support::Addsvc;
use testkit::otlp::{ReceivedSpan, Receiver};
use testkit::process::run;

const CLI: &str = env!("CARGO_BIN_EXE_addcli");

fn pair<'a>(spans: &'a [ReceivedSpan], name: &str) -> (&'a ReceivedSpan, &'a ReceivedSpan) {
    let find = |service: &str, kind: &str| {
        spans
            .iter()
            .find(|s| s.service == service && s.kind == kind && s.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind} span {name} from {service}:\n{}",
                    testkit::otlp::tree(spans)
                )
            })
    };
    (find("addcli", "client"), find("addsvc", "server"))
}

#[test]
fn each_addcli_call_is_one_trace_across_both_processes() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let svc = Addsvc::start(&["--otlp-endpoint", &endpoint]);
    let addr = |port: u16| format!("127.0.0.1:{port}");
    let (g, h, j) = (addr(svc.grpc), addr(svc.http), addr(svc.jsonrpc));
    for args in [
        vec!["-grpc-addr", g.as_str(), "1", "2"],
        vec!["-http-addr", h.as_str(), "3", "4"],
        vec!["-jsonrpc-addr", j.as_str(), "-method", "concat", "a", "b"],
    ] {
        let mut all = args.clone();
        all.extend(["--otlp-endpoint", endpoint.as_str()]);
        let called = run(CLI, &all);
        assert_eq!(called.code, Some(0), "{args:?}: {}", called.stderr);
    }
    // Two spans of the transports per call, and addsvc's endpoint's own.
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 9);

    // gRPC: named by the method's path, with the RPC conventions' attributes.
    let (client, server) = pair(&spans, "pb.Add/Sum");
    for span in [client, server] {
        assert_eq!(span.attribute("rpc.system"), Some("grpc"));
        assert_eq!(span.attribute("rpc.service"), Some("pb.Add"));
        assert_eq!(span.attribute("rpc.method"), Some("Sum"));
        assert_eq!(span.attribute("rpc.grpc.status_code"), Some("0"));
    }
    assert!(client.parent_span_id.is_empty(), "addcli starts the trace");
    assert_eq!(server.trace_id, client.trace_id);
    assert_eq!(server.parent_span_id, client.span_id);
    // Inside the transport's span, the endpoint's (Go kit's TraceEndpoint "Sum").
    let work = spans
        .iter()
        .find(|s| s.name == "Sum" && s.kind == "internal" && s.parent_span_id == server.span_id)
        .unwrap_or_else(|| panic!("no Sum span:\n{}", testkit::otlp::tree(&spans)));
    assert_eq!((work.service.as_str(), work.error), ("addsvc", false));

    // HTTP: named by the endpoint.
    let (client, server) = pair(&spans, "sum");
    assert_eq!(server.parent_span_id, client.span_id);
    assert_eq!(server.trace_id, client.trace_id);
    assert_eq!(client.attribute("http.response.status_code"), Some("200"));
    assert_eq!(server.attribute("url.path"), Some("/sum"));

    // JSON-RPC: named by the method.
    let (client, server) = pair(&spans, "concat");
    assert_eq!(server.parent_span_id, client.span_id);
    assert_eq!(server.attribute("rpc.system"), Some("jsonrpc"));

    // addsvc's log line of each call names the call's trace and span.
    let (_, grpc_server) = pair(&spans, "pb.Add/Sum");
    let log = svc.service.stop();
    let ids = format!(
        "trace_id={} span_id={}",
        grpc_server.trace_id, grpc_server.span_id
    );
    assert!(log.lines().any(|l| l.contains(&ids)), "{ids} in\n{log}");
}

#[test]
fn failures_are_told_apart_in_the_spans() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let svc = Addsvc::start(&["--otlp-endpoint", &endpoint]);
    let g = format!("127.0.0.1:{}", svc.grpc);
    // Go kit's addsvc refuses sums of 1e12 and more: a business error, carried in an OK reply,
    // so the transport's spans are not failures.
    let called = run(
        CLI,
        &[
            "-grpc-addr",
            &g,
            "--otlp-endpoint",
            &endpoint,
            "1000000000000",
            "1",
        ],
    );
    assert_eq!(called.code, Some(1), "{}", called.stderr);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 3);
    let (client, server) = pair(&spans, "pb.Add/Sum");
    assert_eq!(server.parent_span_id, client.span_id);
    assert_eq!(server.attribute("rpc.grpc.status_code"), Some("0"));
    assert!(!client.error && !server.error);
    svc.service.stop();

    // Nobody listening: the client's span fails, with the kind of failure.
    let nowhere = format!("127.0.0.1:{}", testkit::process::free_port());
    let called = run(
        CLI,
        &[
            "-grpc-addr",
            &nowhere,
            "--otlp-endpoint",
            &endpoint,
            "1",
            "2",
        ],
    );
    assert_eq!(called.code, Some(1), "{}", called.stderr);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| spans.len() >= 4);
    let failed = spans.last().expect("the failed call's span");
    assert_eq!(
        (failed.service.as_str(), failed.kind, failed.error),
        ("addcli", "client", true),
        "{failed:?}"
    );
    assert_eq!(failed.attribute("error.type"), Some("unavailable"));
    assert_eq!(failed.attribute("rpc.grpc.status_code"), Some("14"));
}
