//! Thrift's binary protocol by hand, for a client that shares no code with ours.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A strict binary-protocol message: version and type, name, sequence id, then the struct.
pub fn message(kind: u8, name: &str, seq: i32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x01, 0x00, kind];
    out.extend_from_slice(&(name.len() as i32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Sum's arguments: field 1 and 2, i64 (type 10), then stop.
pub fn sum_args(a: i64, b: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, v) in [(1i16, a), (2, b)] {
        out.push(10);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(0);
    out
}

/// Concat's arguments: fields 1 and 2, strings (type 11), then stop.
pub fn concat_args(a: &str, b: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, v) in [(1i16, a), (2, b)] {
        out.push(11);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.push(0);
    out
}

/// A connection to 127.0.0.1:`port` with a read timeout, so a test cannot hang.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
}

/// Sends `bytes` and reads one reply message: (type, name, sequence id, body bytes up to the
/// closing stop of the outer struct).
pub fn call(stream: &mut TcpStream, bytes: &[u8]) -> Reply {
    stream.write_all(bytes).expect("write");
    read_reply(stream)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub kind: u8,
    pub name: String,
    pub seq: i32,
    pub fields: Vec<(i16, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    I32(i32),
    I64(i64),
    Str(String),
    Struct(Vec<(i16, Value)>),
}

fn read_exact(stream: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("a whole reply");
    buf
}

fn read_i32(stream: &mut impl Read) -> i32 {
    i32::from_be_bytes(read_exact(stream, 4).try_into().expect("4 bytes"))
}

fn read_struct(stream: &mut impl Read) -> Vec<(i16, Value)> {
    let mut fields = Vec::new();
    loop {
        let kind = read_exact(stream, 1)[0];
        if kind == 0 {
            return fields;
        }
        let id = i16::from_be_bytes(read_exact(stream, 2).try_into().expect("2 bytes"));
        let value = match kind {
            8 => Value::I32(read_i32(stream)),
            10 => Value::I64(i64::from_be_bytes(
                read_exact(stream, 8).try_into().expect("8 bytes"),
            )),
            11 => {
                let len = read_i32(stream) as usize;
                Value::Str(String::from_utf8(read_exact(stream, len)).expect("UTF-8"))
            }
            12 => Value::Struct(read_struct(stream)),
            other => panic!("unexpected field type {other}"),
        };
        fields.push((id, value));
    }
}

pub fn read_reply(stream: &mut impl Read) -> Reply {
    let header = read_exact(stream, 4);
    assert_eq!(&header[..2], &[0x80, 0x01], "a strict binary message");
    let len = read_i32(stream) as usize;
    let name = String::from_utf8(read_exact(stream, len)).expect("UTF-8");
    let seq = read_i32(stream);
    let fields = read_struct(stream);
    Reply {
        kind: header[3],
        name,
        seq,
        fields,
    }
}

/// Whether the server closed the connection (a read gives end of file or a reset).
pub fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(stream.read(&mut buf), Ok(0) | Err(_))
}
