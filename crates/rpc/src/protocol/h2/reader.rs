//! [`FrameReader`]: a server connection's HTTP/2 processing without a
//! socket, fed bytes and writing into a buffer — what the `h2` fuzz
//! target drives, with the very code a server runs.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use fibrpc_iobuf::IOBuf;

use super::wire::Wire;
use super::{request, H2Conn, H2Options, H2Request};
use crate::protocol::Parsed;

/// The in-memory connection under a [`FrameReader`] (and a
/// `ClientFrameReader`).
#[derive(Debug, Default)]
pub(super) struct Sink {
    pub out: Mutex<IOBuf>,
    /// What `unwritten_bytes` reports (the fuzzer's knob).
    pub unwritten: AtomicUsize,
    pub max_body: usize,
    pub closed: AtomicBool,
}

impl Sink {
    /// What was written since the last call.
    pub fn take(&self) -> IOBuf {
        std::mem::take(&mut *self.out.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Wire for Sink {
    fn write(&self, out: IOBuf) {
        self.out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append_owned(out);
    }

    fn unwritten_bytes(&self) -> usize {
        self.unwritten.load(Ordering::Relaxed)
    }

    fn written_bytes(&self) -> u64 {
        0
    }

    fn max_body_size(&self) -> usize {
        self.max_body
    }

    fn peer(&self) -> impl Display {
        "memory"
    }

    fn close_after_goaway(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Requests under `/stream/` are processed as streaming calls, so
    /// that a fuzzer reaches that path too.
    fn is_streaming_call(&self, req: &http::Request<IOBuf>) -> bool {
        req.uri().path().starts_with("/stream/")
    }
}

/// One HTTP/2 server connection's state, after the client preface:
/// [`feed`](Self::feed) it the client's bytes, [`respond`](Self::respond)
/// to the requests it cuts, and [`take_output`](Self::take_output) what
/// the server would have written.
#[derive(Debug)]
pub struct FrameReader {
    conn: H2Conn,
    sink: Sink,
    options: H2Options,
}

impl FrameReader {
    /// A connection with these limits and `max_body` for request
    /// bodies; the server's SETTINGS are in the output already.
    pub fn new(options: H2Options, max_body: usize) -> FrameReader {
        let r = FrameReader {
            conn: H2Conn::default(),
            sink: Sink {
                max_body,
                ..Default::default()
            },
            options: super::H2Protocol::new(options).options,
        };
        r.conn.start(&r.sink, &r.options);
        r
    }

    /// Parses what `input` holds: a complete request, or
    /// [`Parsed::Consumed`] / [`Parsed::NeedMore`] (never `NotMine` or
    /// `Bad`: errors are GOAWAY frames in the output, and
    /// [`is_closed`](Self::is_closed)).
    pub fn feed(&self, input: &mut IOBuf) -> Parsed<H2Request> {
        self.conn.parse(input, &self.sink, &self.options)
    }

    /// Answers `stream` with `status` and `body`, as a handler's fiber
    /// would (nothing if the stream is gone).
    pub fn respond(&self, stream: u32, status: http::StatusCode, body: IOBuf) {
        let mut resp = http::Response::new(body);
        *resp.status_mut() = status;
        self.conn
            .respond(&self.sink, stream, request::response_parts(&resp, false));
    }

    /// Sets the bytes the connection reports as not yet written (a peer
    /// that does not read).
    pub fn set_unwritten(&self, n: usize) {
        self.sink.unwritten.store(n, Ordering::Relaxed);
    }

    /// What the server wrote since the last call.
    pub fn take_output(&self) -> IOBuf {
        self.sink.take()
    }

    /// Whether the connection ended with a GOAWAY for the peer's errors.
    pub fn is_closed(&self) -> bool {
        self.sink.closed.load(Ordering::Relaxed)
    }
}
