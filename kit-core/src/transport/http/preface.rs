//! A connection's first bytes: HTTP/2's preface is answered with a clear refusal, anything else
//! is handed to hyper as it came.
//!
//! A client that assumes HTTP/2 (`curl --http2-prior-knowledge`, a gRPC client pointed at the
//! wrong port) opens with `PRI * HTTP/2.0`, which hyper's HTTP/1 server would answer by closing
//! the connection without a word. To tell it why, the accept loop reads the first bytes itself,
//! and since what it has read is gone from the socket, hyper gets them back first
//! ([`Replayed`]). Reading, not peeking: a client that sends a few bytes and then stops sending
//! is seen to have stopped, where peeking would see the same bytes over and over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::joined::Joined;

/// The preface an HTTP/2 client sends first when it assumes the server speaks HTTP/2.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// What a connection opened with.
#[derive(Debug)]
pub(super) enum Opening {
    /// HTTP/1, or anything else that is not HTTP/2's preface: for hyper, bytes and all.
    Http1(Replayed),
    /// HTTP/2's preface, answered with a 505; or a client that went away before a byte, or
    /// sent nothing within the patience given. Either way there is nothing more to do.
    Done,
}

/// Reads the connection's first bytes, as many as it takes to tell whether they are HTTP/2's
/// preface, waiting no longer than `patience` for them.
pub(super) async fn sniff(mut stream: TcpStream, patience: Duration) -> Opening {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    let mut seen = 0;
    let reading = async {
        while seen < first.len() {
            match stream.read(&mut first[seen..]).await {
                // The client stopped sending (or the connection failed): what came is all.
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
            if !HTTP2_PREFACE.starts_with(&first[..seen]) {
                break;
            }
        }
    };
    if tokio::time::timeout(patience, reading).await.is_err() && seen == 0 {
        return Opening::Done;
    }
    if first[..seen] == *HTTP2_PREFACE {
        refuse_http2(stream).await;
        return Opening::Done;
    }
    Opening::Http1(Replayed {
        first,
        len: seen,
        at: 0,
        stream,
        joined: Joined::default(),
    })
}

/// Answers an HTTP/2 client with a plain HTTP/1.1 505, which such a client will not read but a
/// person with a packet capture or `curl --http2-prior-knowledge -v` will, and closes.
async fn refuse_http2(mut stream: TcpStream) {
    let body = "{\"error\":\"this server speaks HTTP/1.1 only\"}\n";
    let answer = format!(
        "HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A connection whose first bytes were read ahead: reads give them again before the rest. Its
/// small answers leave in one write ([`Joined`]).
#[derive(Debug)]
pub(super) struct Replayed {
    first: [u8; HTTP2_PREFACE.len()],
    len: usize,
    at: usize,
    stream: TcpStream,
    /// Where a small answer's buffers are joined into one write.
    joined: Joined,
}

impl AsyncRead for Replayed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.len {
            let n = (this.len - this.at).min(buf.remaining());
            buf.put_slice(&this.first[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replayed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.joined.poll_write(&mut this.stream, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// How long a connection closed with bytes of its client still unread goes on being read (and
/// the bytes dropped) before it is closed for good.
const LINGER: Duration = Duration::from_secs(2);

/// Closing a connection whose client is still sending (a body refused with 413 before it was
/// read, a request cut off) would make the kernel answer the unread bytes with a reset, and the
/// client, still busy writing, would lose the answer that explains the refusal. Such a
/// connection, already shut for writing, is kept open a moment and read until its client
/// closes it, as HTTP servers have long done ("lingering close"). The check is one read that
/// does not wait, once per connection; only a connection with bytes unread costs more.
impl Drop for Replayed {
    fn drop(&mut self) {
        let mut probe = [0u8; 1];
        if !matches!(self.stream.try_read(&mut probe), Ok(n) if n > 0) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // A second descriptor keeps the connection open once this one is closed.
        let Ok(descriptor) = std::os::fd::AsFd::as_fd(&self.stream).try_clone_to_owned() else {
            return;
        };
        let stream = std::net::TcpStream::from(descriptor);
        runtime.spawn(async move {
            if let Ok(stream) = TcpStream::from_std(stream) {
                linger(stream).await;
            }
        });
    }
}

/// Shuts `stream` for writing, then reads and drops what its client sends until it closes or
/// [`LINGER`] has passed.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 16 * 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A connection whose client sent `bytes` (then, if `close`, stopped sending), as the
    /// server sees it.
    async fn opened(bytes: &[u8], close: bool) -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        client.write_all(bytes).await.expect("write");
        if close {
            client.shutdown().await.expect("shutdown");
        }
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    async fn replayed(opening: Opening) -> Vec<u8> {
        let Opening::Http1(mut replayed) = opening else {
            panic!("not handed on: {opening:?}");
        };
        let mut all = Vec::new();
        replayed.read_to_end(&mut all).await.expect("read");
        all
    }

    #[tokio::test]
    async fn a_request_is_handed_on_whole() {
        let request = b"POST /uppercase HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}";
        let (_client, server) = opened(request, true).await;
        let opening = sniff(server, Duration::from_secs(5)).await;
        assert_eq!(replayed(opening).await, request);
    }

    #[tokio::test]
    async fn the_preface_is_answered_505() {
        let (mut client, server) = opened(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false).await;
        assert!(matches!(
            sniff(server, Duration::from_secs(5)).await,
            Opening::Done
        ));
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("read");
        assert!(
            answer.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
            "{answer}"
        );
    }

    /// Bytes that begin like the preface, from a client that then stops sending, are handed on
    /// at once: hyper answers or closes; nothing waits for the rest of a preface.
    #[tokio::test(start_paused = true)]
    async fn part_of_a_preface_then_silence_is_handed_on_at_once() {
        for part in [&b"P"[..], b"PR", b"PRI * HTTP/2"] {
            let (_client, server) = opened(part, true).await;
            let before = tokio::time::Instant::now();
            let opening = sniff(server, Duration::from_secs(30)).await;
            assert_eq!(before.elapsed(), Duration::ZERO, "{part:?}");
            assert_eq!(replayed(opening).await, part);
        }
    }

    /// A client that connects and sends nothing is let go after the patience given.
    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_let_go_after_the_patience() {
        let (_client, server) = opened(b"", false).await;
        let before = tokio::time::Instant::now();
        assert!(matches!(
            sniff(server, Duration::from_secs(30)).await,
            Opening::Done
        ));
        assert_eq!(before.elapsed(), Duration::from_secs(30));
    }
}
