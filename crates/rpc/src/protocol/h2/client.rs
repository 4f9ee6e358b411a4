//! HTTP/2 on a client connection: what a protocol on top (gRPC's
//! [`GrpcChannel`](crate::protocol::grpc::GrpcChannel)) uses to send
//! requests as streams and to get their responses, in fibrpc's own I/O
//! path (the connection's reader parses frames; requests are written
//! as IOBuf through the socket's write path).
//!
//! - [`open_stream`] packs a request on a new stream (the connection
//!   preface in front of the first), within the server's
//!   `SETTINGS_MAX_CONCURRENT_STREAMS` (a request past it waits for a
//!   stream to end, until its deadline), `MAX_FRAME_SIZE` and windows;
//!   the call engine queues it under the connection's order lock so
//!   stream ids rise on the wire. [`request_queued`] lets the body a
//!   window held back follow.
//! - [`parse`] runs in the connection's reader: control frames are
//!   answered there (SETTINGS ACK, PING ACK, WINDOW_UPDATE); a stream's
//!   HEADERS, DATA and trailers become one [`H2Reply`], matched to its
//!   call by stream id. RST_STREAM fails that stream's call; GOAWAY
//!   fails the calls on streams the server will not process with an
//!   error saying they did not run ([`StreamError::unprocessed`]), and
//!   the connection takes no new stream.
//! - A server breaking the protocol (a malformed or oversized frame, a
//!   header block over `max_header_list_size` still compressed, an HPACK
//!   error) ends the connection: [`Parsed::Bad`] fails every call on it
//!   with the reason. A response whose decoded headers pass the limit
//!   (an HPACK bomb) or whose body passes the socket's `max_body_size`
//!   fails only its call, and its stream is reset.

use std::sync::Arc;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;
use http::HeaderMap;

use super::client_conn::H2ClientConn;
pub use super::client_stream::{StreamSink, Taken};
use super::H2Options;
use crate::protocol::Parsed;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// A complete response on one stream.
#[derive(Debug, Default)]
pub struct H2Response {
    /// `:status`.
    pub status: u16,
    /// The response's headers (no pseudo-headers).
    pub headers: HeaderMap,
    /// The body.
    pub body: IOBuf,
    /// The trailers (empty if there were none).
    pub trailers: HeaderMap,
}

/// Why a stream ended without a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The RST_STREAM or GOAWAY code, if the server sent one.
    pub reason: Option<u32>,
    /// The server did not process the request (`REFUSED_STREAM`, or a
    /// stream past a GOAWAY's last stream id): sending it again is safe.
    pub unprocessed: bool,
    /// The server sent GOAWAY: the connection takes no new stream.
    pub goaway: bool,
    /// What happened.
    pub text: String,
}

/// What a client connection's reader cuts: the end of one stream.
#[derive(Debug)]
pub struct H2Reply {
    /// The stream.
    pub stream: u32,
    /// The correlation id of the call the stream carried.
    pub cid: u64,
    /// The response, or why there is none.
    pub result: Result<H2Response, StreamError>,
}

impl H2Reply {
    /// Whether the connection takes new streams after this reply (not
    /// after a GOAWAY).
    pub fn connection_usable(&self) -> bool {
        !matches!(&self.result, Err(e) if e.goaway)
    }
}

/// A request as [`open_stream`] sends it.
#[derive(Debug)]
pub struct StreamRequest<'a> {
    /// The HPACK-encoded header block (pseudo-headers first).
    pub headers: &'a [u8],
    /// The body (END_STREAM after it if `end`; on the HEADERS if it is
    /// empty).
    pub body: IOBuf,
    /// The request ends with `body`; else more follows ([`send_data`]).
    pub end: bool,
    /// A streaming request's sink: the response's DATA goes there as it
    /// comes instead of into one body, and the stream's window is given
    /// back as the caller takes it. `None`: a whole response.
    pub sink: Option<Arc<StreamSink>>,
    /// Until when the request may wait for a stream (the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`); `None`: as long as it takes.
    pub deadline: Option<Instant>,
}

fn state(sock: &Socket) -> Result<&H2ClientConn, RpcError> {
    sock.protocol_state::<H2ClientConn>()
        .ok_or_else(|| RpcError::new(errno::EINTERNAL, "the connection speaks another protocol"))
}

/// Opens a stream on `sock` for the call `cid` and packs its request:
/// the bytes the engine queues (the preface before the first request,
/// HEADERS and CONTINUATION, the DATA the windows let out now). Must run
/// under the connection's order lock. Fails without sending anything if
/// the connection got a GOAWAY, broke, used up its stream ids, or no
/// stream freed up before the deadline.
pub fn open_stream(
    sock: &Arc<Socket>,
    opts: &H2Options,
    cid: u64,
    req: StreamRequest<'_>,
) -> Result<IOBuf, RpcError> {
    state(sock)?.open_stream(sock, opts, cid, req)
}

/// The engine queued (`queued`) or dropped the request packed for
/// `cid`: its held-back body may follow, or its stream is forgotten.
/// A queued request whose stream a GOAWAY refused while it was packed
/// gets its answer (not processed) here: the reader could not give it
/// to a call not yet waiting.
pub fn request_queued(sock: &Arc<Socket>, cid: u64, queued: bool) -> Option<H2Reply> {
    state(sock).ok()?.posted(sock, cid, queued)
}

/// More of the streaming request of call `cid`: `data`, then its end
/// if `end`. Written as far as the server's windows let; the rest waits
/// in the connection (its size is the sink's
/// [`unsent`](StreamSink::unsent)). Fails if the stream is gone (it
/// ended, was reset, or the connection broke).
pub fn send_data(sock: &Arc<Socket>, cid: u64, data: IOBuf, end: bool) -> Result<(), RpcError> {
    state(sock)?.send_data(sock, cid, data, end)
}

/// The caller of the streaming call `cid` took `n` bytes of its
/// response: the server may send that much more on its stream.
pub fn give_back(sock: &Arc<Socket>, cid: u64, n: u32) {
    if let Ok(s) = state(sock) {
        s.give_back(sock, cid, n);
    }
}

/// The call `cid` gave up waiting (its deadline passed, or its twin's
/// answer won): its stream is reset (`CANCEL`), so that it no longer
/// counts against the server's stream limit nor holds state here.
pub fn cancel(sock: &Arc<Socket>, cid: u64) {
    if let Ok(s) = state(sock) {
        s.cancel(sock, cid);
    }
}

/// Parses the server's frames (in the connection's reader) until a
/// stream ends ([`Parsed::Message`]), the input ends, or the server broke
/// the protocol ([`Parsed::Bad`]).
pub fn parse(buf: &mut IOBuf, sock: &Arc<Socket>, opts: &H2Options) -> Parsed<H2Reply> {
    match state(sock) {
        Ok(s) => s.parse(buf, sock, opts),
        Err(e) => Parsed::Bad(e.text),
    }
}
