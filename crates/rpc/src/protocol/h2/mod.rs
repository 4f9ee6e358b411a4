//! HTTP/2 (RFC 9113) on the server, on the same port as baidu_std and
//! HTTP/1.1 (bRPC's `http2_rpc_protocol`), in fibrpc's own I/O path.
//!
//! - Detection: a connection whose first bytes are the client preface
//!   (`PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`), in plaintext ("prior
//!   knowledge") or over TLS (where a connection whose ALPN chose `h2`
//!   must start with it).
//! - The connection's reader parses frames in order (`conn.rs`): SETTINGS,
//!   PING, WINDOW_UPDATE, RST_STREAM, GOAWAY and PRIORITY are handled
//!   there, a request's HEADERS (+ CONTINUATION) and DATA are gathered
//!   per stream; only a complete request becomes a message, processed in
//!   a fiber like any other protocol's.
//! - A request is answered by the same dispatch as HTTP/1.1 (user
//!   handlers, the builtin console, pb methods with JSON), or, with
//!   `content-type: application/grpc`, as a gRPC call
//!   ([`crate::protocol::grpc`]) of the services registered for
//!   baidu_std.
//! - Responses are written by their fibers through `Socket::write`,
//!   within the peer's flow-control windows and frame size (`send.rs`);
//!   what a window does not let out waits in the connection's state
//!   and is written by the reader when the peer's WINDOW_UPDATE comes.
//!   A handler never blocks on a window, so a reader waiting for room
//!   never waits on a handler that waits on the reader.
//! - [`hpack`] is fibrpc's own (see there why).
//! - The client half ([`client`]): requests as streams on a client
//!   connection, for gRPC's [`GrpcChannel`](crate::protocol::grpc::GrpcChannel).
//! - Bad input ends only its connection, with GOAWAY and the RFC's error
//!   code, or only its stream, with RST_STREAM; what one connection may
//!   hold is bounded by [`H2Options`].

pub mod client;
mod client_conn;
mod client_reader;
mod client_send;
mod client_stream;
mod conn;
mod flow;
pub mod frame;
pub mod hpack;
mod inbound;
mod payload;
mod reader;
mod request;
mod send;
mod server;
mod stream_send;
mod wire;

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::{Parsed, Protocol, ServerContext};
use crate::socket::Socket;
pub use client_reader::ClientFrameReader;
pub(crate) use conn::H2Conn;
pub(crate) use inbound::{Inbound, InboundEnd, Taken};
pub use reader::FrameReader;
pub(crate) use send::ResponseParts;
pub(crate) use server::StreamOut;
pub(crate) use stream_send::SendFailure;
pub use wire::Wire;

