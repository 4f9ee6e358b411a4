//! The sending half of a server connection: the peer's settings and
//! flow-control windows, the streams still being answered, and the
//! response data a window holds back.
//!
//! One lock (a fiber mutex: `Socket::write` may wait for a TLS
//! session's lock) orders every frame of a stream: a response's first
//! frames are queued with `Socket::write` under it, and what the
//! windows held back is written, under it too, by the reader when a
//! WINDOW_UPDATE or SETTINGS frame opens them. A streaming response's
//! messages are queued and written by a deferred flush, several to a
//! frame (see `flow.rs`).

use std::collections::VecDeque;

use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

pub(super) use super::flow::WindowError;
use super::flow::{stream_update, SendWindows};
use super::frame::{self, Reason};
use super::wire::Wire;

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
#[derive(Debug, Default)]
pub(super) struct SendSide {
    /// The peer's windows and frame size.
    windows: SendWindows,
    /// A deferred flush is on its way: messages queued until it runs
    /// share its frames.
    flush_queued: bool,
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

impl SendSide {
    /// What the console shows of the sending half.
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("h2 streams in process", self.streams.len().to_string()),
            (
                "h2 streams waiting for a window",
                self.blocked.len().to_string(),
            ),
            ("h2 send window", self.windows.conn().to_string()),
            ("h2 peer initial window", self.windows.initial().to_string()),
            ("h2 peer max frame", self.windows.max_frame().to_string()),
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
                window: self.windows.initial(),
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

    /// The peer's `SETTINGS_MAX_FRAME_SIZE`.
    pub fn set_max_frame(&mut self, size: u32) {
        self.windows.set_max_frame(size);
    }

    /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`: every stream's window
    /// moves by the difference.
    pub fn set_initial_window(&mut self, size: u32) -> Result<(), WindowError> {
        let windows = self.streams.values_mut().map(|s| &mut s.window);
        self.windows.set_initial(size, windows)
    }

    /// A WINDOW_UPDATE for the connection (`stream` 0) or a stream.
    /// `Ok(false)`: the stream's window overflowed, the stream must be
    /// reset with `FLOW_CONTROL_ERROR`.
    pub fn window_update(&mut self, stream: u32, increment: u32) -> Result<bool, WindowError> {
        if stream == 0 {
            return self.windows.conn_update(increment).map(|()| true);
        }
        if let Some(s) = self.streams.get_mut(&stream) {
            if !stream_update(&mut s.window, increment) {
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
        frame::put_headers(
            &mut out,
            stream,
            &resp.headers,
            end,
            self.windows.max_frame(),
        );
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

    /// Writes what the windows now let out of the blocked streams (and
    /// of those whose messages wait for a deferred flush).
    pub fn flush<W: Wire>(&mut self, sock: &W) {
        if self.blocked.is_empty() || self.windows.conn() <= 0 {
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
            if self.windows.conn() <= 0 {
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
        let max_frame = self.windows.max_frame();
        let Some(s) = self.streams.get_mut(&stream) else {
            return true;
        };
        let Some(p) = s.pending.as_mut() else {
            return true;
        };
        // The data ends the stream when nothing follows it (no trailers,
        // no more messages).
        let end = p.trailers.is_none() && !p.open;
        if !self
            .windows
            .put_data(out, stream, &mut s.window, &mut p.data, end)
        {
            return false;
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
        let max_frame = self.windows.max_frame();
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

    /// Queues `data` on a started streaming response, for a deferred
    /// [`flush`](Self::flush) to write with what else is queued by then
    /// (several messages to a frame). `None` if the stream is gone;
    /// `Some(true)` if the caller must start that flush (none is on its
    /// way), then [`flushed`](Self::flushed) when it runs.
    pub fn stream_data(&mut self, stream: u32, data: IOBuf) -> Option<bool> {
        let s = self.streams.get_mut(&stream)?;
        let p = s.pending.as_mut()?;
        p.data.append_owned(data);
        if !s.blocked {
            s.blocked = true;
            self.blocked.push_back(stream);
        }
        Some(!std::mem::replace(&mut self.flush_queued, true))
    }

    /// The deferred flush runs: the messages queued from now on need
    /// another one.
    pub fn flushed(&mut self) {
        self.flush_queued = false;
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

    use super::super::frame::{flag, kind};
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
        // More than the 65,535-byte windows: the rest waits. The first
        // message asks for the deferred flush, the others ride on it.
        assert_eq!(
            send.stream_data(1, IOBuf::from(vec![0u8; 10_000])),
            Some(true)
        );
        for _ in 1..10 {
            assert_eq!(
                send.stream_data(1, IOBuf::from(vec![0u8; 10_000])),
                Some(false)
            );
        }
        assert_eq!(frames(&out.0.borrow()).1, 0, "nothing before the flush");
        send.flushed();
        send.flush(&out);
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
        assert_eq!(send.stream_data(1, IOBuf::from("late")), None);
    }

    #[test]
    fn a_progressive_response_ends_with_its_last_data() {
        let out = Out::default();
        let mut send = SendSide::default();
        send.open(3);
        assert!(send.stream_start(&out, 3, b"h"));
        assert_eq!(send.stream_data(3, IOBuf::from("first")), Some(true));
        // The end waits behind the message its flush has not written.
        send.stream_end_data(&out, 3, IOBuf::from("last"));
        assert_eq!(frames(&out.0.borrow()).1, 0);
        send.flushed();
        send.flush(&out);
        let (kinds, data) = frames(&out.0.borrow());
        assert_eq!(data, 9);
        // HEADERS without END_STREAM, then one DATA ending it.
        assert_eq!(kinds[0], (kind::HEADERS, flag::END_HEADERS));
        assert_eq!(kinds[1], (kind::DATA, flag::END_STREAM));
        assert_eq!(kinds.len(), 2);
        assert_eq!(send.pending_len(3), None, "the stream is answered");
    }

    #[test]
    fn queued_messages_share_frames_up_to_the_frame_size() {
        let out = Out::default();
        let mut send = SendSide::default();
        send.window_update(0, 1 << 20).unwrap();
        send.set_initial_window(1 << 20).unwrap();
        send.open(1);
        assert!(send.stream_start(&out, 1, b"h"));
        // 3,000 messages of 20 bytes: 60,000 bytes in frames of 16 KiB
        // (the default frame size), not 3,000 frames.
        for i in 0..3_000 {
            assert_eq!(
                send.stream_data(1, IOBuf::from(vec![7u8; 20])),
                Some(i == 0)
            );
        }
        send.flushed();
        send.flush(&out);
        let (kinds, data) = frames(&out.0.borrow());
        assert_eq!(data, 60_000);
        assert_eq!(kinds.len(), 1 + 60_000usize.div_ceil(16_384));
        assert_eq!(send.pending_len(1), Some(0));
        // The next message asks for a flush again.
        assert_eq!(send.stream_data(1, IOBuf::from("x")), Some(true));
    }
}
