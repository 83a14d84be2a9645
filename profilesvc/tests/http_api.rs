//! The REST API as its users see it, over a real socket, with the profiles in memory and in
//! SQLite: every route, every error.

use http::{Method, StatusCode};
use kit_core::log::Logger;
use kit_core::metrics::Registry;
use profilesvc::repository::{MemoryRepository, SqliteRepository};
use testkit::http::{Answer, HttpClient, TestServer};

/// A server of the app in-process, and the folder of its database, if any.
struct Api {
    server: TestServer,
    client: HttpClient,
    _dir: Option<tempfile::TempDir>,
}

impl Api {
    async fn memory() -> Api {
        let app = profilesvc::app(
            MemoryRepository::new(),
            &Logger::discard(),
            &Registry::new(),
        );
        Api {
            server: TestServer::start(app).await,
            client: HttpClient::new(),
            _dir: None,
        }
    }

    async fn sqlite() -> Api {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = SqliteRepository::open(dir.path().join("profiles.db")).expect("open");
        let app = profilesvc::app(repo, &Logger::discard(), &Registry::new());
        Api {
            server: TestServer::start(app).await,
            client: HttpClient::new(),
            _dir: Some(dir),
        }
    }

    async fn both() -> [Api; 2] {
        [Api::memory().await, Api::sqlite().await]
    }

    async fn send(&self, method: Method, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        self.client
            .send(method, &self.server.url(path), body, &[])
            .await
    }
}

/// The answer is `status` with the JSON `body` (and Go's trailing newline).
#[track_caller]
fn assert_answer(answer: &Answer, status: u16, body: &str) {
    assert_eq!(
        (answer.status.as_u16(), answer.body.as_str()),
        (status, format!("{body}\n").as_str()),
        "{answer:?}"
    );
    assert_eq!(answer.header("content-type"), Some("application/json"));
}

/// The answer is `status` with an error body whose message starts with `message`.
#[track_caller]
fn assert_error(answer: &Answer, status: u16, message: &str) {
    assert_eq!(answer.status.as_u16(), status, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let error = answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.starts_with(message),
        "{error:?} does not start with {message:?}"
    );
}

