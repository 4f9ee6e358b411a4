//! Progressive responses (bRPC's `ProgressiveAttachment`): a body
//! written piece by piece as its handler produces it, each piece on the
//! wire at once — HTTP/1.1 chunks here, the DATA frames of an HTTP/2
//! stream in `h2/server.rs`. gRPC-Web's server streaming is one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use http::Response;

use super::encode::{encode_chunk, encode_chunked_head, LAST_CHUNK};
use super::order::ServerConn;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// The body of a response being written in pieces.
pub(crate) trait ProgressiveWriter: Send + Sync {
    /// Writes `data` as the next piece of the body (the head goes before
    /// the first). Waits while more than the writer's buffer of the
    /// response is queued and not taken by the peer, until `deadline`.
    /// Fails once the connection or the stream is gone.
    fn write(&self, data: IOBuf, deadline: Option<Instant>) -> Result<(), RpcError>;

    /// Ends the body with `last` (its final piece, maybe empty). Later
    /// writes are not allowed.
    fn finish(&self, last: IOBuf);
}

/// A progressive HTTP/1.1 response: `Transfer-Encoding: chunked`, in
/// request order with the connection's other responses.
pub(crate) struct ChunkedWriter {
    sock: Arc<Socket>,
    seq: u64,
    close: bool,
    /// Queued bytes past which [`write`](ProgressiveWriter::write) waits.
    buffer: usize,
}

/// How long a writer waiting for the kernel to take queued bytes sleeps
/// at most between looks. A socket signals nobody when its queue
/// drains, so the wait polls: it starts at 1 ms and doubles up to this.
const MAX_POLL: Duration = Duration::from_millis(20);

impl ChunkedWriter {
    /// Starts request `seq`'s response with `head`'s status line and
    /// headers (its body is ignored); `close`: the connection closes
    /// after it.
    pub(crate) fn start<B>(
        sock: Arc<Socket>,
        seq: u64,
        close: bool,
        head: &Response<B>,
        buffer: usize,
    ) -> ChunkedWriter {
        let mut wire = IOBuf::new();
        encode_chunked_head(head, close, &mut wire);
        let w = ChunkedWriter {
            sock,
            seq,
            close,
            buffer,
        };
        w.queue(wire, false);
        w
    }

    fn queue(&self, data: IOBuf, done: bool) -> bool {
        match self.sock.protocol_state::<ServerConn>() {
            Some(conn) => conn.write_part(&self.sock, self.seq, data, done, self.close),
            None => false,
        }
    }

    /// Waits while more than `buffer` bytes are queued on the socket.
    fn wait_for_room(&self, deadline: Option<Instant>) -> Result<(), RpcError> {
        let mut nap = Duration::from_millis(1);
        while self.sock.unwritten_bytes() > self.buffer {
            if self.sock.failed() {
                return Err(gone());
            }
            let now = Instant::now();
            let nap_until = match deadline {
                Some(d) if d <= now => {
                    return Err(RpcError::new(
                        errno::ERPCTIMEDOUT,
                        "the deadline passed while the client read slowly",
                    ))
                }
                Some(d) => d.min(now + nap),
                None => now + nap,
            };
            let _ = fibrpc_fiber::sleep_until(nap_until);
            nap = (nap * 2).min(MAX_POLL);
        }
        Ok(())
    }
}

fn gone() -> RpcError {
    RpcError::new(
        errno::EFAILEDSOCKET,
        "the connection of the progressive response failed",
    )
}

impl ProgressiveWriter for ChunkedWriter {
    fn write(&self, data: IOBuf, deadline: Option<Instant>) -> Result<(), RpcError> {
        if self.sock.failed() {
            return Err(gone());
        }
        self.wait_for_room(deadline)?;
        let mut wire = IOBuf::new();
        encode_chunk(data, &mut wire);
        if self.queue(wire, false) {
            Ok(())
        } else {
            Err(gone())
        }
    }

    fn finish(&self, last: IOBuf) {
        let mut wire = IOBuf::new();
        encode_chunk(last, &mut wire);
        wire.append(LAST_CHUNK);
        self.queue(wire, true);
    }
}
