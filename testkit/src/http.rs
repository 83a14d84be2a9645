//! Talking HTTP the way a user's client does: a router served in-process on a real socket, and
//! one way to send a request and read the whole answer.

use std::net::SocketAddr;

use http::{HeaderMap, Method, StatusCode};
use kit_core::shutdown::{self, Outcome, Trigger};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A router served on `127.0.0.1:0` by kit-core's own accept loop (`transport::http::serve`),
/// exactly as a binary serves it.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    trigger: Trigger,
    serving: JoinHandle<std::io::Result<Outcome>>,
}

impl TestServer {
    /// Starts serving `app`; it listens once this returns.
    pub async fn start(app: axum::Router) -> Self {
        let listener = crate::process::local_listener();
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .unwrap_or_else(|err| panic!("cannot serve on 127.0.0.1: {err}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|err| panic!("no local address: {err}"));
        let (trigger, shutdown) = shutdown::channel();
        let serving = tokio::spawn(kit_core::transport::http::serve(listener, app, shutdown));
        TestServer {
            addr,
            trigger,
            serving,
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Drains within `within` and says how that went.
    pub async fn stop(self, within: std::time::Duration) -> Outcome {
        self.trigger.drain(within);
        match self.serving.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(err)) => panic!("the server failed: {err}"),
            Err(err) => panic!("the server panicked: {err}"),
        }
    }
}

/// A whole answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Answer {
    /// The value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON; panics, showing the body, when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("the body is not JSON ({err}): {:?}", self.body))
    }
}

/// An HTTP client that keeps its connections, as a long-lived client does: for tests that send
/// many requests, or load.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client that, as curl in the tests, ignores proxies set in the environment.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_else(|err| panic!("cannot build an HTTP client: {err}"));
        HttpClient { client }
    }

    /// Sends `method url` with `body` and `headers`. Panics when no answer comes.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_send(method, url, body, headers)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    /// Like [`send`](Self::send), but a request that gets no whole answer (a refused or reset
    /// connection) is an `Err` saying why, for tests that count such failures.
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut request = self.client.request(method.clone(), url).body(body.into());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .map_err(|err| format!("{method} {url}: no answer: {}", causes(&err)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|err| format!("{method} {url}: unreadable body: {}", causes(&err)))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// `POST url` with a JSON `body`, as the tutorial's `curl -d` does.
    pub async fn post_json(&self, url: &str, body: &str) -> Answer {
        self.send(Method::POST, url, body, &[]).await
    }
}

/// `err` followed by each error it says it was caused by (reqwest's own message says only
/// "error sending request"; what went wrong, a reset or a refused connection, is its source's).
fn causes(err: &dyn std::error::Error) -> String {
    let mut said = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        said.push_str(": ");
        said.push_str(&cause.to_string());
        source = cause.source();
    }
    said
}

/// Sends `method url` with `body` and `headers` on a new connection, as one curl command does.
pub async fn send(
    method: Method,
    url: &str,
    body: impl Into<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Answer {
    HttpClient::new().send(method, url, body, headers).await
}

/// `POST url` with a JSON `body`, as the tutorial's `curl -d` does.
pub async fn post_json(url: &str, body: &str) -> Answer {
    send(Method::POST, url, body, &[]).await
}
