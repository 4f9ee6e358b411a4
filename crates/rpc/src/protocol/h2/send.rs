//! The sending half of a server connection: the peer's settings and
//! flow-control windows, the streams still being answered, and the
//! response data a window holds back.
//!
//! One lock (a fiber mutex: `Socket::write` may wait for a TLS
//! session's lock) orders every frame of a stream: a response's first
//! frames are queued with `Socket::write` under it, and what the
//! windows held back is written, under it too, by the reader when a
//! WINDOW_UPDATE or SETTINGS frame opens them.

use std::collections::VecDeque;

use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

use super::frame::{self, flag, kind, Reason};
use super::wire::Wire;

/// The largest frame sent, whatever the peer allows: 64 KiB, so that
/// one large response does not hold the connection for long between
/// the frames of others.
const MAX_SENT_FRAME: usize = 64 << 10;

/// A response as frames will carry it.
#[derive(Debug, Default)]
pub(crate) struct ResponseParts {
    /// The HPACK-encoded header block.
    pub headers: Vec<u8>,
    /// The body.
    pub body: IOBuf,
    /// The HPACK-encoded trailers (gRPC's status), if any.
    pub trailers: Option<Vec<u8>>,
}

/// A stream being answered.
#[derive(Debug)]
struct SendStream {
    /// What the peer lets this stream send.
    window: i64,
    /// The rest of the response, once its headers went out.
    pending: Option<Pending>,
    /// Whether the stream is in `SendSide::blocked`.
    blocked: bool,
}

#[derive(Debug)]
struct Pending {
    data: IOBuf,
    trailers: Option<Vec<u8>>,
    /// A streaming response whose handler may still send: the stream
    /// does not end when the data runs out.
    open: bool,
    /// After the trailers, RST_STREAM(NO_ERROR): the response ended
    /// before the request did, and the client may stop sending (RFC
    /// 9113 §8.1).
    reset_after: bool,
}

/// The connection's sending state (see the module docs).
#[derive(Debug)]
pub(super) struct SendSide {
    /// What the peer lets the connection send.
    conn_window: i64,
    /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`.
    initial_window: i64,
    /// The peer's `SETTINGS_MAX_FRAME_SIZE`.
    max_frame: usize,
    /// Streams opened by the peer and not answered in full (nor reset):
    /// their count is what `SETTINGS_MAX_CONCURRENT_STREAMS` bounds.
    streams: FxHashMap<u32, SendStream>,
    /// Streams whose data waits for a window, oldest first.
    blocked: VecDeque<u32>,
    /// Streams reset (by the peer, or by this side for the peer's
    /// errors) less streams answered in full (see
    /// `H2Options::max_reset_streams`).
    pub reset_debt: u32,
    /// The last stream id of the GOAWAY sent, if one was.
    pub goaway: Option<u32>,
}

impl Default for SendSide {
    fn default() -> Self {
        SendSide {
            conn_window: i64::from(frame::DEFAULT_WINDOW),
            initial_window: i64::from(frame::DEFAULT_WINDOW),
            max_frame: frame::DEFAULT_MAX_FRAME_SIZE as usize,
            streams: FxHashMap::default(),
            blocked: VecDeque::new(),
            reset_debt: 0,
            goaway: None,
        }
    }
}

/// A connection error raised by a settings or window change.
pub(super) type WindowError = (Reason, &'static str);

impl SendSide {
    /// What the console shows of the sending half.
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("h2 streams in process", self.streams.len().to_string()),
            (
                "h2 streams waiting for a window",
                self.blocked.len().to_string(),
            ),
            ("h2 send window", self.conn_window.to_string()),
            ("h2 peer initial window", self.initial_window.to_string()),
            ("h2 peer max frame", self.max_frame.to_string()),
            (
                "h2 GOAWAY sent",
                self.goaway
                    .map_or_else(|| "no".to_string(), |s| format!("last stream {s}")),
            ),
        ]
    }

    /// Streams being answered.
    pub fn active(&self) -> usize {
        self.streams.len()
    }

    /// Whether `stream` is being answered.
    pub fn is_active(&self, stream: u32) -> bool {
        self.streams.contains_key(&stream)
    }

    /// A new stream from the peer.
    pub fn open(&mut self, stream: u32) {
        self.streams.insert(
            stream,
            SendStream {
                window: self.initial_window,
                pending: None,
                blocked: false,
            },
        );
    }

    /// The stream ends without (more of) its response: reset by either
    /// side. Whether it was being answered.
    pub fn close(&mut self, stream: u32) -> bool {
        if self.streams.remove(&stream).is_some() {
            self.blocked.retain(|&s| s != stream);
            true
        } else {
            false
        }
    }

    /// The peer's `SETTINGS_MAX_FRAME_SIZE`. DATA frames stay at most
    /// [`MAX_SENT_FRAME`] even when the peer allows larger ones: the
    /// streams of a connection share it frame by frame.
    pub fn set_max_frame(&mut self, size: u32) {
        self.max_frame = (size as usize).min(MAX_SENT_FRAME);
    }

    /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`: every stream's window
    /// moves by the difference (RFC 9113 §6.9.2).
    pub fn set_initial_window(&mut self, size: u32) -> Result<(), WindowError> {
        let delta = i64::from(size) - self.initial_window;
        self.initial_window = i64::from(size);
        for s in self.streams.values_mut() {
            s.window += delta;
            if s.window > frame::MAX_WINDOW {
                return Err((
                    Reason::FlowControlError,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream's window",
                ));
            }
        }
        Ok(())
    }

