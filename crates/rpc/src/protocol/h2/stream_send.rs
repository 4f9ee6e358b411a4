//! Sending a streaming response from its handler's fiber: HEADERS with
//! the first message, DATA as the handler sends, trailers at the end.
//!
//! A message is queued on the stream and written by a deferred flush
//! with the others queued by then (`flow.rs`), several to a frame.
//! Unlike a whole response, which is queued at once and written as the
//! windows open, a streaming handler waits in
//! [`stream_send`](H2Conn::stream_send) while more than a buffer's worth
//! of its stream waits for the client's window: a client that reads
//! slowly slows the handler instead of growing the server's memory. The
//! reader never waits on it (it only signals `send_room` when a
//! WINDOW_UPDATE, a SETTINGS or a reset changes what may be sent).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::flow;
use super::frame::{self, Reason};
use super::{H2Conn, ResponseParts};
use crate::socket::Socket;

/// How long a waiting sender sleeps before it looks again whether the
/// connection failed (a failed connection signals no stream).
const RECHECK: Duration = Duration::from_millis(100);

/// Why a streaming response could not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The stream is gone: the client reset it, or the response ended.
    Gone,
    /// The deadline passed while waiting for the client's window.
    TimedOut,
    /// The connection failed.
    ConnectionFailed,
}

impl H2Conn {
    /// Sends `data` on `stream`'s streaming response, starting the
    /// response with `headers()` if nothing was sent yet. Waits (until
    /// `deadline`) while more than `buffer` bytes of the stream wait for
    /// a window, so at most `buffer` plus one message is held.
    pub(crate) fn stream_send(
        &self,
        sock: &Arc<Socket>,
        stream: u32,
        headers: &dyn Fn() -> Vec<u8>,
        data: IOBuf,
        buffer: usize,
        deadline: Option<Instant>,
    ) -> Result<(), SendFailure> {
        let mut send = self.send.lock();
        loop {
            match send.pending_len(stream) {
                None => return Err(SendFailure::Gone),
                Some(n) if n <= buffer => break,
                Some(_) => {}
            }
            if sock.failed() {
                return Err(SendFailure::ConnectionFailed);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if d <= now => return Err(SendFailure::TimedOut),
                Some(d) => (d - now).min(RECHECK),
                None => RECHECK,
            };
            send = self.send_room.wait_timeout(send, wait).0;
        }
        if sock.failed() {
            return Err(SendFailure::ConnectionFailed);
        }
        if !send.headers_sent(stream) && !send.stream_start(sock, stream, &headers()) {
            return Err(SendFailure::Gone);
        }
        match send.stream_data(stream, data) {
            None => Err(SendFailure::Gone),
            Some(start_flush) => {
                drop(send);
                if start_flush {
                    flow::spawn_flush(sock, deferred_flush(sock.clone()));
                }
                Ok(())
            }
        }
    }

    /// Ends `stream`'s streaming response: `trailers` after what was
    /// sent, or `trailers_only` (a header block that ends the stream) if
    /// nothing was; then RST_STREAM(NO_ERROR) when `reset_after` (the
    /// client is still sending and may stop). Nothing if the stream is
    /// gone.
    pub(crate) fn stream_finish(
        &self,
        sock: &Arc<Socket>,
        stream: u32,
        trailers_only: Vec<u8>,
        trailers: Vec<u8>,
        reset_after: bool,
    ) {
        let mut send = self.send.lock();
        if send.headers_sent(stream) {
            send.stream_end(sock, stream, trailers, reset_after);
            return;
        }
        if send.pending_len(stream).is_none() {
            return;
        }
        send.respond(
            sock,
            stream,
            ResponseParts {
                headers: trailers_only,
                ..Default::default()
            },
        );
        if reset_after {
            let mut rst = IOBuf::new();
            frame::put_rst_stream(&mut rst, stream, Reason::NoError);
            send.write(sock, rst);
        }
    }

    /// Ends `stream`'s progressive response with `last` (not empty) as
    /// its final DATA: after what was sent, or with `head` if nothing
    /// was. Nothing if the stream is gone.
    pub(crate) fn stream_finish_data(
        &self,
        sock: &Arc<Socket>,
        stream: u32,
        head: Vec<u8>,
        last: IOBuf,
    ) {
        let mut send = self.send.lock();
        if send.headers_sent(stream) {
            send.stream_end_data(sock, stream, last);
            return;
        }
        send.respond(
            sock,
            stream,
            ResponseParts {
                headers: head,
                body: last,
                trailers: None,
            },
        );
    }
}

/// The flush [`H2Conn::stream_send`] defers: writes what the windows let
/// out of every stream with queued messages, and wakes the handlers
/// waiting for room.
fn deferred_flush(sock: Arc<Socket>) -> impl FnOnce() + Send + 'static {
    move || {
        let Some(conn) = sock.existing_protocol_state::<H2Conn>() else {
            return;
        };
        let mut send = conn.send.lock();
        send.flushed();
        send.flush(&sock);
        drop(send);
        conn.send_room.notify_all();
    }
}
