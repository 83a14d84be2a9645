//! A connection's bytes into addsvc's Thrift processor, in each protocol and framing.
//!
//! The first byte chooses the protocol (binary or compact) and whether messages are framed;
//! the rest is what the client sends on the connection. The processor answers call after call
//! until the bytes run out or stop making sense, as the server's connection loop does.
//!
//! Rules: nothing panics, every call ends (no read waits for bytes that are not there), and
//! the answers are never much more than the calls: a message or string claiming gigabytes is
//! refused before anything is allocated for it.

use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use kit_core::transport::thrift::{Config, Framing, Protocol};
use thrift::server::TProcessor;

use crate::fixture::{addsvc, logger, runtime};

/// The largest message the processor reads here; the server's default is 1 MiB, the fuzzer's
/// inputs are far smaller.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What the answers may add to the calls' own size: exceptions with their fixed texts.
const SLACK: usize = 16 * 1024;

/// Calls, one after another, until the input ends; see the module's rules.
pub fn run(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let config = Config {
        protocol: if choice & 1 == 0 {
            Protocol::Binary
        } else {
            Protocol::Compact
        },
        framing: Framing {
            buffer: 0,
            framed: choice & 2 != 0,
        },
        max_message_bytes: MAX_MESSAGE_BYTES,
        ..Config::default()
    };
    let written = Written::default();
    let (mut input, mut output) = config.protocols(Cursor::new(rest.to_vec()), written.clone());
    // Each call consumes at least one byte, or fails: the loop ends with the input.
    for _ in 0..=rest.len() {
        if processor().process(&mut *input, &mut *output).is_err() {
            break;
        }
    }
    let limit = 2 * data.len() + SLACK;
    let size = written.len();
    assert!(
        size <= limit,
        "{} bytes of calls were answered with {size} bytes",
        data.len()
    );
}

fn processor() -> &'static addsvc::transport::thrift::Processor {
    static PROCESSOR: OnceLock<Arc<addsvc::transport::thrift::Processor>> = OnceLock::new();
    PROCESSOR.get_or_init(|| {
        // The processor waits on the runtime for each call's endpoint.
        let _runtime = runtime().enter();
        addsvc::transport::thrift::processor(addsvc(), &logger())
    })
}

/// The connection's outgoing bytes, counted.
#[derive(Debug, Clone, Default)]
struct Written(Arc<Mutex<usize>>);

impl Written {
    fn len(&self) -> usize {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for Written {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
