//! Listen addresses written the Go way: `:8080` for every interface, `HOST:PORT` for one.
//!
//! Go kit services take their listen address as Go's `net.Listen` does, and users of the
//! tutorial type them that way, so kit-core reads the same forms:
//!
//! ```
//! use kit_core::listen::ListenAddr;
//!
//! let every: ListenAddr = ":8080".parse().unwrap();
//! assert_eq!(every.port(), 8080);
//! assert_eq!(every.host(), None);
//!
//! let local: ListenAddr = "127.0.0.1:0".parse().unwrap();
//! assert_eq!(local.host(), Some("127.0.0.1"));
//!
//! let err = "8080".parse::<ListenAddr>().unwrap_err();
//! assert_eq!(err.to_string(), r#"missing ":" before the port; did you mean ":8080"?"#);
//! ```
//!
//! [`ListenAddr::bind`] listens on IPv6 and IPv4 at once for `:PORT` (as Go does), falling back
//! to IPv4 alone where the machine has no IPv6.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Where a server listens: a port on every interface, or a host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    host: Option<String>,
    port: u16,
}

/// Why a listen address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseListenAddrError {
    /// There is no `:` before the port.
    #[error("missing \":\" before the port; did you mean \":{0}\"?")]
    MissingColon(String),
    /// There is no `:PORT` at all.
    #[error("expected :PORT or HOST:PORT, e.g. :8080 or 127.0.0.1:8080")]
    Malformed,
    /// The port is not a number from 0 to 65535.
    #[error("invalid port \"{0}\": expected a number from 0 to 65535")]
    Port(String),
    /// An IPv6 host is written without brackets.
    #[error("IPv6 hosts need brackets, e.g. [::1]:8080")]
    UnbracketedIpv6,
}

/// Why a server could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    addr: ListenAddr,
    #[source]
    source: io::Error,
}

impl BindError {
    /// The address that could not be listened on.
    pub fn addr(&self) -> &ListenAddr {
        &self.addr
    }

    /// The operating system's reason.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl ListenAddr {
    /// Every interface, on `port`.
    pub fn all_interfaces(port: u16) -> Self {
        Self { host: None, port }
    }

    /// The host, or `None` for every interface.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The same host with another port: to show where a server bound with port 0 listens.
    pub fn with_port(&self, port: u16) -> Self {
        Self {
            host: self.host.clone(),
            port,
        }
    }

    /// The port; 0 lets the operating system choose one.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Opens a listening socket on this address.
    pub async fn bind(&self) -> Result<TcpListener, BindError> {
        let result = match &self.host {
            None => bind_all_interfaces(self.port),
            Some(host) => bind_host(host, self.port).await,
        };
        result.map_err(|source| BindError {
            addr: self.clone(),
            source,
        })
    }
}

fn bind_all_interfaces(port: u16) -> io::Result<TcpListener> {
    match bind_socket(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), true) {
        Err(err) if err.kind() != io::ErrorKind::AddrInUse => {
            // No IPv6 on this machine: IPv4 alone still serves `localhost` and the LAN.
            bind_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), false)
        }
        result => result,
    }
}

async fn bind_host(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        match bind_socket(addr, false) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
    }))
}

fn bind_socket(addr: SocketAddr, dual_stack: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if dual_stack {
        socket.set_only_v6(false)?;
    }
    // As Go and tokio do: a restarted server can bind while old connections linger in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

impl FromStr for ListenAddr {
    type Err = ParseListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                ParseListenAddrError::MissingColon(s.to_owned())
            } else {
                ParseListenAddrError::Malformed
            });
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| ParseListenAddrError::Port(port.to_owned()))?;
        let host = match host {
            "" => None,
            "[]" => return Err(ParseListenAddrError::Malformed),
            bracketed if bracketed.starts_with('[') && bracketed.ends_with(']') => {
                Some(bracketed[1..bracketed.len() - 1].to_owned())
            }
            plain if plain.contains(':') => return Err(ParseListenAddrError::UnbracketedIpv6),
            plain => Some(plain.to_owned()),
        };
        Ok(Self { host, port })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            None => write!(f, ":{}", self.port),
            Some(host) if host.contains(':') => write!(f, "[{host}]:{}", self.port),
            Some(host) => write!(f, "{host}:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ListenAddr, String> {
        s.parse::<ListenAddr>().map_err(|e| e.to_string())
    }

    #[test]
    fn reads_the_go_forms() {
        assert_eq!(parse(":8080"), Ok(ListenAddr::all_interfaces(8080)));
        let host = parse("localhost:8001").expect("valid");
        assert_eq!((host.host(), host.port()), (Some("localhost"), 8001));
        let v6 = parse("[::1]:80").expect("valid");
        assert_eq!((v6.host(), v6.port()), (Some("::1"), 80));
        assert_eq!(v6.to_string(), "[::1]:80");
        assert_eq!(parse(":0").expect("valid").to_string(), ":0");
        assert_eq!(v6.with_port(8080).to_string(), "[::1]:8080");
    }

    #[test]
    fn explains_what_is_wrong() {
        assert_eq!(
            parse("8080"),
            Err(r#"missing ":" before the port; did you mean ":8080"?"#.into())
        );
        assert_eq!(
            parse("localhost"),
            Err("expected :PORT or HOST:PORT, e.g. :8080 or 127.0.0.1:8080".into())
        );
        assert_eq!(
            parse(":http"),
            Err(r#"invalid port "http": expected a number from 0 to 65535"#.into())
        );
        assert_eq!(
            parse(":70000"),
            Err(r#"invalid port "70000": expected a number from 0 to 65535"#.into())
        );
        assert_eq!(
            parse("[]:80"),
            Err("expected :PORT or HOST:PORT, e.g. :8080 or 127.0.0.1:8080".into())
        );
        assert_eq!(
            parse("::1:80"),
            Err("IPv6 hosts need brackets, e.g. [::1]:8080".into())
        );
    }

    #[tokio::test]
    async fn all_interfaces_accepts_ipv4_loopback() {
        let listener = ListenAddr::all_interfaces(0).bind().await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .expect("IPv4 clients reach an all-interfaces listener");
    }

    #[tokio::test]
    async fn a_port_in_use_is_a_clear_error() {
        let first = parse("127.0.0.1:0")
            .expect("valid")
            .bind()
            .await
            .expect("bind");
        let port = first.local_addr().expect("addr").port();
        let addr = parse(&format!("127.0.0.1:{port}")).expect("valid");
        let err = addr.bind().await.expect_err("the port is taken");
        assert_eq!(err.io_error().kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string()
                .starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
            "{err}"
        );
    }
}
