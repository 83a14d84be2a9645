//! Protocols and framings: the byte streams of a connection turned into Thrift's protocols.

use std::io::{self, Read, Write};
use std::str::FromStr;

use thrift::TConfiguration;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TInputProtocol, TOutputProtocol,
};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport, TFramedWriteTransport};

/// A Thrift protocol: how values become bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `TBinaryProtocol`, Thrift's and Go kit's default: strict messages written, both forms
    /// read.
    #[default]
    Binary,
    /// `TCompactProtocol`.
    Compact,
}

/// A protocol name that is not one of the [`Protocol`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownProtocol {
    /// A protocol of Thrift's that the Rust implementation lacks.
    #[error(
        "Thrift protocol {0:?} is not supported by the Rust Thrift library: use binary or compact"
    )]
    Unsupported(String),
    /// No Thrift protocol has this name.
    #[error("invalid Thrift protocol {0:?}: use binary or compact")]
    Invalid(String),
}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    /// `binary` (or empty, as Go kit's client takes it) and `compact`; `json` and `simplejson`
    /// are Thrift's but not the Rust library's.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "" | "binary" => Ok(Protocol::Binary),
            "compact" => Ok(Protocol::Compact),
            "json" | "simplejson" => Err(UnknownProtocol::Unsupported(name.to_owned())),
            other => Err(UnknownProtocol::Invalid(other.to_owned())),
        }
    }
}

/// How messages are delimited on the connection, as Go kit's `-thrift-buffer` and
/// `-thrift-framed` flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Framing {
    /// Buffer reads and writes in chunks of this many bytes; 0 for unbuffered. The bytes on
    /// the wire are the same either way.
    pub buffer: usize,
    /// Prefix each message with its length (`TFramedTransport`). Both sides must agree.
    pub framed: bool,
}

/// What both sides of a Thrift connection agree on, and the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The protocol.
    pub protocol: Protocol,
    /// The framing.
    pub framing: Framing,
    /// The largest message (or frame) read, in bytes; a larger one closes the connection.
    pub max_message_bytes: usize,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long a connection may stay silent, between calls or within one, before it is closed.
    pub idle_timeout: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            protocol: Protocol::Binary,
            framing: Framing::default(),
            max_message_bytes: 1024 * 1024,
            max_connections: 256,
            idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// An input protocol over any reader: what a generated client reads its answers with.
pub type Input = Box<dyn TInputProtocol + Send>;
/// An output protocol over any writer: what a generated client writes its calls with.
pub type Output = Box<dyn TOutputProtocol + Send>;

impl Config {
    fn limits(&self) -> TConfiguration {
        TConfiguration::builder()
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
            .max_string_size(Some(self.max_message_bytes))
            .max_container_size(Some(self.max_message_bytes))
            .build()
            .unwrap_or_default()
    }

    /// The protocols for a connection that reads from `reader` and writes to `writer`, with
    /// this configuration's framing and limits: what the server runs each connection with.
    pub fn protocols<R, W>(&self, reader: R, writer: W) -> (Input, Output)
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        let reader: Box<dyn Read + Send> = match self.framing {
            Framing { framed: true, .. } => {
                Box::new(FramedReader::new(reader, self.max_message_bytes))
            }
            Framing { buffer: 0, .. } => Box::new(reader),
            Framing { buffer, .. } => {
                Box::new(TBufferedReadTransport::with_capacity(buffer, reader))
            }
        };
        let writer: Box<dyn Write + Send> = match self.framing {
            Framing {
                framed: true,
                buffer,
            } => Box::new(TFramedWriteTransport::with_capacity(
                buffer.max(1024),
                writer,
            )),
            Framing { buffer: 0, .. } => Box::new(writer),
            Framing { buffer, .. } => {
                Box::new(TBufferedWriteTransport::with_capacity(buffer, writer))
            }
        };
        let limits = self.limits();
        match self.protocol {
            Protocol::Binary => (
                Box::new(TBinaryInputProtocol::with_config(
                    reader,
                    false,
                    limits.clone(),
                )),
                Box::new(TBinaryOutputProtocol::with_config(writer, true, limits)),
            ),
            Protocol::Compact => (
                Box::new(TCompactInputProtocol::with_config(reader, limits.clone())),
                Box::new(TCompactOutputProtocol::with_config(writer, limits)),
            ),
        }
    }
}

/// Reads framed messages: a 4-byte big-endian length, then that many bytes. Thrift's own
/// framed transport allocates (and zeroes) whatever length a peer claims, up to 16 MB; this one
/// refuses anything over the configured limit before allocating.
struct FramedReader<R> {
    inner: R,
    frame: Vec<u8>,
    pos: usize,
    max: usize,
}

impl<R: Read> FramedReader<R> {
    fn new(inner: R, max: usize) -> Self {
        FramedReader {
            inner,
            frame: Vec::new(),
            pos: 0,
            max,
        }
    }
}

impl<R: Read> Read for FramedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.frame.len() {
            let mut header = [0u8; 4];
            self.inner.read_exact(&mut header)?;
            let size = i32::from_be_bytes(header);
            let size = usize::try_from(size)
                .ok()
                .filter(|&size| size <= self.max)
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("frame of {size} bytes: the limit is {}", self.max),
                    )
                })?;
            self.frame.clear();
            self.frame.resize(size, 0);
            self.inner.read_exact(&mut self.frame)?;
            self.pos = 0;
        }
        let n = buf.len().min(self.frame.len() - self.pos);
        buf[..n].copy_from_slice(&self.frame[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_by_name() {
        assert_eq!("binary".parse(), Ok(Protocol::Binary));
        assert_eq!("".parse(), Ok(Protocol::Binary));
        assert_eq!("compact".parse(), Ok(Protocol::Compact));
        assert_eq!(
            "json".parse::<Protocol>().map_err(|e| e.to_string()),
            Err("Thrift protocol \"json\" is not supported by the Rust Thrift library: use binary or compact".into())
        );
        assert!(matches!(
            "xml".parse::<Protocol>(),
            Err(UnknownProtocol::Invalid(_))
        ));
    }

    #[test]
    fn frames_over_the_limit_are_refused_before_allocating() {
        let mut bytes = (i32::MAX).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut reader = FramedReader::new(&bytes[..], 1024);
        let mut buf = [0u8; 8];
        assert_eq!(
            reader.read(&mut buf).map_err(|e| e.kind()),
            Err(io::ErrorKind::InvalidData)
        );
        let minus_one = (-1i32).to_be_bytes();
        let mut negative = FramedReader::new(&minus_one[..], 1024);
        assert!(negative.read(&mut buf).is_err());
        let mut ok = 3i32.to_be_bytes().to_vec();
        ok.extend_from_slice(b"abc");
        let mut reader = FramedReader::new(&ok[..], 1024);
        assert_eq!(reader.read(&mut buf).ok(), Some(3));
        assert_eq!(&buf[..3], b"abc");
    }
}
