//! A process serving one or more listeners until a signal, then draining them together.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::args::fail;
use crate::duration::GoDuration;
use crate::listen::ListenAddr;
use crate::shutdown::{self, Outcome, Shutdown, Signals};

type Serving = Pin<Box<dyn Future<Output = io::Result<Outcome>> + Send>>;
type ServeFn = Box<dyn FnOnce(TcpListener, Shutdown) -> Serving + Send>;
type AnnounceFn = Box<dyn FnOnce(&ListenAddr) + Send>;

// ANCHOR: hook
/// What a program does once every listener is bound, and undoes as soon as it is asked to stop,
/// before its listeners drain: registering in a service registry is the case in point
/// (`sd::etcd::Registration`), so that clients stop sending calls while the calls in flight
/// finish.
pub trait Hook: Send + 'static {
    /// Every listener is bound: `bound` holds their addresses, in the order they were added,
    /// with the real ports when `:0` was asked for.
    fn started(&mut self, bound: &[ListenAddr]);

    /// The program was asked to stop (or a listener failed); the listeners drain once this
    /// returns.
    fn stopping(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
// ANCHOR_END: hook

/// How long past the drain deadline a listener may take to return before the process stops
/// without it: the guard against a transport that does not keep its deadline.
const OVERRUN: Duration = Duration::from_secs(5);

/// A service process: its listeners, each with the transport that serves it, and how long they
/// may drain (see the [module docs](super)).
pub struct Program {
    name: String,
    drain: Duration,
    max_connections: Option<usize>,
    listeners: Vec<Listener>,
    hooks: Vec<Box<dyn Hook>>,
}

struct Listener {
    addr: ListenAddr,
    serve: ServeFn,
    announce: AnnounceFn,
}

impl Program {
    /// A program called `name` (in its messages) with no listener yet and a drain of 10 s.
    pub fn new(name: impl Into<String>) -> Self {
        Program {
            name: name.into(),
            drain: Duration::from_secs(10),
            max_connections: None,
            listeners: Vec::new(),
            hooks: Vec::new(),
        }
    }

    /// Adds a [`Hook`]: told when every listener is bound, and awaited as soon as the program is
    /// asked to stop, before the drain.
    pub fn hook(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Box::new(hook));
        self
    }

    /// A program configured by the shared flags: their drain timeout and connection limit (the
    /// listen address is for [`http`](Self::http)).
    pub fn with_args(name: impl Into<String>, args: &super::ServeArgs) -> Self {
        Program::new(name)
            .drain_timeout(args.drain.drain_timeout)
            .max_connections(args.connections.max_connections)
    }

    /// How long requests in flight may take to finish once a signal asks the program to stop.
    pub fn drain_timeout(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// How many connections each HTTP listener added after this serves at once (the HTTP
    /// transport's default unless set).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// Adds a listener on `addr`, served by `serve` once bound, until the [`Shutdown`] it is
    /// given asks it to drain. `announce` is told the address bound (with the real port when
    /// `:0` was asked for) before anything is served: the place for a "listening on" line.
    pub fn listener<S, F>(
        mut self,
        addr: &ListenAddr,
        serve: S,
        announce: impl FnOnce(&ListenAddr) + Send + 'static,
    ) -> Self
    where
        S: FnOnce(TcpListener, Shutdown) -> F + Send + 'static,
        F: Future<Output = io::Result<Outcome>> + Send + 'static,
    {
        self.listeners.push(Listener {
            addr: addr.clone(),
            serve: Box::new(move |listener, shutdown| Box::pin(serve(listener, shutdown))),
            announce: Box::new(announce),
        });
        self
    }

    /// Adds a listener on `addr` that serves `app` over HTTP/1.1
    /// (`transport::http::serve`).
    #[cfg(feature = "http-server")]
    pub fn http(
        self,
        addr: &ListenAddr,
        app: axum::Router,
        announce: impl FnOnce(&ListenAddr) + Send + 'static,
    ) -> Self {
        use crate::transport::http::{ServeOptions, serve_with};
        let mut options = ServeOptions::default();
        if let Some(max) = self.max_connections {
            options = options.max_connections(max);
        }
        self.listener(
            addr,
            move |listener, shutdown| serve_with(listener, app, shutdown, options),
            announce,
        )
    }

    /// Runs the program: binds every listener, announces them, serves until Ctrl-C or SIGTERM,
    /// drains, and returns the exit status.
    ///
    /// | what happened | stderr | status |
    /// |---|---|---|
    /// | every request in flight was answered | nothing | 0 |
    /// | the drain deadline cut requests off (answered 503) | `<name>: requests still in flight after 10s were cut off` | 1 |
    /// | a second signal during the drain | `<name>: second signal: stopping without waiting for requests in flight` | 1 |
    /// | a listener could not bind | `error: cannot listen on :8080: Address in use` | 1 |
    /// | a listener failed while serving | `error: <name>: server failed: <why>` | 1 |
    pub async fn run(self) -> ExitCode {
        let Program {
            name,
            drain,
            listeners,
            mut hooks,
            ..
        } = self;
        // As Go's runtime does: the soft limit on open files up to the hard one, so that
        // connections are capped by the listeners' limit, not by the default of 1024.
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        // Before binding: once clients can connect, a signal must find its handler.
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(err) => return fail(format_args!("cannot install signal handlers: {err}")),
        };
        let mut bound = Vec::with_capacity(listeners.len());
        for listener in listeners {
            match listener.addr.bind().await {
                Ok(socket) => bound.push((socket, listener)),
                Err(err) => return fail(err),
            }
        }
        let (trigger, shutdown) = shutdown::channel();
        let mut serving = JoinSet::new();
        let mut addrs = Vec::with_capacity(bound.len());
        for (socket, listener) in bound {
            let port = socket
                .local_addr()
                .map_or(listener.addr.port(), |addr| addr.port());
            let addr = listener.addr.with_port(port);
            (listener.announce)(&addr);
            serving.spawn((listener.serve)(socket, shutdown.clone()));
            addrs.push(addr);
        }
        for hook in &mut hooks {
            hook.started(&addrs);
        }

        let mut failed = false;
        let mut cut_off = false;
        // Serve until the first signal, or until a listener stops by itself, which only a
        // failure makes it do; then the others drain too.
        tokio::select! {
            () = signals.recv() => {}
            Some(stopped) = serving.join_next() => {
                failed |= report(&name, stopped, &mut cut_off);
            }
        }
        for hook in &mut hooks {
            hook.stopping().await;
        }
        trigger.drain(drain);
        let deadline = shutdown
            .deadline()
            .unwrap_or_else(tokio::time::Instant::now)
            + OVERRUN;
        loop {
            tokio::select! {
                stopped = serving.join_next() => match stopped {
                    Some(stopped) => failed |= report(&name, stopped, &mut cut_off),
                    None => break,
                },
                () = signals.recv() => {
                    eprintln!("{name}: second signal: stopping without waiting for requests in flight");
                    return ExitCode::FAILURE;
                }
                () = tokio::time::sleep_until(deadline) => {
                    eprintln!("{name}: a listener did not stop within its drain deadline; stopping without it");
                    return ExitCode::FAILURE;
                }
            }
        }
        if cut_off {
            eprintln!(
                "{name}: requests still in flight after {} were cut off",
                GoDuration(drain)
            );
        }
        if failed || cut_off {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Reports how one listener stopped; `true` when it failed.
fn report(
    name: &str,
    stopped: Result<io::Result<Outcome>, tokio::task::JoinError>,
    cut_off: &mut bool,
) -> bool {
    match stopped {
        Ok(Ok(Outcome::Drained)) => false,
        Ok(Ok(Outcome::DeadlineExceeded)) => {
            *cut_off = true;
            false
        }
        Ok(Err(err)) => {
            fail(format_args!("{name}: server failed: {err}"));
            true
        }
        Err(err) => {
            fail(format_args!("{name}: server failed: {err}"));
            true
        }
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("name", &self.name)
            .field("drain", &self.drain)
            .field(
                "listeners",
                &self.listeners.iter().map(|l| &l.addr).collect::<Vec<_>>(),
            )
            .field("hooks", &self.hooks.len())
            .finish()
    }
}