    /// A WINDOW_UPDATE for the connection (`stream` 0) or a stream.
    /// `Ok(false)`: the stream's window overflowed, the stream must be
    /// reset with `FLOW_CONTROL_ERROR`.
    pub fn window_update(&mut self, stream: u32, increment: u32) -> Result<bool, WindowError> {
        let inc = i64::from(increment);
        if stream == 0 {
            self.conn_window += inc;
            if self.conn_window > frame::MAX_WINDOW {
                return Err((
                    Reason::FlowControlError,
                    "WINDOW_UPDATE overflows the connection's window",
                ));
            }
            return Ok(true);
        }
        if let Some(s) = self.streams.get_mut(&stream) {
            s.window += inc;
            if s.window > frame::MAX_WINDOW {
                self.close(stream);
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes a response on `stream`: its headers at once, its body as
    /// far as the windows let, the rest later ([`flush`](Self::flush)).
    /// Nothing is written if the stream is gone (reset).
    pub fn respond<W: Wire>(&mut self, sock: &W, stream: u32, resp: ResponseParts) {
        if !self.streams.contains_key(&stream) {
            return;
        }
        let mut out = IOBuf::new();
        let end = resp.body.is_empty() && resp.trailers.is_none();
        frame::put_headers(&mut out, stream, &resp.headers, end, self.max_frame);
        if end {
            self.finished(stream);
        } else {
            if let Some(s) = self.streams.get_mut(&stream) {
                s.pending = Some(Pending {
                    data: resp.body,
                    trailers: resp.trailers,
                    open: false,
                    reset_after: false,
                });
            }
            self.push_or_block(stream, &mut out);
        }
        self.write(sock, out);
    }

    /// Writes what the windows now let out of the blocked streams.
    pub fn flush<W: Wire>(&mut self, sock: &W) {
        if self.blocked.is_empty() || self.conn_window <= 0 {
            return;
        }
        let mut out = IOBuf::new();
        let n = self.blocked.len();
        for _ in 0..n {
            let Some(stream) = self.blocked.pop_front() else {
                break;
            };
            if let Some(s) = self.streams.get_mut(&stream) {
                s.blocked = false;
            }
            self.push_or_block(stream, &mut out);
            if self.conn_window <= 0 {
                break;
            }
        }
        self.write(sock, out);
    }

    /// Queues a frame that belongs to no response's order (a
    /// RST_STREAM, a GOAWAY).
    pub fn write<W: Wire>(&self, sock: &W, out: IOBuf) {
        if !out.is_empty() {
            sock.write(out);
        }
    }

    /// Appends as much of `stream`'s pending data (and its trailers) as
    /// the windows let. True when the stream's response is complete.
    fn push(&mut self, stream: u32, out: &mut IOBuf) -> bool {
        let max_frame = self.max_frame;
        let Some(s) = self.streams.get_mut(&stream) else {
            return true;
        };
        let Some(p) = s.pending.as_mut() else {
            return true;
        };
        while !p.data.is_empty() {
            let room = self.conn_window.min(s.window).min(max_frame as i64);
            if room <= 0 {
                return false;
            }
            let n = (room as usize).min(p.data.len());
            let chunk = p.data.split_to(n);
            let last = p.data.is_empty() && p.trailers.is_none() && !p.open;
            frame::put_head(
                out,
                n,
                kind::DATA,
                if last { flag::END_STREAM } else { 0 },
                stream,
            );
            out.append_owned(chunk);
            self.conn_window -= n as i64;
            s.window -= n as i64;
        }
        if p.open {
            return true;
        }
        if let Some(t) = p.trailers.take() {
            frame::put_headers(out, stream, &t, true, max_frame);
        }
        if p.reset_after {
            frame::put_rst_stream(out, stream, Reason::NoError);
        }
        self.finished(stream);
        true
    }

    /// [`push`](Self::push), and `stream` waits in `blocked` for a
    /// window if not all went out (once: a stream is listed at most
    /// once, however many messages it queues).
    fn push_or_block(&mut self, stream: u32, out: &mut IOBuf) {
        if self.streams.get(&stream).is_some_and(|s| s.blocked) {
            return;
        }
        if !self.push(stream, out) {
            if let Some(s) = self.streams.get_mut(&stream) {
                s.blocked = true;
                self.blocked.push_back(stream);
            }
        }
    }

    /// Bytes of `stream`'s response queued here for a window; `None`
    /// once the stream is gone (reset, or answered in full).
    pub fn pending_len(&self, stream: u32) -> Option<usize> {
        let s = self.streams.get(&stream)?;
        Some(s.pending.as_ref().map_or(0, |p| p.data.len()))
    }

    /// Whether `stream`'s response headers went out.
    pub fn headers_sent(&self, stream: u32) -> bool {
        self.streams
            .get(&stream)
            .is_some_and(|s| s.pending.is_some())
    }

    /// Starts a streaming response on `stream`: its HEADERS now, its
    /// messages with [`stream_data`](Self::stream_data), its end with
    /// [`stream_end`](Self::stream_end). False if the stream is gone.
    pub fn stream_start<W: Wire>(&mut self, sock: &W, stream: u32, headers: &[u8]) -> bool {
        let max_frame = self.max_frame;
        let Some(s) = self.streams.get_mut(&stream) else {
            return false;
        };
        s.pending = Some(Pending {
            data: IOBuf::new(),
            trailers: None,
            open: true,
            reset_after: false,
        });
        let mut out = IOBuf::new();
        frame::put_headers(&mut out, stream, headers, false, max_frame);
        self.write(sock, out);
        true
    }

    /// Queues `data` on a started streaming response and writes what
    /// the windows let out. False if the stream is gone.
    pub fn stream_data<W: Wire>(&mut self, sock: &W, stream: u32, data: IOBuf) -> bool {
        let Some(p) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.pending.as_mut())
        else {
            return false;
        };
        p.data.append_owned(data);
        let mut out = IOBuf::new();
        self.push_or_block(stream, &mut out);
        self.write(sock, out);
        true
    }

    /// Ends a started streaming response with `trailers` (after the data
    /// still queued), then RST_STREAM(NO_ERROR) if `reset_after`.
    pub fn stream_end<W: Wire>(
        &mut self,
        sock: &W,
        stream: u32,
        trailers: Vec<u8>,
        reset_after: bool,
    ) {
        let Some(p) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.pending.as_mut())
        else {
            return;
        };
        p.trailers = Some(trailers);
        p.open = false;
        p.reset_after = reset_after;
        let mut out = IOBuf::new();
        self.push_or_block(stream, &mut out);
        self.write(sock, out);
    }

    /// Ends a started streaming response with `last` as its final DATA
    /// (END_STREAM on its last frame), after the data still queued, and
    /// no trailers: a progressive HTTP response's end. `last` must not
    /// be empty (an empty end is [`stream_end`](Self::stream_end)'s).
    pub fn stream_end_data<W: Wire>(&mut self, sock: &W, stream: u32, last: IOBuf) {
        debug_assert!(!last.is_empty());
        let Some(p) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.pending.as_mut())
        else {
            return;
        };
        p.data.append_owned(last);
        p.open = false;
        let mut out = IOBuf::new();
        self.push_or_block(stream, &mut out);
        self.write(sock, out);
    }

