//! Serving a Thrift processor: an async accept loop, a thread per connection, one drain.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{Shutdown as Direction, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use thrift::server::TProcessor;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::io::Config;
use crate::shutdown::{Outcome, Shutdown};

/// The stack of a connection's thread: the generated code and a handler need little.
const STACK_BYTES: usize = 256 * 1024;

/// A connection's thread is waiting for the next call.
const IDLE: u8 = 0;
/// A connection's thread is reading or answering a call.
const BUSY: u8 = 1;
/// The drain has started: the thread stops after the call it is answering, if any.
const DRAINING: u8 = 2;

/// A connection, as the accept loop sees it: a handle on its socket, to close it, and its state.
struct Connection {
    socket: TcpStream,
    state: Arc<AtomicU8>,
}

type Connections = Arc<Mutex<HashMap<u64, Connection>>>;

/// Serves `processor` on `listener` until `shutdown` is requested, then drains (see the
/// [module docs](super)).
///
/// Each connection is served on a thread of its own, reading and answering one call after
/// another with the [`Config`]'s protocol and framing; at most
/// [`max_connections`](Config::max_connections) at once, those beyond are closed at once. A
/// connection whose bytes are not the protocol, or a message over the limit, or that stays
/// silent for the idle timeout, is closed, and no other is disturbed.
///
/// On shutdown the listener closes, connections waiting for a call are closed, and those in a
/// call close once they have answered it; those still busy at the drain's deadline are cut off.
pub async fn serve<P>(
    listener: TcpListener,
    processor: Arc<P>,
    config: Config,
    shutdown: Shutdown,
) -> io::Result<Outcome>
where
    P: TProcessor + Send + Sync + 'static,
{
    let max = config.max_connections.max(1);
    // One permit per connection being served; all of them back means every thread is done.
    let permits = Arc::new(Semaphore::new(max));
    let connections: Connections = Arc::default();
    let ids = AtomicU64::new(0);
    let requested = shutdown.requested();
    let mut requested = std::pin::pin!(requested);

    let deadline = loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    if !matches!(err.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) {
                        tracing::warn!(err = %err, "accepting a Thrift connection failed; retrying in 1s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            deadline = &mut requested => break deadline,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(max, "too many Thrift connections; closing a new one");
            continue;
        };
        let Some((socket, handle)) = blocking(stream, &config) else {
            continue;
        };
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(AtomicU8::new(BUSY));
        lock(&connections).insert(
            id,
            Connection {
                socket: handle,
                state: state.clone(),
            },
        );
        let (processor, connections) = (processor.clone(), connections.clone());
        let spawned = std::thread::Builder::new()
            .name("thrift-connection".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                run(socket, &*processor, &config, &state);
                lock(&connections).remove(&id);
                drop(permit);
            });
        if let Err(err) = spawned {
            tracing::warn!(err = %err, "cannot start a thread for a Thrift connection");
        }
    };

    drop(listener);
    // Waiting connections close now; busy ones finish their call first.
    for connection in lock(&connections).values() {
        if connection.state.swap(DRAINING, Ordering::AcqRel) == IDLE {
            let _ = connection.socket.shutdown(Direction::Read);
        }
    }
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    match tokio::time::timeout_at(deadline, permits.acquire_many(all)).await {
        Ok(_) => Ok(Outcome::Drained),
        Err(_) => {
            for connection in lock(&connections).values() {
                let _ = connection.socket.shutdown(Direction::Both);
            }
            Ok(Outcome::DeadlineExceeded)
        }
    }
}

fn lock(connections: &Connections) -> std::sync::MutexGuard<'_, HashMap<u64, Connection>> {
    connections.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The accepted stream as a blocking socket with the idle timeout, and a second handle on it
/// for closing it from outside.
fn blocking(stream: tokio::net::TcpStream, config: &Config) -> Option<(TcpStream, TcpStream)> {
    let setup = || -> io::Result<(TcpStream, TcpStream)> {
        let socket = stream.into_std()?;
        socket.set_nonblocking(false)?;
        socket.set_nodelay(true)?;
        socket.set_read_timeout(Some(config.idle_timeout))?;
        socket.set_write_timeout(Some(config.idle_timeout))?;
        let handle = socket.try_clone()?;
        Ok((socket, handle))
    };
    match setup() {
        Ok(pair) => Some(pair),
        Err(err) => {
            tracing::warn!(err = %err, "cannot set up a Thrift connection");
            None
        }
    }
}

/// Serves one connection until its peer closes it, sends what is not a call, falls silent, or
/// the drain starts.
fn run<P: TProcessor>(socket: TcpStream, processor: &P, config: &Config, state: &Arc<AtomicU8>) {
    let Ok(writer) = socket.try_clone() else {
        return;
    };
    let reader = Gate {
        socket,
        state: state.clone(),
    };
    let (mut input, mut output) = config.protocols(reader, writer);
    loop {
        // Between calls: idle, unless the drain has started.
        if state
            .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // A panic in a handler ends this connection only.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            processor.process(&mut *input, &mut *output)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(thrift::Error::Transport(_))) => return,
            Ok(Err(err)) => {
                tracing::debug!(err = %err, "closing a Thrift connection that sent what is not a call");
                return;
            }
            Err(_) => return,
        }
    }
}

/// The socket as the protocols read it, marking the connection busy when a call starts to
/// arrive, and ending it (as if the peer had closed) once the drain has started.
struct Gate {
    socket: TcpStream,
    state: Arc<AtomicU8>,
}

impl Read for Gate {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.state.load(Ordering::Acquire) == DRAINING {
            return Ok(0);
        }
        let n = self.socket.read(buf)?;
        if n > 0
            && let Err(DRAINING) =
                self.state
                    .compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire)
        {
            // The call arrived after the drain started: it is not taken.
            return Ok(0);
        }
        Ok(n)
    }
}
