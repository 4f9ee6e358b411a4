//! A request on an HTTP/2 server connection: gRPC when its content type
//! says so, else the HTTP dispatch every HTTP version shares.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;
use http::Response;

use super::{H2Conn, H2Request};
use crate::protocol::http::SendResponse;
use crate::server::ServerContext;
use crate::socket::Socket;

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
}