    /// A stream answered in full: it closes, and pays back a reset.
    fn finished(&mut self, stream: u32) {
        self.streams.remove(&stream);
        self.reset_debt = self.reset_debt.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::fmt::Display;

    use super::*;

    /// Collects what is written.
    #[derive(Default)]
    struct Out(RefCell<Vec<u8>>);

    impl Wire for Out {
        fn write(&self, out: IOBuf) {
            self.0.borrow_mut().extend(out.to_vec());
        }
        fn unwritten_bytes(&self) -> usize {
            0
        }
        fn written_bytes(&self) -> u64 {
            0
        }
        fn max_body_size(&self) -> usize {
            usize::MAX
        }
        fn peer(&self) -> impl Display {
            "test"
        }
        fn close_after_goaway(&self) {}
    }

    /// Kinds and flags of the frames in `bytes`, with DATA's bytes summed.
    fn frames(bytes: &[u8]) -> (Vec<(u8, u8)>, usize) {
        let (mut kinds, mut data, mut rest) = (Vec::new(), 0, bytes);
        while rest.len() >= frame::HEADER_LEN {
            let head = frame::FrameHead::parse(rest[..frame::HEADER_LEN].try_into().unwrap());
            kinds.push((head.kind, head.flags));
            if head.kind == kind::DATA {
                data += head.len as usize;
            }
            rest = &rest[frame::HEADER_LEN + head.len as usize..];
        }
        (kinds, data)
    }

    #[test]
    fn a_streaming_response_waits_for_windows_listed_once() {
        let out = Out::default();
        let mut send = SendSide::default();
        send.open(1);
        assert!(send.stream_start(&out, 1, b"h"));
        // More than the 65,535-byte windows: the rest waits.
        for _ in 0..10 {
            assert!(send.stream_data(&out, 1, IOBuf::from(vec![0u8; 10_000])));
        }
        assert_eq!(send.pending_len(1), Some(100_000 - 65_535));
        assert_eq!(send.blocked.len(), 1, "a blocked stream is listed once");
        let (kinds, data) = frames(&out.0.borrow());
        assert_eq!(data, 65_535);
        assert!(kinds.iter().all(|&(_, f)| f & flag::END_STREAM == 0));
        // The windows open: the rest goes, and the stream stays open.
        send.window_update(0, 1 << 20).unwrap();
        send.window_update(1, 1 << 20).unwrap();
        send.flush(&out);
        assert_eq!(send.pending_len(1), Some(0));
        assert!(send.blocked.is_empty());
        assert_eq!(frames(&out.0.borrow()).1, 100_000);
        // The end: trailers with END_STREAM, then the stream is gone.
        send.stream_end(&out, 1, b"t".to_vec(), true);
        let (kinds, _) = frames(&out.0.borrow());
        let n = kinds.len();
        assert_eq!(
            kinds[n - 2],
            (kind::HEADERS, flag::END_STREAM | flag::END_HEADERS)
        );
        assert_eq!(kinds[n - 1].0, kind::RST_STREAM);
        assert_eq!(send.pending_len(1), None);
        assert!(!send.stream_data(&out, 1, IOBuf::from("late")));
    }

    #[test]
    fn a_progressive_response_ends_with_its_last_data() {
        let out = Out::default();
        let mut send = SendSide::default();
        send.open(3);
        assert!(send.stream_start(&out, 3, b"h"));
        assert!(send.stream_data(&out, 3, IOBuf::from("first")));
        send.stream_end_data(&out, 3, IOBuf::from("last"));
        let (kinds, data) = frames(&out.0.borrow());
        assert_eq!(data, 9);
        // HEADERS without END_STREAM, then DATA, the last one ending it.
        assert_eq!(kinds[0], (kind::HEADERS, flag::END_HEADERS));
        assert_eq!(kinds[1], (kind::DATA, 0));
        assert_eq!(kinds[2], (kind::DATA, flag::END_STREAM));
        assert_eq!(kinds.len(), 3);
        assert_eq!(send.pending_len(3), None, "the stream is answered");
    }
}
