//! HTTP/1.1 on the same port as baidu_std (bRPC's `http_rpc_protocol`),
//! server and client.
//!
//! Messages are the [`http`] crate's `Request<IOBuf>` and
//! `Response<IOBuf>`: the types hyper users know, with fibrpc's zero-copy
//! buffer as the body.
//!
//! - [`parse`]: cutting requests and responses from a connection's input
//!   (Content-Length and chunked bodies, size limits → 413/431, malformed
//!   → 400);
//! - [`encode`]: writing them;
//! - `order.rs`: per server connection, request numbers, responses in
//!   request order (pipelining) and `100 Continue`;
//! - `progressive.rs`: responses whose body is written in pieces
//!   (chunked), as gRPC-Web's server streaming writes them;
//! - `server.rs`: a request on a server: user handlers, the builtin
//!   console, pb methods as `POST /Service/Method` (JSON through
//!   `json.rs`, or protobuf);
//! - [`HttpChannel`]: the client, a thin front over the call engine
//!   (`client.rs`: packing requests, matching responses, HEAD).

mod client;
pub mod encode;
mod handler;
mod intercept;
mod json;
mod order;
pub mod parse;
mod progressive;
mod recycle;
mod server;

pub use client::{HttpChannel, HttpClientProtocol, HttpRequest};
pub use encode::{encode_request, encode_response, wants_close};
pub use handler::{response, text, HttpContext, HttpHandler};
pub(crate) use json::LazyJsonCodec;
pub use parse::{parse_request, parse_response, HttpError, HttpParse, Limits};
pub(crate) use progressive::ProgressiveWriter;
pub(crate) use server::{dispatch, HttpRoutes, SendResponse};

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::{Parsed, Protocol, ServerContext};
use crate::socket::Socket;
use order::ServerConn;

/// Default limit on the head of an HTTP message (request line or status
/// line plus headers): 64 KiB.
pub const DEFAULT_MAX_HEADER: usize = crate::socket::DEFAULT_MAX_HEADER;

/// A request cut on a server connection (or the error that stopped its
/// parsing), numbered so that responses go out in request order (HTTP/1.1
/// pipelining).
#[derive(Debug)]
pub struct InboundRequest {
    /// The request, or why the input is not one (answered with its
    /// status, then the connection closes).
    req: Result<Box<http::Request<IOBuf>>, HttpError>,
    /// Position on the connection.
    seq: u64,
    /// The connection closes after the response.
    close: bool,
}

/// The parse limits of `sock`'s connection.
fn limits(sock: &Socket) -> Limits {
    Limits {
        max_header: sock.max_header_size(),
        max_body: sock.max_body_size(),
    }
}

/// HTTP/1.1 requests, as a server sees them.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpServerProtocol;

impl Protocol for HttpServerProtocol {
    type Message = InboundRequest;

    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Arc<Socket>, _eof: bool) -> Parsed<InboundRequest> {
        // The connection's state, looked up once per request (each lookup
        // is a dynamic type check). Only input that starts like a request
        // takes the connection's state slot; other input returns
        // `NotMine` or `NeedMore` below before the state is needed (a
        // connection that spoke another protocol first has no
        // `ServerConn`, and its parse fails below).
        let probe = parse::probe_request(buf);
        let state = if probe == Some(true) {
            sock.protocol_state::<ServerConn>()
        } else {
            None
        };
        // The connection's chunk scan, kept between reads; a fresh scan
        // serves input without the state.
        let mut cut = |scan: &mut parse::ChunkScan| {
            parse::parse_request_expecting(buf, probe, limits(sock), scan)
        };
        let (parsed, flags) = match state {
            Some(s) => s.with_chunk_scan(cut),
            None => cut(&mut parse::ChunkScan::default()),
        };
        if flags.waiting {
            if let Some(s) = state {
                s.send_continue(sock);
            }
        }
        let (req, close) = match parsed {
            HttpParse::Complete(req) => (Ok(req), flags.close),
            HttpParse::NeedMore => return Parsed::NeedMore,
            HttpParse::NotMine => return Parsed::NotMine,
            // Answered (400/413/431) before the connection closes.
            HttpParse::Error(e) => {
                buf.clear();
                (Err(e), true)
            }
        };
        let Some(state) = state else {
            return Parsed::Bad("the connection spoke another protocol first".into());
        };
        state.wait_for_room(sock);
        Parsed::Message(InboundRequest {
            req,
            seq: state.take_seq(),
            close,
        })
    }

    fn ends_input(&self, msg: &InboundRequest) -> bool {
        msg.close
    }

    /// The credential is the `Authorization` header's value. A request
    /// that did not parse passes: it is answered 400 and the connection
    /// closes anyway.
    fn verify(
        &self,
        first: &InboundRequest,
        conn: &Arc<Socket>,
        server: &ServerContext,
    ) -> Result<(), crate::RpcError> {
        let Ok(req) = &first.req else {
            return Ok(());
        };
        let credential = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        crate::auth::verify_connection(server, conn, credential)
    }

    fn reject(
        &self,
        msg: InboundRequest,
        conn: &Arc<Socket>,
        server_ctx: &ServerContext,
        error: crate::RpcError,
    ) {
        server::reject(server_ctx, conn, msg, error);
    }

    fn process_request(&self, msg: InboundRequest, conn: &Arc<Socket>, server: &ServerContext) {
        server::process_request(server, conn, msg);
    }
}
