//! Calling a Thrift service: connections kept in a pool, calls on blocking threads.

use std::fmt;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::io::{Config, Input, Output};
use crate::context::{Context, DeadlineExceeded};
use crate::error::{BoxError, Error};

/// How many idle connections a pool keeps.
const MAX_IDLE: usize = 16;

/// Connections to one Thrift server, each wrapped in a generated client `C`, and calls made
/// with them off the async runtime (for a [client endpoint](crate::endpoint::Endpoint)).
///
/// [`call`](Self::call) takes an idle connection or opens one, runs the call on tokio's blocking
/// threads with the request's deadline (or the pool's timeout, if sooner) as the socket's
/// timeouts, and keeps the connection for the next call if the call ended cleanly, an exception
/// from the server included. A connection whose call failed on the wire is closed: its stream
/// may be out of step. A Thrift error fails the call with the kind kit-core gives it.
pub struct Pool<C> {
    inner: Arc<Inner<C>>,
}

type MakeFn<C> = dyn Fn(Input, Output) -> C + Send + Sync;

struct Inner<C> {
    addr: String,
    config: Config,
    timeout: Duration,
    make: Box<MakeFn<C>>,
    idle: Mutex<Vec<Idle<C>>>,
}

/// A connection waiting for a call: the generated client and its socket.
struct Idle<C> {
    client: C,
    socket: TcpStream,
}

impl<C: Send + 'static> Pool<C> {
    /// A pool of connections to `addr` (`host:port`) speaking `config`'s protocol and framing,
    /// each wrapped by `make` (the generated client's `new`). Calls take at most `timeout`,
    /// connecting included.
    pub fn new(
        addr: impl Into<String>,
        config: Config,
        timeout: Duration,
        make: impl Fn(Input, Output) -> C + Send + Sync + 'static,
    ) -> Self {
        Pool {
            inner: Arc::new(Inner {
                addr: addr.into(),
                config,
                timeout,
                make: Box::new(make),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `call` with a client of the pool, on a blocking thread.
    pub async fn call<T, F>(&self, call: F) -> Result<T, BoxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut C) -> thrift::Result<T> + Send + 'static,
    {
        let ctx = Context::current().with_timeout(self.inner.timeout);
        let Some(left) = ctx.remaining().filter(|left| !left.is_zero()) else {
            return Err(Error::from(DeadlineExceeded).into());
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.call(left, call))
            .await
            .map_err(|e| Error::new(crate::error::ErrorKind::Internal, e.to_string()))?
    }
}

impl<C> Inner<C> {
    fn call<T>(
        &self,
        left: Duration,
        call: impl FnOnce(&mut C) -> thrift::Result<T>,
    ) -> Result<T, BoxError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut connection = match idle {
            Some(idle) => idle,
            None => self
                .connect(left)
                .map_err(|e| failure(&self.addr, e.into()))?,
        };
        let timeouts = connection
            .socket
            .set_read_timeout(Some(left))
            .and_then(|()| connection.socket.set_write_timeout(Some(left)));
        timeouts.map_err(|e| failure(&self.addr, e.into()))?;
        match call(&mut connection.client) {
            Ok(value) => {
                self.keep(connection);
                Ok(value)
            }
            Err(err @ thrift::Error::Application(_)) => {
                self.keep(connection);
                Err(failure(&self.addr, err).into())
            }
            Err(err) => Err(failure(&self.addr, err).into()),
        }
    }

    fn connect(&self, left: Duration) -> io::Result<Idle<C>> {
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} has no address", self.addr),
        );
        for addr in self.addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, left) {
                Ok(socket) => {
                    socket.set_nodelay(true)?;
                    let (reader, writer) = (socket.try_clone()?, socket.try_clone()?);
                    let (input, output) = self.config.protocols(reader, writer);
                    return Ok(Idle {
                        client: (self.make)(input, output),
                        socket,
                    });
                }
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    fn keep(&self, connection: Idle<C>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }
}

/// A failed call as a kit-core error: the kind kit-core gives Thrift's error, and its message
/// (an exception's own text, not Thrift's "remote service threw exception"). A call that timed
/// out is [`DeadlineExceeded`] whichever way the socket says so.
fn failure(addr: &str, err: thrift::Error) -> Error {
    use crate::error::{Classify, ErrorKind};
    let kind = match &err {
        thrift::Error::Transport(e)
            if e.message.contains("timed out")
                || e.message.contains("Resource temporarily unavailable") =>
        {
            ErrorKind::DeadlineExceeded
        }
        err => err.kind(),
    };
    let message = match err {
        thrift::Error::Application(e) => e.message,
        thrift::Error::Transport(e) => format!("{addr}: {}", e.message),
        thrift::Error::Protocol(e) => format!("{addr}: {}", e.message),
        thrift::Error::User(e) => e.to_string(),
    };
    if kind == ErrorKind::DeadlineExceeded {
        return Error::from(DeadlineExceeded);
    }
    Error::new(kind, message)
}

impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<C> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("addr", &self.inner.addr)
            .field("config", &self.inner.config)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}
