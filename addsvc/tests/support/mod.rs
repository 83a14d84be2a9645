//! What the tests of addsvc share: the binary on free ports, and clients that are not built from
//! our generated code, so that they check the wire rather than agree with themselves.

#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use testkit::process::{Service, free_port};

pub mod thrift;

pub const BIN: &str = env!("CARGO_BIN_EXE_addsvc");

/// The addsvc binary, listening on free ports of 127.0.0.1.
#[derive(Debug)]
pub struct Addsvc {
    pub service: Service,
    pub debug: u16,
    pub http: u16,
    pub grpc: u16,
    pub jsonrpc: u16,
    pub thrift: u16,
}

impl Addsvc {
    /// Starts `addsvc` with `args` on free ports and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        let (debug, http, grpc) = (free_port(), free_port(), free_port());
        let (jsonrpc, thrift) = (free_port(), free_port());
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let (d, h, g) = (addr(debug), addr(http), addr(grpc));
        let (j, t) = (addr(jsonrpc), addr(thrift));
        let mut all = vec![
            "-debug.addr",
            &d,
            "-http-addr",
            &h,
            "--grpc-addr",
            &g,
            "-jsonrpc-addr",
            &j,
            "-thrift-addr",
            &t,
        ];
        all.extend_from_slice(args);
        // Every listener is bound before any serves: once one answers, all do.
        let service = Service::start_on(BIN, &all, &[], debug);
        Addsvc {
            service,
            debug,
            http,
            grpc,
            jsonrpc,
            thrift,
        }
    }

    pub fn jsonrpc_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.jsonrpc)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    pub fn debug_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.debug)
    }
}

/// Protobuf by hand: a varint.
pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Protobuf by hand: an int64 field (wire type 0; negative numbers take ten bytes).
pub fn int64_field(number: u32, value: i64, out: &mut Vec<u8>) {
    varint(u64::from(number << 3), out);
    varint(value as u64, out);
}

/// Protobuf by hand: a string field (wire type 2).
pub fn string_field(number: u32, value: &str, out: &mut Vec<u8>) {
    varint(u64::from(number << 3 | 2), out);
    varint(value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
}

/// The fields of a message read by hand: (number, varint value or bytes).
pub fn fields(mut bytes: &[u8]) -> Vec<(u32, Field)> {
    fn read_varint(bytes: &mut &[u8]) -> u64 {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes);
        let (number, wire) = ((key >> 3) as u32, key & 7);
        match wire {
            0 => out.push((number, Field::Varint(read_varint(&mut bytes)))),
            2 => {
                let len = read_varint(&mut bytes) as usize;
                out.push((number, Field::Bytes(bytes[..len].to_vec())));
                bytes = &bytes[len..];
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// What a gRPC call answered: the status, its message, and the reply message's bytes.
#[derive(Debug)]
pub struct GrpcAnswer {
    pub status: u32,
    pub message: String,
    pub reply: Vec<u8>,
}

/// Calls `path` on 127.0.0.1:`port` with `body` as the length-prefixed message payload (given
/// whole, so tests can send garbage), over a plain HTTP/2 connection, as any gRPC client does.
pub async fn grpc_call(
    port: u16,
    path: &str,
    frame: Vec<u8>,
    metadata: &[(&str, &str)],
) -> GrpcAnswer {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in metadata {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(frame)))
        .expect("request");
    let response = sender.send_request(request).await.expect("an answer");
    // The connection closes once the only sender is gone, as a one-call client's does.
    drop(sender);
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.expect("the body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let body = collected.to_bytes();
    // A call that fails before any reply sends its status in the headers ("trailers-only").
    let read = |name: &str| {
        trailers
            .get(name)
            .or_else(|| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = read("grpc-status")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no grpc-status in {headers:?} {trailers:?}"));
    let message = percent_decode(&read("grpc-message").unwrap_or_default());
    let _ = connection.await;
    let reply = if body.len() >= 5 {
        body[5..].to_vec()
    } else {
        Vec::new()
    };
    GrpcAnswer {
        status,
        message,
        reply,
    }
}

/// A message as a gRPC frame: not compressed, its length, its bytes.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A Sum request, by hand.
pub fn sum_request(a: i64, b: i64) -> Vec<u8> {
    let mut m = Vec::new();
    int64_field(1, a, &mut m);
    int64_field(2, b, &mut m);
    m
}

/// A Concat request, by hand.
pub fn concat_request(a: &str, b: &str) -> Vec<u8> {
    let mut m = Vec::new();
    string_field(1, a, &mut m);
    string_field(2, b, &mut m);
    m
}

/// `grpc-message` is percent-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `POST` that declares a body of `length` bytes and sends only its start, as a client
/// uploading something huge does; returns the raw answer. (A client that sends the whole body
/// may see its connection reset before it reads the answer, which the server sends at once.)
pub async fn post_declaring(port: u16, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n{{\"a\":\""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}
