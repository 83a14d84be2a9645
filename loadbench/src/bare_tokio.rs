//! The floor the load benchmark measures everything against: stringsvc1's work with no HTTP
//! framework at all. Each connection reads requests, finds the body by its `Content-Length`,
//! parses `{"s":"..."}` with serde_json, upper-cases it and writes one fixed-form answer, on
//! the same runtime and allocator as the services.
//!
//! This is a benchmark fixture, not a server: it understands exactly the requests the load
//! benchmark sends (`POST` with `Content-Length`, keep-alive) and closes any connection that
//! sends something else. What it costs per request is what the kernel, the runtime, the
//! allocator and the JSON work cost; what a service costs beyond it is HTTP, routing and
//! kit-core.
//!
//! Run with: `cargo run --release -p loadbench --bin bare-tokio -- 127.0.0.1:8080`

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Deserialize)]
struct UppercaseRequest {
    #[serde(default)]
    s: String,
}

#[derive(Serialize)]
struct UppercaseResponse {
    v: String,
    err: Option<&'static str>,
}

/// The largest request head and body this fixture reads.
const MAX_REQUEST: usize = 64 * 1024;

/// Where the head ends and how long the body is, once the head has arrived whole.
fn framing(buffer: &[u8]) -> Option<Result<(usize, usize), ()>> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buffer[..end]).map_err(|_| ());
    let length = head.and_then(|head| {
        head.split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .ok_or(())
    });
    Some(length.map(|length| (end, length)))
}

/// The answer to one request's body.
fn answer(body: &[u8], out: &mut Vec<u8>) {
    let response = match serde_json::from_slice::<UppercaseRequest>(body) {
        Ok(request) if request.s.is_empty() => UppercaseResponse {
            v: String::new(),
            err: Some("Empty string"),
        },
        Ok(request) => UppercaseResponse {
            v: request.s.to_uppercase(),
            err: None,
        },
        Err(_) => UppercaseResponse {
            v: String::new(),
            err: Some("bad request"),
        },
    };
    let mut json = serde_json::to_vec(&response).unwrap_or_default();
    json.push(b'\n');
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(json.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&json);
}

async fn connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    loop {
        // Answer every request the buffer holds whole, then write the answers at once.
        while let Some(Ok((head, length))) = framing(&buffer) {
            if buffer.len() < head + length {
                break;
            }
            answer(&buffer[head..head + length], &mut out);
            buffer.drain(..head + length);
        }
        if matches!(framing(&buffer), Some(Err(()))) || buffer.len() > MAX_REQUEST {
            return;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// The services' allocator, so that the floor and the services differ only in what is
/// measured.
#[global_allocator]
static ALLOCATOR: kit_core::allocator::Jemalloc = kit_core::allocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit_core::allocator::purge_in_background();
    // The address, alone or after `--listen` as the services take it.
    let addr = std::env::args()
        .skip(1)
        .find(|arg| arg != "--listen")
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let listener = match TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("bare-tokio: cannot listen on {addr}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("bare-tokio listening on {addr}");
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream));
        }
    }
}
