//! [`ClientFrameReader`]: a client connection's HTTP/2 processing
//! without a socket — requests opened as streams, the server's bytes fed
//! to the reader, what the client writes kept in a buffer — for the
//! `h2_client` fuzz target, with the very code a `GrpcChannel`'s
//! connection runs (a hostile server's frames).

use std::sync::atomic::Ordering;

use fibrpc_iobuf::IOBuf;

use super::client::{H2Reply, StreamRequest};
use super::client_conn::H2ClientConn;
use super::hpack::encode_header;
use super::reader::Sink;
use super::H2Options;
use crate::protocol::Parsed;
use crate::RpcError;

/// One HTTP/2 client connection's state: [`open`](Self::open) requests
/// on it, [`feed`](Self::feed) it the server's bytes, and
/// [`take_output`](Self::take_output) what the client would have
/// written (the connection preface first).
#[derive(Debug)]
pub struct ClientFrameReader {
    conn: H2ClientConn,
    sink: Sink,
    options: H2Options,
    next_cid: std::sync::atomic::AtomicU64,
}

impl ClientFrameReader {
    /// A connection with these limits, and `max_body` for response
    /// bodies.
    pub fn new(options: H2Options, max_body: usize) -> ClientFrameReader {
        ClientFrameReader {
            conn: H2ClientConn::default(),
            sink: Sink {
                max_body,
                ..Default::default()
            },
            options: options.within_protocol(),
            next_cid: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Opens a stream with a gRPC-style `POST` carrying `body`, as a
    /// call does, and queues it; returns the call's correlation id.
    /// Never waits: a request past the server's stream limit fails at
    /// once, as does one on a connection that broke or got GOAWAY.
    pub fn open(&self, body: IOBuf) -> Result<u64, RpcError> {
        let mut headers = Vec::with_capacity(64);
        encode_header(b":method", b"POST", &mut headers);
        encode_header(b":scheme", b"http", &mut headers);
        encode_header(b":path", b"/fuzz.Service/Method", &mut headers);
        encode_header(b":authority", b"memory", &mut headers);
        encode_header(b"content-type", b"application/grpc", &mut headers);
        let cid = self.next_cid.fetch_add(1, Ordering::Relaxed);
        let req = StreamRequest {
            headers: &headers,
            body,
            end: true,
            sink: None,
            deadline: Some(std::time::Instant::now()),
        };
        let packed = self.conn.open_stream(&self.sink, &self.options, cid, req)?;
        super::wire::Wire::write(&self.sink, packed);
        self.conn.posted(&self.sink, cid, true);
        Ok(cid)
    }

    /// Resets the stream of call `cid` (the call gave up), if it is open.
    pub fn cancel(&self, cid: u64) {
        self.conn.cancel(&self.sink, cid);
    }

    /// Parses what `input` holds, as the connection's reader does: the
    /// end of a stream ([`Parsed::Message`]), [`Parsed::Consumed`] /
    /// [`Parsed::NeedMore`], or [`Parsed::Bad`] once the server broke
    /// the protocol (a GOAWAY is then in the output).
    pub fn feed(&self, input: &mut IOBuf) -> Parsed<H2Reply> {
        self.conn.parse(input, &self.sink, &self.options)
    }

    /// Sets the bytes the connection reports as not yet written (a
    /// server that does not read).
    pub fn set_unwritten(&self, n: usize) {
        self.sink.unwritten.store(n, Ordering::Relaxed);
    }

    /// What the client wrote since the last call.
    pub fn take_output(&self) -> IOBuf {
        self.sink.take()
    }
}
