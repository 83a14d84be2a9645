//! A small answer leaves in one plain write, not a vectored one.
//!
//! hyper hands a small answer to the socket as two buffers, its head and its body, in one
//! vectored write (`writev`). On a socket, `writev` goes through more of the kernel than a plain
//! write (`send`): the file layer's checks and importing the list of buffers, which `send` skips.
//! For a small JSON answer that costs more than copying the buffers into one (about 0.3 µs a
//! request for stringsvc1, in `perf record` samples of the kernel's write path, where the copy
//! is a few dozen instructions); for a large body, copying would cost more. So the buffers of a
//! vectored write that come to at most [`JOIN_AT_MOST`] bytes are copied into one, kept for the
//! connection's life so that it is allocated once, and sent with one plain write; larger writes,
//! and single buffers, go as they are.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// The most bytes of a vectored write that are copied together and sent with one plain write.
const JOIN_AT_MOST: usize = 4096;

/// A connection's buffer for joining the small buffers of a vectored write; empty (and not
/// allocated) until the first such write, never more than [`JOIN_AT_MOST`] bytes: as large as
/// the connection's largest small answer (about 150 bytes for the tutorial's services), next to
/// the 16 KiB hyper keeps for each connection's reads and writes.
#[derive(Debug, Default)]
pub(super) struct Joined(Vec<u8>);

impl Joined {
    /// Writes `bufs` to `io`: joined into one plain write when they are small, as they are
    /// otherwise. Like any write, it may take fewer bytes than given; the caller gives the rest
    /// again, as it would to the socket.
    pub(super) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total = bufs.iter().map(|buf| buf.len()).sum::<usize>();
        if bufs.len() < 2 || total > JOIN_AT_MOST {
            return Pin::new(io).poll_write_vectored(cx, bufs);
        }
        let joined = &mut self.0;
        joined.clear();
        joined.reserve_exact(total);
        for buf in bufs {
            joined.extend_from_slice(buf);
        }
        Pin::new(io).poll_write(cx, joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records each write it is asked for, plain or vectored, and takes at most
    /// `room` bytes of each.
    struct Recorded {
        writes: Vec<(&'static str, Vec<u8>)>,
        room: usize,
    }

    impl Recorded {
        fn new(room: usize) -> Self {
            Recorded {
                writes: Vec::new(),
                room,
            }
        }

        fn take(&mut self, kind: &'static str, bytes: Vec<u8>) -> usize {
            let n = bytes.len().min(self.room);
            self.writes.push((kind, bytes[..n].to_vec()));
            n
        }
    }

    impl AsyncWrite for Recorded {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(self.take("plain", buf.to_vec())))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let bytes = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            Poll::Ready(Ok(self.take("vectored", bytes)))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Writes `bufs` once through `joined` to a writer taking at most `room` bytes a write;
    /// returns how many bytes the write took and the writes the writer saw.
    fn write(
        joined: &mut Joined,
        room: usize,
        bufs: &[&[u8]],
    ) -> (usize, Vec<(&'static str, Vec<u8>)>) {
        let mut io = Recorded::new(room);
        let slices: Vec<_> = bufs.iter().map(|buf| io::IoSlice::new(buf)).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(n)) = joined.poll_write(&mut io, &mut cx, &slices) else {
            panic!("the write did not complete");
        };
        (n, io.writes)
    }

    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n";
    const BODY: &[u8] = b"{\"v\":\"HELLO\"}\n";

    #[test]
    fn small_buffers_leave_in_one_plain_write() {
        let mut joined = Joined::default();
        let (n, writes) = write(&mut joined, usize::MAX, &[HEAD, BODY]);
        assert_eq!(n, HEAD.len() + BODY.len());
        assert_eq!(writes, [("plain", [HEAD, BODY].concat())]);
        // Exactly the most that is joined.
        let half = vec![b'x'; JOIN_AT_MOST / 2];
        let (_, writes) = write(&mut joined, usize::MAX, &[&half, &half]);
        assert_eq!(writes, [("plain", [half.as_slice(), &half].concat())]);
    }

    #[test]
    fn large_or_single_buffers_are_written_as_they_are() {
        let mut joined = Joined::default();
        let large = vec![b'x'; JOIN_AT_MOST];
        let (_, writes) = write(&mut joined, usize::MAX, &[HEAD, &large]);
        assert_eq!(writes, [("vectored", [HEAD, large.as_slice()].concat())]);
        let (_, writes) = write(&mut joined, usize::MAX, &[HEAD]);
        assert_eq!(writes, [("vectored", HEAD.to_vec())]);
        // Nothing was copied: the buffer was never needed.
        assert_eq!(joined.0.capacity(), 0);
    }

    #[test]
    fn a_short_write_takes_the_first_bytes_and_the_next_one_the_rest() {
        let mut joined = Joined::default();
        let (n, writes) = write(&mut joined, 10, &[HEAD, BODY]);
        assert_eq!(n, 10);
        assert_eq!(writes, [("plain", HEAD[..10].to_vec())]);
        // The caller gives what is left, as hyper does: the head's rest and the body.
        let (n, writes) = write(&mut joined, usize::MAX, &[&HEAD[10..], BODY]);
        assert_eq!(n, HEAD.len() - 10 + BODY.len());
        assert_eq!(writes, [("plain", [&HEAD[10..], BODY].concat())]);
    }

    #[test]
    fn the_buffer_is_kept_and_only_as_large_as_the_largest_joined_write() {
        let mut joined = Joined::default();
        write(&mut joined, usize::MAX, &[HEAD, BODY]);
        let kept = joined.0.as_ptr();
        write(&mut joined, usize::MAX, &[HEAD, BODY]);
        assert_eq!(
            joined.0.as_ptr(),
            kept,
            "reallocated for a write of the same size"
        );
        assert!(joined.0.capacity() <= JOIN_AT_MOST);
        write(&mut joined, usize::MAX, &[HEAD, &[b'x'; JOIN_AT_MOST]]);
        assert!(joined.0.capacity() <= JOIN_AT_MOST);
    }
}
