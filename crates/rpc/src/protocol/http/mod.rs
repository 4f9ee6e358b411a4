//! HTTP/1.1 on the same port as baidu_std (bRPC's `http_rpc_protocol`).
//!
//! Messages are the [`http`] crate's `Request<IOBuf>` and
//! `Response<IOBuf>`: the types hyper users know, with fibrpc's zero-copy
//! buffer as the body.
//!
//! - [`parse`]: cutting requests and responses from a connection's input
//!   (Content-Length and chunked bodies, size limits → 413/431, malformed
//!   → 400);
//! - [`encode`]: writing them.

pub mod encode;
pub mod parse;

pub use encode::{encode_request, encode_response, wants_close};
pub use parse::{parse_request, parse_response, HttpError, HttpParse, Limits};

use fibrpc_iobuf::IOBuf;

use super::{InputMessage, Parsed, Protocol};
use crate::socket::Socket;

/// Default limit on the head of an HTTP message (request line or status
/// line plus headers): 64 KiB.
pub const DEFAULT_MAX_HEADER: usize = 64 << 10;

/// A request cut on a server connection (or the error that stopped its
/// parsing), numbered so that responses go out in request order (HTTP/1.1
/// pipelining).
#[derive(Debug)]
pub(crate) struct InboundRequest {
    /// The request, or why the input is not one (answered with its
    /// status, then the connection closes).
    pub req: Result<http::Request<IOBuf>, HttpError>,
    /// Position on the connection, set by the input messenger.
    pub seq: u64,
    /// The connection closes after the response.
    pub close: bool,
}

/// The parse limits of `sock`'s connection.
fn limits(sock: &Socket) -> Limits {
    Limits {
        max_header: sock.options.max_header,
        max_body: sock.options.max_body,
    }
}

/// HTTP requests, as a server sees them.
pub(crate) struct HttpServer;

impl Protocol for HttpServer {
    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Socket, _eof: bool) -> Parsed {
        let (parsed, waiting) = parse::parse_request_expecting(buf, limits(sock));
        if waiting {
            // Writing needs the shared handle; rare (one per such request).
            if let Some(s) = sock.id().address() {
                s.send_continue();
            }
        }
        match parsed {
            HttpParse::Complete(req) => {
                let close = wants_close(req.version(), req.headers());
                Parsed::Message(InputMessage::HttpRequest(InboundRequest {
                    req: Ok(req),
                    seq: 0,
                    close,
                }))
            }
            HttpParse::NeedMore => Parsed::NeedMore,
            HttpParse::NotMine => Parsed::NotMine,
            // Answered (400/413/431) before the connection closes.
            HttpParse::Error(e) => {
                buf.clear();
                Parsed::Message(InputMessage::HttpRequest(InboundRequest {
                    req: Err(e),
                    seq: 0,
                    close: true,
                }))
            }
        }
    }
}

/// HTTP responses, as a client sees them.
pub(crate) struct HttpClient;

impl Protocol for HttpClient {
    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Socket, eof: bool) -> Parsed {
        let head = sock.http_head_request();
        match parse_response(buf, limits(sock), head, eof) {
            HttpParse::Complete(r) => Parsed::Message(InputMessage::HttpResponse(r)),
            HttpParse::NeedMore => Parsed::NeedMore,
            HttpParse::NotMine => Parsed::NotMine,
            HttpParse::Error(e) => Parsed::Bad(format!("{} {}", e.status, e.reason)),
        }
    }
}
