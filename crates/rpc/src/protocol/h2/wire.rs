//! [`Wire`]: what a connection's HTTP/2 state needs of the connection
//! under it. A server's or a client's is its [`Socket`];
//! [`super::FrameReader`]'s and [`super::ClientFrameReader`]'s is an
//! in-memory buffer, so that the same frame processing runs in a fuzzer
//! with no socket.

use std::fmt::Display;
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use crate::socket::Socket;
use crate::RpcError;

/// The connection under an HTTP/2 connection's state.
pub trait Wire {
    /// Queues bytes for the peer (a failed connection drops them).
    fn write(&self, out: IOBuf);
    /// Bytes queued and not yet taken by the kernel.
    fn unwritten_bytes(&self) -> usize;
    /// Bytes the kernel took since the connection opened (with
    /// `unwritten_bytes`, where a frame queued now stands in the output).
    fn written_bytes(&self) -> u64;
    /// The largest request body taken.
    fn max_body_size(&self) -> usize;
    /// The peer, for logs.
    fn peer(&self) -> impl Display;
    /// A GOAWAY for the peer's errors was queued: close once it is out.
    fn close_after_goaway(&self);
    /// Whether `req` (its headers, no body yet) is a streaming call,
    /// processed as its DATA comes rather than once it is complete
    /// (a gRPC streaming method). Default: no.
    fn is_streaming_call(&self, _req: &http::Request<IOBuf>) -> bool {
        false
    }
    /// A client connection: the server sent GOAWAY (or the stream ids
    /// ran out), new calls must take another connection. Default:
    /// nothing.
    fn set_logoff(&self) {}
    /// Why the connection failed, if it did. Default: it did not.
    fn failure(&self) -> Option<RpcError> {
        None
    }
}

impl Wire for Arc<Socket> {
    fn write(&self, out: IOBuf) {
        // A failed write means a failed connection: nothing to do.
        let _ = Socket::write(self, out);
    }

    fn unwritten_bytes(&self) -> usize {
        Socket::unwritten_bytes(self)
    }

    fn written_bytes(&self) -> u64 {
        self.stats().out_bytes
    }

    fn max_body_size(&self) -> usize {
        Socket::max_body_size(self)
    }

    fn peer(&self) -> impl Display {
        self.remote_side()
    }

    fn close_after_goaway(&self) {
        self.set_logoff();
        super::conn::linger_close(self);
    }

    fn is_streaming_call(&self, req: &http::Request<IOBuf>) -> bool {
        crate::protocol::grpc::is_streaming_call(self, req)
    }

    fn set_logoff(&self) {
        Socket::set_logoff(self);
    }

    fn failure(&self) -> Option<RpcError> {
        self.failed().then(|| self.failed_error())
    }
}