#[tokio::test]
async fn go_kits_walkthrough_gets_go_kits_answers() {
    for api in Api::both().await {
        let answer = api
            .send(
                Method::POST,
                "/profiles/",
                r#"{"id":"1234","Name":"Go Kit"}"#,
            )
            .await;
        assert_answer(&answer, 200, "{}");
        let answer = api.send(Method::GET, "/profiles/1234", "").await;
        assert_answer(&answer, 200, r#"{"profile":{"id":"1234","name":"Go Kit"}}"#);

        let answer = api
            .send(
                Method::PUT,
                "/profiles/1234",
                r#"{"id":"1234","name":"Kit","addresses":[{"id":"home","location":"Here"}]}"#,
            )
            .await;
        assert_answer(&answer, 200, "{}");
        let answer = api.send(Method::GET, "/profiles/1234", "").await;
        assert_answer(
            &answer,
            200,
            r#"{"profile":{"id":"1234","name":"Kit","addresses":[{"id":"home","location":"Here"}]}}"#,
        );

        // PATCH changes what it names and keeps the rest.
        let answer = api
            .send(Method::PATCH, "/profiles/1234", r#"{"name":"Go Kit"}"#)
            .await;
        assert_answer(&answer, 200, "{}");
        let answer = api.send(Method::GET, "/profiles/1234", "").await;
        assert_answer(
            &answer,
            200,
            r#"{"profile":{"id":"1234","name":"Go Kit","addresses":[{"id":"home","location":"Here"}]}}"#,
        );

        let answer = api
            .send(
                Method::POST,
                "/profiles/1234/addresses/",
                r#"{"id":"work","location":"There"}"#,
            )
            .await;
        assert_answer(&answer, 200, "{}");
        let answer = api.send(Method::GET, "/profiles/1234/addresses/", "").await;
        assert_answer(
            &answer,
            200,
            r#"{"addresses":[{"id":"home","location":"Here"},{"id":"work","location":"There"}]}"#,
        );
        let answer = api
            .send(Method::GET, "/profiles/1234/addresses/work", "")
            .await;
        assert_answer(
            &answer,
            200,
            r#"{"address":{"id":"work","location":"There"}}"#,
        );
        for id in ["work", "home"] {
            let path = format!("/profiles/1234/addresses/{id}");
            assert_answer(&api.send(Method::DELETE, &path, "").await, 200, "{}");
        }
        // No addresses: `{}`, as Go kit's omitempty writes it.
        let answer = api.send(Method::GET, "/profiles/1234/addresses/", "").await;
        assert_answer(&answer, 200, "{}");

        assert_answer(
            &api.send(Method::DELETE, "/profiles/1234", "").await,
            200,
            "{}",
        );
        let answer = api.send(Method::GET, "/profiles/1234", "").await;
        assert_answer(&answer, 404, r#"{"error":"not found"}"#);
    }
}

#[tokio::test]
async fn business_errors_have_their_statuses() {
    for api in Api::both().await {
        api.send(Method::POST, "/profiles/", r#"{"id":"1"}"#).await;
        let cases = [
            (
                Method::POST,
                "/profiles/",
                r#"{"id":"1"}"#,
                409,
                r#"{"error":"already exists"}"#,
            ),
            (
                Method::GET,
                "/profiles/2",
                "",
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::PUT,
                "/profiles/1",
                r#"{"id":"2"}"#,
                400,
                r#"{"error":"inconsistent IDs"}"#,
            ),
            (
                Method::PUT,
                "/profiles/1",
                r#"{"name":"no id"}"#,
                400,
                r#"{"error":"inconsistent IDs"}"#,
            ),
            (
                Method::PATCH,
                "/profiles/1",
                r#"{"id":"2"}"#,
                400,
                r#"{"error":"inconsistent IDs"}"#,
            ),
            (
                Method::PATCH,
                "/profiles/2",
                r#"{"name":"x"}"#,
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::DELETE,
                "/profiles/2",
                "",
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::GET,
                "/profiles/2/addresses/",
                "",
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::GET,
                "/profiles/1/addresses/a",
                "",
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::POST,
                "/profiles/2/addresses/",
                r#"{"id":"a"}"#,
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::DELETE,
                "/profiles/1/addresses/a",
                "",
                404,
                r#"{"error":"not found"}"#,
            ),
            (
                Method::POST,
                "/profiles/",
                r#"{"id":""}"#,
                400,
                r#"{"error":"profile id is empty"}"#,
            ),
            (
                Method::POST,
                "/profiles/",
                r#"{"name":"no id"}"#,
                400,
                r#"{"error":"profile id is empty"}"#,
            ),
            (
                Method::POST,
                "/profiles/1/addresses/",
                r#"{"location":"x"}"#,
                400,
                r#"{"error":"address id is empty"}"#,
            ),
        ];
        for (method, path, body, status, expected) in cases {
            let answer = api.send(method.clone(), path, body).await;
            assert_answer(&answer, status, expected);
        }
        // PUT with mismatched ids stored nothing (Go kit answered 200 `{"err":{}}`).
        let answer = api.send(Method::GET, "/profiles/2", "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        api.send(Method::POST, "/profiles/1/addresses/", r#"{"id":"a"}"#)
            .await;
        let answer = api
            .send(
                Method::POST,
                "/profiles/1/addresses/",
                r#"{"id":"a","location":"again"}"#,
            )
            .await;
        assert_answer(&answer, 409, r#"{"error":"already exists"}"#);
    }
}

#[tokio::test]
async fn bad_bodies_are_400_and_big_ones_413() {
    let api = Api::memory().await;
    for (body, message) in [
        ("", "invalid request body: "),
        (
            "null",
            "invalid request body: expected an object, found null",
        ),
        ("{bad", "invalid request body: "),
        (
            r#"{"id":1}"#,
            r#"invalid request body: field "id": expected a string"#,
        ),
        (
            r#"{"id":"1","addresses":{}}"#,
            r#"invalid request body: field "addresses": expected"#,
        ),
        (r#"["id"]"#, "invalid request body: "),
        (r#"{"id":"1"} trailing"#, "invalid request body: "),
        ("{\"id\":\"\u{1}\u{80}\"", "invalid request body: "),
    ] {
        for (method, path) in [
            (Method::POST, "/profiles/"),
            (Method::PUT, "/profiles/1"),
            (Method::PATCH, "/profiles/1"),
            (Method::POST, "/profiles/1/addresses/"),
        ] {
            if path.ends_with("/addresses/") && body.contains("addresses") {
                continue; // an address has no field `addresses`: ignored, as unknown fields are
            }
            let answer = api.send(method.clone(), path, body).await;
            assert_error(&answer, 400, message);
        }
    }
    let answer = api
        .send(Method::POST, "/profiles/", b"{\"id\":\"\xff\"}".to_vec())
        .await;
    assert_error(&answer, 400, "invalid request body: ");
    let huge = format!(r#"{{"id":"1","name":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let answer = api.send(Method::POST, "/profiles/", huge).await;
    assert_error(&answer, 413, "request body is too large");
    // Nothing was stored by any of them.
    let answer = api.send(Method::GET, "/profiles/1", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_unknown_paths_404() {
    let api = Api::memory().await;
    for (method, path, allow) in [
        (Method::GET, "/profiles/", "POST"),
        (Method::POST, "/profiles/1234", "GET,HEAD,PUT,PATCH,DELETE"),
        (Method::PUT, "/profiles/1/addresses/", "GET,HEAD,POST"),
        (Method::POST, "/profiles/1/addresses/a", "GET,HEAD,DELETE"),
        (Method::POST, "/metrics", "GET,HEAD"),
        (Method::DELETE, "/openapi.json", "GET,HEAD"),
    ] {
        let answer = api.send(method.clone(), path, "").await;
        assert_error(
            &answer,
            405,
            &format!("method {method} is not allowed on {path}"),
        );
        let mut allowed: Vec<&str> = answer
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let mut expected: Vec<&str> = allow.split(',').collect();
        allowed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{method} {path}");
    }
    for path in [
        "/profiles",
        "/profiles/1/addresses",
        "/",
        "/profile/1",
        "/profiles/1/addresses/a/b",
    ] {
        let answer = api.send(Method::GET, path, "").await;
        assert_error(&answer, 404, "no route for GET ");
    }
    // An empty id in a path leaves no route to match.
    let answer = api.send(Method::GET, "/profiles//addresses/", "").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ids_with_spaces_slashes_and_any_script_round_trip() {
    for api in Api::both().await {
        for (id, escaped) in [
            ("a b", "a%20b"),
            ("a/b", "a%2Fb"),
            ("../x", "..%2Fx"),
            ("ünï ✓", "%C3%BCn%C3%AF%20%E2%9C%93"),
            ("50%", "50%25"),
            ("?#&", "%3F%23%26"),
        ] {
            let body = serde_json::json!({ "id": id, "name": id }).to_string();
            assert_answer(
                &api.send(Method::POST, "/profiles/", body.as_str()).await,
                200,
                "{}",
            );
            let answer = api
                .send(Method::GET, &format!("/profiles/{escaped}"), "")
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{id:?}: {answer:?}");
            assert_eq!(answer.json()["profile"]["id"], id);
            let address = serde_json::json!({ "id": id, "location": "x" }).to_string();
            let path = format!("/profiles/{escaped}/addresses/");
            assert_answer(
                &api.send(Method::POST, &path, address.as_str()).await,
                200,
                "{}",
            );
            let path = format!("/profiles/{escaped}/addresses/{escaped}");
            let answer = api.send(Method::GET, &path, "").await;
            assert_eq!(answer.json()["address"]["id"], id, "{id:?}");
            assert_answer(&api.send(Method::DELETE, &path, "").await, 200, "{}");
            let path = format!("/profiles/{escaped}");
            assert_answer(&api.send(Method::DELETE, &path, "").await, 200, "{}");
        }
        // A path that does not decode to UTF-8 is the caller's mistake.
        let answer = api.send(Method::GET, "/profiles/%FF", "").await;
        assert_error(&answer, 400, "invalid path: ");
    }
}

#[tokio::test]
async fn html_characters_are_escaped_as_go_writes_them() {
    let api = Api::memory().await;
    api.send(Method::POST, "/profiles/", r#"{"id":"x","name":"<a&b>"}"#)
        .await;
    let answer = api.send(Method::GET, "/profiles/x", "").await;
    assert_answer(
        &answer,
        200,
        r#"{"profile":{"id":"x","name":"\u003ca\u0026b\u003e"}}"#,
    );
}

#[tokio::test]
async fn get_and_delete_ignore_the_body_go_kits_client_sends() {
    let api = Api::memory().await;
    api.send(Method::POST, "/profiles/", r#"{"id":"1"}"#).await;
    let answer = api.send(Method::GET, "/profiles/1", r#"{"ID":"1"}"#).await;
    assert_answer(&answer, 200, r#"{"profile":{"id":"1"}}"#);
    let answer = api
        .send(Method::DELETE, "/profiles/1", "not even JSON")
        .await;
    assert_answer(&answer, 200, "{}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_of_one_profile_all_take_effect() {
    for api in Api::both().await {
        api.send(Method::POST, "/profiles/", r#"{"id":"p"}"#).await;
        let api = std::sync::Arc::new(api);
        let mut calls = Vec::new();
        for n in 0..30 {
            let api = api.clone();
            calls.push(tokio::spawn(async move {
                let body = format!(r#"{{"id":"a{n}"}}"#);
                api.send(Method::POST, "/profiles/p/addresses/", body.as_str())
                    .await
            }));
        }
        // A PATCH of the name among them must neither lose nor be lost.
        let patch = {
            let api = api.clone();
            tokio::spawn(async move {
                api.send(Method::PATCH, "/profiles/p", r#"{"name":"named"}"#)
                    .await
            })
        };
        for call in calls {
            assert_answer(&call.await.expect("join"), 200, "{}");
        }
        assert_answer(&patch.await.expect("join"), 200, "{}");
        let profile = api.send(Method::GET, "/profiles/p", "").await.json();
        assert_eq!(profile["profile"]["name"], "named");
        assert_eq!(
            profile["profile"]["addresses"].as_array().map(Vec::len),
            Some(30)
        );
    }
}
