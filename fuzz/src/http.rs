//! A whole HTTP/1.1 connection into stringsvc1, through kit-core's accept loop.
//!
//! The bytes are what a client sends on one connection (one request, several pipelined, or
//! garbage), over a real socket to the server the binary runs, guard, router, decoder and all;
//! the client then stops sending and reads until the server closes.
//!
//! Rules: the server answers in HTTP/1.1 (1.0 to a 1.0 client) or closes without a word, and it closes: a connection
//! whose client has stopped sending is never left hanging (a panic inside the server aborts the
//! process, which the fuzzer reports as a crash).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use crate::fixture::runtime;

/// How long the server may take to finish with a connection whose client has said everything:
/// far longer than any answer takes, short enough to call a hang a hang.
const PATIENCE: Duration = Duration::from_secs(10);

/// Sends `data` on a new connection and reads what comes back; see the module's rules.
pub fn run(data: &[u8]) {
    let mut stream = TcpStream::connect(server()).unwrap_or_else(|err| panic!("connect: {err}"));
    stream
        .set_read_timeout(Some(PATIENCE))
        .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
        .unwrap_or_else(|err| panic!("socket options: {err}"));
    // The server may close before it has read everything (a refused request): what it did not
    // read does not matter, what it answered does.
    let _ = stream.write_all(data);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!(
            "the server neither answered nor closed within {PATIENCE:?} ({err}); it had sent {:?}",
            String::from_utf8_lossy(&answer)
        ),
    }
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
        "not an HTTP/1.x answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// stringsvc1, served as its binary serves it, on a port of its own, for the whole process.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|err| panic!("bind: {err}"));
            let addr = listener
                .local_addr()
                .unwrap_or_else(|err| panic!("address: {err}"));
            // Never asked to stop (a dropped trigger never fires): the server lives as long as
            // the process.
            let (_, shutdown) = kit_core::shutdown::channel();
            let app = stringsvc1::transport::app(stringsvc1::service::BasicStringService);
            tokio::spawn(kit_core::transport::http::serve(listener, app, shutdown));
            addr
        })
    })
}
