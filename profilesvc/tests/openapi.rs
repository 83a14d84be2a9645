//! The OpenAPI document against the service: it describes every route the router serves and
//! nothing else, it is what `/openapi.json` serves, and an API fuzzer (schemathesis) driven by
//! it finds no answer it does not promise, against the real binary.

use std::collections::BTreeSet;
use std::process::Command;

use http::{Method, StatusCode};
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use profilesvc::repository::MemoryRepository;
use testkit::http::{HttpClient, TestServer};
use testkit::process::Service;

const BIN: &str = env!("CARGO_BIN_EXE_profilesvc");

/// The document's operations, as `METHOD path`.
fn documented() -> BTreeSet<String> {
    let document = serde_json::to_value(profilesvc::openapi::document()).expect("serializes");
    let paths = document["paths"].as_object().expect("paths").clone();
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// The router's routes, as `METHOD path`.
fn served() -> BTreeSet<String> {
    let registry = Registry::new();
    let svc = profilesvc::service(MemoryRepository::new(), &Logger::discard(), &registry);
    profilesvc::routes(svc, &registry)
        .table()
        .iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect()
}

#[test]
fn the_document_describes_every_route_and_only_those() {
    let (documented, served) = (documented(), served());
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes without a description: {undocumented:?}; descriptions without a route: {unserved:?}"
    );
    assert_eq!(served.len(), 11, "{served:?}");
}

#[tokio::test]
async fn every_documented_operation_reaches_an_endpoint() {
    let app = profilesvc::app(
        MemoryRepository::new(),
        &Logger::discard(),
        &Registry::new(),
    );
    let server = TestServer::start(app).await;
    let client = HttpClient::new();
    for operation in documented() {
        let (method, path) = operation.split_once(' ').expect("METHOD path");
        let path = path
            .replace("{id}", "some%20id")
            .replace("{addressID}", "an%2Fid");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let answer = client.send(method, &server.url(&path), "{}", &[]).await;
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{operation}: {answer:?}"
        );
        assert!(
            !answer.body.contains("no route for"),
            "{operation}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn the_service_serves_its_document() {
    let svc = Service::start(BIN, &[]);
    let answer = HttpClient::new()
        .send(Method::GET, &svc.url("/openapi.json"), "", &[])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let served = answer.json();
    assert_eq!(
        served,
        serde_json::to_value(profilesvc::openapi::document()).expect("serializes")
    );
    assert!(
        served["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    // Every operation says what its errors look like.
    for (path, item) in served["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.contains_key("200"), "{method} {path}");
            if path.starts_with("/profiles") {
                assert!(responses.contains_key("400"), "{method} {path}");
            }
        }
    }
    svc.stop();
}

/// Runs schemathesis against `svc`, with every check its configuration keeps, and fails with
/// its report when it finds anything.
fn fuzz(svc: &Service) {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let home = tempfile::tempdir().expect("temp dir");
    let output = Command::new(testkit::tools::schemathesis())
        .args(["--config-file", config, "run", &svc.url("/openapi.json")])
        .args(["--max-examples", "60", "--seed", "20260101", "--no-color"])
        // One worker: schemathesis's shared caches are not safe across workers.
        .args(["--workers", "1"])
        // schemathesis keeps its example database under the working folder; keep it out of
        // the tree.
        .current_dir(home.path())
        .env("NO_PROXY", "*")
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    // Its report ends with the failures and a summary; tracebacks before them can be long.
    let tail: Vec<&str> = report.lines().rev().take(150).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    assert!(
        output.status.success(),
        "schemathesis found problems ({}):\n{}\n{}",
        output.status,
        tail.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(" passed"), "{report}");
}

#[test]
fn a_fuzzer_driven_by_the_document_finds_nothing_in_memory() {
    let svc = Service::start(BIN, &[]);
    fuzz(&svc);
    svc.stop();
}

#[test]
fn a_fuzzer_driven_by_the_document_finds_nothing_with_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("profiles.db");
    let svc = Service::start(BIN, &["--db", db.to_str().expect("utf-8")]);
    fuzz(&svc);
    svc.stop();
}
