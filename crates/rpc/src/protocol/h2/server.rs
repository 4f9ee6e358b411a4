//! A request on an HTTP/2 server connection: gRPC when its content type
//! says so, else the HTTP dispatch every HTTP version shares.

use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::Response;

use super::{H2Conn, H2Request, SendFailure};
use crate::protocol::http::{ProgressiveWriter, SendResponse};
use crate::server::ServerContext;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Processes one request (in its fiber).
pub(super) fn process_request(ctx: &ServerContext, sock: &Arc<Socket>, msg: H2Request) {
    let H2Request {
        stream,
        req,
        inbound,
    } = msg;
    if let Some(inbound) = inbound {
        crate::protocol::grpc::serve_streaming(ctx, sock, req, inbound);
        return;
    }
    let out = StreamOut {
        sock: sock.clone(),
        stream,
    };
    if crate::protocol::grpc::is_grpc(req.headers()) {
        crate::protocol::grpc::serve(ctx, sock, req, out);
    } else {
        crate::protocol::http::dispatch(ctx, sock, req, out);
    }
}

/// Where a stream's response goes.
pub(crate) struct StreamOut {
    sock: Arc<Socket>,
    stream: u32,
}

impl StreamOut {
    /// Writes a response already in frames' terms.
    pub(crate) fn send_parts(self, parts: super::ResponseParts) {
        if let Some(conn) = self.sock.existing_protocol_state::<H2Conn>() {
            conn.respond(&self.sock, self.stream, parts);
        }
    }
}

impl SendResponse for StreamOut {
    /// The size is the body's (HPACK-coded heads and frame headers are
    /// not counted).
    fn send(self, resp: &Response<IOBuf>, head_only: bool) -> usize {
        let size = if head_only { 0 } else { resp.body().len() };
        let parts = super::request::response_parts(resp, head_only);
        self.send_parts(parts);
        size
    }

    fn progressive(self, head: &Response<IOBuf>, buffer: usize) -> Box<dyn ProgressiveWriter> {
        Box::new(StreamWriter {
            sock: self.sock,
            stream: self.stream,
            head: super::request::head_block(head),
            buffer,
        })
    }
}

/// A progressive response on a stream: HEADERS with the first piece,
/// each piece as DATA within the client's windows, END_STREAM on the
/// last. A writer waits while more than `buffer` bytes of the stream
/// wait for a window (as a gRPC stream's `send` does).
struct StreamWriter {
    sock: Arc<Socket>,
    stream: u32,
    head: Vec<u8>,
    buffer: usize,
}

impl ProgressiveWriter for StreamWriter {
    fn write(&self, data: IOBuf, deadline: Option<Instant>) -> Result<(), RpcError> {
        let Some(conn) = self.sock.existing_protocol_state::<H2Conn>() else {
            return Err(RpcError::new(
                errno::EFAILEDSOCKET,
                "not an HTTP/2 connection",
            ));
        };
        let head = || self.head.clone();
        let r = conn.stream_send(&self.sock, self.stream, &head, data, self.buffer, deadline);
        r.map_err(|f| match f {
            SendFailure::Gone => RpcError::new(errno::ECLOSE, "the client reset the stream"),
            SendFailure::TimedOut => RpcError::new(
                errno::ERPCTIMEDOUT,
                "the deadline passed while the client read slowly",
            ),
            SendFailure::ConnectionFailed => {
                RpcError::new(errno::EFAILEDSOCKET, "the connection of the stream failed")
            }
        })
    }

    fn finish(&self, last: IOBuf) {
        if let Some(conn) = self.sock.existing_protocol_state::<H2Conn>() {
            if last.is_empty() {
                // Without a final piece the stream ends with an empty
                // trailer block.
                let trailers_only = self.head.clone();
                conn.stream_finish(&self.sock, self.stream, trailers_only, Vec::new(), false);
            } else {
                conn.stream_finish_data(&self.sock, self.stream, self.head.clone(), last);
            }
        }
    }
}
