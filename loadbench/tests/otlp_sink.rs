//! The benchmark's collector, as the benchmark uses it: started on a free port, sent spans over
//! OTLP/gRPC, stopped with SIGTERM, its count read from its last line.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn spans(names: &[&str]) -> ScopeSpans {
    ScopeSpans {
        spans: names
            .iter()
            .map(|name| Span {
                name: (*name).to_owned(),
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                ..Span::default()
            })
            .collect(),
        ..ScopeSpans::default()
    }
}

#[tokio::test]
async fn it_counts_the_spans_and_batches_it_was_sent_and_says_so_when_stopped() {
    let mut sink = Command::new(env!("CARGO_BIN_EXE_otlp-sink"))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start otlp-sink");
    let mut stderr = BufReader::new(sink.stderr.take().expect("its stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("its first line");
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("expected where it listens, got {first:?}"))
        .to_owned();

    let mut client = TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to the sink");
    let two_scopes = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![spans(&["a", "b"]), spans(&["c"])],
            ..ResourceSpans::default()
        }],
    };
    client.export(two_scopes).await.expect("first batch taken");
    let two_resources = ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                scope_spans: vec![spans(&["d"])],
                ..ResourceSpans::default()
            },
            ResourceSpans::default(),
        ],
    };
    client
        .export(two_resources)
        .await
        .expect("second batch taken");

    // Stopped while the client still holds its connection, as the traced instance does.
    kill(Pid::from_raw(sink.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = sink.try_wait().expect("its status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = sink.kill();
            panic!("otlp-sink did not exit within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(client);
    let mut out = String::new();
    sink.stdout
        .take()
        .expect("its stdout")
        .read_to_string(&mut out)
        .expect("read its stdout");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(status.success(), "exited with {status}; stderr: {rest}");
    assert_eq!(out.trim(), r#"{"batches":2,"spans":4}"#);
}

#[test]
fn it_says_what_is_wrong_with_an_address_it_cannot_use() {
    let out = Command::new(env!("CARGO_BIN_EXE_otlp-sink"))
        .arg("localhost:port")
        .output()
        .expect("run otlp-sink");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"error: invalid address "localhost:port""#),
        "{stderr}"
    );
}