/// HTTP/2 limits of a server ([`crate::ServerOptions::h2`]). The
/// defaults follow hyper's and nghttp2's.
#[derive(Debug, Clone)]
pub struct H2Options {
    /// Streams a client may have open at once on one connection
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`; default 200, hyper's). A
    /// stream past it is refused (`RST_STREAM REFUSED_STREAM`, which
    /// tells the client it did not run).
    pub max_concurrent_streams: u32,
    /// The flow-control window of each stream this server advertises
    /// (`SETTINGS_INITIAL_WINDOW_SIZE`; default 1 MiB, hyper's), and of
    /// the connection. The window is given back as data arrives; a
    /// request body is bounded by `ServerOptions::max_body_size`
    /// (`413` past it), so a connection holds at most
    /// `max_concurrent_streams × max_body_size` of bodies.
    pub initial_window_size: u32,
    /// The largest frame this server accepts (`SETTINGS_MAX_FRAME_SIZE`;
    /// default 16 KiB, the protocol's minimum). A larger one ends the
    /// connection (`FRAME_SIZE_ERROR`).
    pub max_frame_size: u32,
    /// The largest header list a request may have
    /// (`SETTINGS_MAX_HEADER_LIST_SIZE`, counted as RFC 9113 §6.5.2 says;
    /// default 16 KiB, hyper's). A request over it is answered `431`; a
    /// header block (HEADERS and CONTINUATION frames, still compressed)
    /// over it ends the connection (`ENHANCE_YOUR_CALM`) before it is
    /// decoded, so a decompression bomb costs at most this much.
    pub max_header_list_size: u32,
    /// Streams a client may reset while they are processed (or which the
    /// server must reset for the client's errors) beyond those answered
    /// in full: past it the connection ends with `ENHANCE_YOUR_CALM`
    /// (default 200). This stops the "rapid reset" attack (CVE-2023-44487),
    /// where a client opens and cancels streams to make the server start
    /// work it never has to finish answering; a client that cancels now
    /// and then is never near it, since every answered stream pays one
    /// back.
    pub max_reset_streams: u32,
    /// PING and SETTINGS acknowledgements queued and not yet taken by
    /// the kernel (the client does not read them): past it the
    /// connection ends with `ENHANCE_YOUR_CALM` (default 1000, nghttp2's
    /// bound on its queue of such frames). This stops the "ping flood"
    /// and "settings flood" attacks (CVE-2019-9512, CVE-2019-9515); a
    /// client that reads, however many PINGs it sends, never has more
    /// than a few waiting.
    pub max_pending_acks: u32,
    /// Bytes of one streaming response (a gRPC server-streaming or
    /// bidirectional call) held for the client's flow-control window:
    /// past it the handler's `send` waits (default 256 KiB). A client
    /// that reads slowly thus costs at most this plus one message per
    /// stream, however much the handler has to send. On a client
    /// ([`GrpcChannel::with_h2_options`](crate::GrpcChannel::with_h2_options))
    /// the same bound holds a streaming request's `send` for the
    /// server's windows; what the server streams back is held up to
    /// `initial_window_size` per stream, given back as `recv` takes it.
    pub stream_send_buffer: u32,
}

impl Default for H2Options {
    fn default() -> Self {
        H2Options {
            max_concurrent_streams: 200,
            initial_window_size: 1 << 20,
            max_frame_size: frame::DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 << 10,
            max_reset_streams: 200,
            max_pending_acks: 1000,
            stream_send_buffer: 256 << 10,
        }
    }
}

impl H2Options {
    /// These limits brought within what the protocol allows (RFC 9113
    /// §6.5.2), as a connection uses them.
    pub fn within_protocol(self) -> H2Options {
        H2Protocol::new(self).options
    }
}

/// A complete request on a stream, cut by the connection's reader.
#[derive(Debug)]
pub struct H2Request {
    stream: u32,
    req: Box<http::Request<IOBuf>>,
    /// A streaming call's input, still arriving (its body is empty).
    inbound: Option<Arc<Inbound>>,
}

impl H2Request {
    /// The stream the request came on.
    pub fn stream_id(&self) -> u32 {
        self.stream
    }

    /// The request.
    pub fn request(&self) -> &http::Request<IOBuf> {
        &self.req
    }

    /// Whether the request is a streaming call, processed from its
    /// headers on while its body still arrives.
    pub fn is_streaming(&self) -> bool {
        self.inbound.is_some()
    }
}

/// HTTP/2 as a server speaks it.
#[derive(Debug, Clone, Default)]
pub struct H2Protocol {
    options: H2Options,
}

impl H2Protocol {
    /// The protocol with these limits.
    pub fn new(options: H2Options) -> H2Protocol {
        let mut options = options;
        // What the protocol allows (RFC 9113 §6.5.2).
        options.max_frame_size = options
            .max_frame_size
            .clamp(frame::DEFAULT_MAX_FRAME_SIZE, frame::MAX_MAX_FRAME_SIZE);
        options.initial_window_size = options.initial_window_size.min(frame::MAX_WINDOW as u32);
        options.max_concurrent_streams = options.max_concurrent_streams.max(1);
        H2Protocol { options }
    }
}

impl Protocol for H2Protocol {
    type Message = H2Request;

    fn name(&self) -> &'static str {
        "h2"
    }

    fn parse(&self, buf: &mut IOBuf, sock: &Arc<Socket>, _eof: bool) -> Parsed<H2Request> {
        match sock.existing_protocol_state::<H2Conn>() {
            Some(conn) => conn.parse(buf, sock, &self.options),
            None => conn::detect(buf, sock, &self.options),
        }
    }

    /// As HTTP/1.1: the first request's `Authorization` header (gRPC
    /// clients send their token as `authorization` metadata) is the
    /// connection's credential. A refused connection is closed.
    fn verify(
        &self,
        first: &H2Request,
        conn: &Arc<Socket>,
        server: &ServerContext,
    ) -> Result<(), crate::RpcError> {
        let credential = first
            .req
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        crate::auth::verify_connection(server, conn, credential)
    }

    fn on_server_stop(&self, conn: &Arc<Socket>) {
        if let Some(state) = conn.existing_protocol_state::<H2Conn>() {
            state.go_away(conn);
        }
    }

    fn describe_connection(&self, conn: &Socket) -> Vec<(&'static str, String)> {
        conn.existing_protocol_state::<H2Conn>()
            .map_or_else(Vec::new, H2Conn::describe)
    }

    fn process_request(&self, msg: H2Request, conn: &Arc<Socket>, server: &ServerContext) {
        server::process_request(server, conn, msg);
    }
}
