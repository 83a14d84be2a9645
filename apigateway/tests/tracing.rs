//! Request tracing through the gateway: a call to the gateway and the instance that answers it
//! are one trace, exported by each process to a real OTLP receiver, with a span per hop.

mod support;

use std::time::Duration;

use support::{addsvc_with, gateway, stringsvc_with, until_registered};
use testkit::etcd::Etcd;
use testkit::http::HttpClient;
use testkit::otlp::{ReceivedSpan, Receiver};

fn one<'a>(
    spans: &'a [ReceivedSpan],
    what: &str,
    keep: impl Fn(&ReceivedSpan) -> bool,
) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|span| keep(span)).collect();
    assert_eq!(
        found.len(),
        1,
        "one {what}:\n{}",
        testkit::otlp::tree(spans)
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace_with_a_span_per_hop() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let etcd = Etcd::start();
    let add = addsvc_with(
        &etcd.endpoint(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "addsvc"),
        ],
    );
    let strings = stringsvc_with(
        &etcd.endpoint(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "stringsvc"),
        ],
    );
    until_registered(&etcd, "addsvc", &[&add.address], Duration::from_secs(5)).await;
    until_registered(
        &etcd,
        "stringsvc",
        &[&strings.address],
        Duration::from_secs(5),
    )
    .await;
    let otlp = format!("--otlp-endpoint={endpoint}");
    let gateway = gateway(&etcd.endpoint(), &[&otlp]);
    let http = HttpClient::new();

    // addsvc over gRPC: gateway server → gateway client → addsvc server → addsvc's endpoint.
    let answer = http
        .post_json(&gateway.url("/addsvc/sum"), r#"{"a":1,"b":2}"#)
        .await;
    assert_eq!(answer.body.trim(), r#"{"v":3}"#);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.service == "addsvc" && s.kind == "server")
            && spans
                .iter()
                .any(|s| s.service == "apigateway" && s.kind == "server")
    });
    let entry = one(&spans, "gateway server span", |s| {
        s.service == "apigateway" && s.kind == "server"
    });
    let call = one(&spans, "gateway client span", |s| {
        s.service == "apigateway" && s.kind == "client"
    });
    let served = one(&spans, "addsvc server span", |s| {
        s.service == "addsvc" && s.kind == "server"
    });
    assert!(entry.parent_span_id.is_empty(), "{entry:?}");
    assert_eq!(entry.name, "sum");
    assert_eq!(entry.attribute("url.path"), Some("/addsvc/sum"));
    assert_eq!(entry.attribute("http.response.status_code"), Some("200"));
    assert_eq!(call.parent_span_id, entry.span_id);
    assert_eq!(call.attribute("rpc.system"), Some("grpc"));
    assert_eq!(call.attribute("rpc.method"), Some("Sum"));
    assert_eq!(served.parent_span_id, call.span_id);
    assert_eq!(served.attribute("rpc.grpc.status_code"), Some("0"));
    for span in spans.iter().filter(|s| s.service != "stringsvc") {
        assert_eq!(span.trace_id, entry.trace_id, "{span:?}");
        assert!(!span.error, "{span:?}");
    }
    let before = spans.len();

    // stringsvc over HTTP: gateway server → gateway client → instance server.
    let answer = http
        .post_json(&gateway.url("/stringsvc/uppercase"), r#"{"s":"hello"}"#)
        .await;
    assert_eq!(answer.body.trim(), r#"{"v":"HELLO","err":null}"#);
    let spans = receiver.wait_for(Duration::from_secs(10), |spans| {
        spans
            .iter()
            .any(|s| s.service == "stringsvc" && s.kind == "server")
            && spans.len() >= before + 3
    });
    let entry = one(&spans, "gateway uppercase span", |s| {
        s.service == "apigateway" && s.kind == "server" && s.name == "uppercase"
    });
    let call = one(&spans, "gateway uppercase call", |s| {
        s.service == "apigateway" && s.kind == "client" && s.name == "uppercase"
    });
    let served = one(&spans, "instance span", |s| {
        s.service == "stringsvc" && s.kind == "server"
    });
    assert!(entry.parent_span_id.is_empty(), "{entry:?}");
    assert_eq!(call.parent_span_id, entry.span_id);
    assert_eq!(served.parent_span_id, call.span_id);
    assert_eq!(served.trace_id, entry.trace_id);
    let instance_url = format!("http://{}/uppercase", strings.address);
    assert_eq!(call.attribute("url.full"), Some(instance_url.as_str()));
    assert_eq!(served.attribute("http.response.status_code"), Some("200"));
}
