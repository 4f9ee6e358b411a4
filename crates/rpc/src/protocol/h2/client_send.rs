//! The sending half of an HTTP/2 client connection: stream ids, the
//! server's settings and flow-control windows, and the request data a
//! window holds back.
//!
//! A request is packed (HEADERS, and the DATA the windows let out now)
//! while the call engine holds the connection's order lock
//! ([`ClientProtocol::requests_in_pack_order`]), so stream ids reach the
//! wire in the order they were given. The rest of its body waits here
//! and is written under this state's lock by whoever opens a window:
//! the reader on WINDOW_UPDATE or SETTINGS. A stream's held-back DATA is
//! written only once the engine queued its HEADERS ("posted", told by
//! [`ClientProtocol::request_queued`]): written earlier, DATA could
//! reach the wire before the HEADERS that open its stream. A streaming
//! request's messages wait here too, for a deferred flush that writes
//! them with the others queued by then, several to a frame (`flow.rs`).
//!
//! [`ClientProtocol::requests_in_pack_order`]: crate::protocol::ClientProtocol::requests_in_pack_order
//! [`ClientProtocol::request_queued`]: crate::protocol::ClientProtocol::request_queued

use std::collections::VecDeque;
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

use super::client_stream::StreamSink;
pub(super) use super::flow::WindowError;
use super::flow::{stream_update, SendWindows};
use super::frame::{self, setting, PREFACE};
use super::H2Options;

/// The largest stream id (2^31 - 1); a connection that used it up
/// opens no more streams.
const MAX_STREAM_ID: u32 = (1 << 31) - 1;

/// A stream this side opened and whose response has not ended.
#[derive(Debug)]
struct SendStream {
    /// The call it carries.
    cid: u64,
    /// What the server lets this stream send.
    window: i64,
    /// The request body not sent yet.
    pending: IOBuf,
    /// The request ends after `pending` (END_STREAM on its last frame);
    /// a streaming request's ends when its caller closes it.
    end: bool,
    /// END_STREAM went out: the whole request is sent.
    sent_all: bool,
    /// The engine queued its HEADERS: its held-back DATA may follow.
    posted: bool,
    /// In `blocked`, waiting for a window.
    blocked: bool,
    /// A streaming request's shared state (told how much is unsent).
    sink: Option<Arc<StreamSink>>,
}

/// A stream that ended: the call it carried, and whether its request
/// was still being sent (then this side must reset it).
pub(super) struct Closed {
    pub cid: u64,
    pub unfinished: bool,
}

/// The connection's sending state (see the module docs).
#[derive(Debug)]
pub(super) struct ClientSend {
    /// The preface and SETTINGS went out (or are packed in front of a
    /// request not yet queued: `preface_cid`).
    started: bool,
    preface_cid: Option<u64>,
    /// The id the next stream takes (odd, rising).
    next_stream: u32,
    /// The server's SETTINGS came: until then one stream is opened (the
    /// one sent with the preface), so a burst of calls on a new
    /// connection does not pass a limit the server has not said yet.
    pub settled: bool,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` (unlimited unless
    /// it says).
    pub max_streams: u32,
    /// The server's windows and frame size.
    windows: SendWindows,
    /// A deferred flush is on its way: messages queued until it runs
    /// share its frames.
    flush_queued: bool,
    streams: FxHashMap<u32, SendStream>,
    by_cid: FxHashMap<u64, u32>,
    /// Streams whose body waits for a window, oldest first.
    blocked: VecDeque<u32>,
    /// Calls whose stream a GOAWAY refused before the engine queued
    /// their request (call, stream): answered when it does.
    refused: FxHashMap<u64, u32>,
    /// The server's GOAWAY: the last stream it processes.
    pub goaway: Option<u32>,
    /// The connection broke the protocol (this side sent GOAWAY).
    pub dead: Option<String>,
    /// The reader's frames (acknowledgements, window updates) made
    /// before the preface was queued: a server sends its SETTINGS at
    /// once, and an ACK written then would reach it before the preface.
    held: IOBuf,
}

impl Default for ClientSend {
    fn default() -> Self {
        ClientSend {
            started: false,
            preface_cid: None,
            next_stream: 1,
            settled: false,
            max_streams: u32::MAX,
            windows: SendWindows::default(),
            flush_queued: false,
            held: IOBuf::new(),
            streams: FxHashMap::default(),
            by_cid: FxHashMap::default(),
            blocked: VecDeque::new(),
            refused: FxHashMap::default(),
            goaway: None,
            dead: None,
        }
    }
}

impl ClientSend {
    /// Streams open (their responses not ended).
    pub fn active(&self) -> usize {
        self.streams.len()
    }

    /// Whether `id` is a stream this side opened at some time (open or
    /// closed since): frames on the others are the server's error.
    pub fn ever_opened(&self, id: u32) -> bool {
        id % 2 == 1 && id < self.next_stream
    }

    /// The call on open stream `id`.
    pub fn cid_of(&self, id: u32) -> Option<u64> {
        self.streams.get(&id).map(|s| s.cid)
    }

    /// The sink of open stream `id`, if it carries a streaming request.
    pub fn sink_of(&self, id: u32) -> Option<Arc<StreamSink>> {
        self.streams.get(&id).and_then(|s| s.sink.clone())
    }

    /// The open stream carrying call `cid`.
    pub fn stream_of(&self, cid: u64) -> Option<u32> {
        self.by_cid.get(&cid).copied()
    }

    /// Whether a new stream may be opened now.
    pub fn has_room(&self) -> bool {
        if !self.settled {
            return !self.started;
        }
        (self.streams.len() as u64) < u64::from(self.max_streams)
    }

    /// Whether stream ids are used up.
    pub fn ids_exhausted(&self) -> bool {
        self.next_stream > MAX_STREAM_ID
    }

    /// Opens a stream for call `cid`: the frames to queue now (the
    /// connection preface first, on the first request), and the stream
    /// id. What the windows hold back of `body` waits here. With `end`
    /// false the request goes on ([`send_more`](Self::send_more)).
    pub fn open(
        &mut self,
        cid: u64,
        block: &[u8],
        body: IOBuf,
        end: bool,
        sink: Option<Arc<StreamSink>>,
        opts: &H2Options,
    ) -> (u32, IOBuf) {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut out = IOBuf::new();
        if !self.started {
            self.started = true;
            self.preface_cid = Some(cid);
            preface(&mut out, opts);
            // The server's SETTINGS may have come already: its ACK goes
            // right after the preface, before any frame sized by them
            // (a server applies its larger frame size once acknowledged).
            out.append_owned(std::mem::take(&mut self.held));
        }
        let headers_end = end && body.is_empty();
        frame::put_headers(&mut out, id, block, headers_end, self.windows.max_frame());
        self.streams.insert(
            id,
            SendStream {
                cid,
                window: self.windows.initial(),
                pending: body,
                end,
                sent_all: headers_end,
                posted: false,
                blocked: false,
                sink,
            },
        );
        self.by_cid.insert(cid, id);
        if !headers_end && !self.push(id, &mut out) {
            self.block(id);
        }
        (id, out)
    }

    fn block(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.blocked {
                s.blocked = true;
                self.blocked.push_back(id);
            }
        }
    }

    /// More of the streaming request of call `cid`: `data`, and its end
    /// if `end`. A message waits for a deferred [`flush`](Self::flush),
    /// which writes it with what else is queued by then; the end is
    /// written now (with `write`, after what was queued) as far as the
    /// windows let. `None`: the stream is gone (ended or reset).
    /// `Some(true)`: the caller must start that flush (none is on its
    /// way), then call [`flushed`](Self::flushed) when it runs.
    pub fn send_more<W: FnMut(IOBuf)>(
        &mut self,
        cid: u64,
        data: IOBuf,
        end: bool,
        write: W,
    ) -> Option<bool> {
        let id = *self.by_cid.get(&cid)?;
        let s = self.streams.get_mut(&id)?;
        if s.end {
            // Closed already: nothing more may follow.
            return data.is_empty().then_some(false);
        }
        s.pending.append_owned(data);
        s.end = end;
        if let Some(sink) = &s.sink {
            sink.set_unsent(s.pending.len());
        }
        self.block(id);
        if end {
            self.flush(write);
            return Some(false);
        }
        Some(!std::mem::replace(&mut self.flush_queued, true))
    }

    /// The deferred flush runs: the messages queued from now on need
    /// another one.
    pub fn flushed(&mut self) {
        self.flush_queued = false;
    }

    /// The engine queued (`queued`) or dropped the request of call
    /// `cid`. Queued: its held-back DATA may now be written. Dropped:
    /// the stream never reached the wire and is forgotten (and so is the
    /// preface, if it was packed in front of it). Returns the stream of
    /// a queued request that a GOAWAY refused while it was packed.
    pub fn posted<W: FnMut(IOBuf)>(&mut self, cid: u64, queued: bool, write: W) -> Option<u32> {
        let refused = self.refused.remove(&cid);
        let id = self.by_cid.get(&cid).copied().or(refused)?;
        let carried_preface = self.preface_cid == Some(cid);
        if carried_preface {
            self.preface_cid = None;
        }
        let mut write = write;
        if queued {
            if carried_preface && !self.held.is_empty() {
                write(std::mem::take(&mut self.held));
            }
            if let Some(s) = self.streams.get_mut(&id) {
                s.posted = true;
            }
            self.flush(write);
        } else {
            if carried_preface {
                self.started = false;
            }
            self.close(id);
        }
        refused.filter(|_| queued)
    }

    /// Writes the reader's `frames` (acknowledgements, window updates),
    /// or holds them until the preface is queued: nothing may precede
    /// it on the wire.
    pub fn write_control<W: FnOnce(IOBuf)>(&mut self, frames: IOBuf, write: W) {
        if self.started && self.preface_cid.is_none() {
            write(frames);
        } else {
            self.held.append_owned(frames);
        }
    }

    /// Appends what the windows let out of stream `id`'s queued request
    /// data, if its HEADERS are queued: a reset this side sends goes
    /// after the messages `send` accepted before it, as when each was
    /// written at once.
    pub fn push_queued(&mut self, id: u32, out: &mut IOBuf) {
        if self.streams.get(&id).is_some_and(|s| s.posted) {
            self.push(id, out);
        }
    }

    /// Stream `id` ended (its response is complete, or it was reset):
    /// it no longer counts against the server's limit.
    pub fn close(&mut self, id: u32) -> Option<Closed> {
        let s = self.streams.remove(&id)?;
        self.by_cid.remove(&s.cid);
        if s.blocked {
            self.blocked.retain(|&b| b != id);
        }
        Some(Closed {
            cid: s.cid,
            unfinished: !s.sent_all,
        })
    }

    /// The server's GOAWAY: the open streams past `last`, which it did
    /// not and will not process, are closed and returned (stream, call)
    /// — but for those whose request the engine has not queued yet: their
    /// calls may not be waiting where an answer finds them, so they hear
    /// it from [`posted`](Self::posted).
    pub fn go_away(&mut self, last: u32) -> Vec<(u32, u64)> {
        self.goaway = Some(self.goaway.map_or(last, |l| l.min(last)));
        let mut gone: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last)
            .collect();
        gone.sort_unstable();
        let mut failed = Vec::with_capacity(gone.len());
        for id in gone {
            let posted = self.streams.get(&id).is_some_and(|s| s.posted);
            let Some(c) = self.close(id) else { continue };
            if posted {
                failed.push((id, c.cid));
            } else {
                self.refused.insert(c.cid, id);
            }
        }
        failed
    }

    /// The server's `SETTINGS_MAX_FRAME_SIZE`.
    pub fn set_max_frame(&mut self, size: u32) {
        self.windows.set_max_frame(size);
    }

    /// The server's `SETTINGS_INITIAL_WINDOW_SIZE`: every stream's
    /// window moves by the difference.
    pub fn set_initial_window(&mut self, size: u32) -> Result<(), WindowError> {
        let windows = self.streams.values_mut().map(|s| &mut s.window);
        self.windows.set_initial(size, windows)
    }

    /// A WINDOW_UPDATE for the connection (`stream` 0) or a stream.
    /// `Ok(false)`: the stream's window overflowed; it must be reset
    /// with `FLOW_CONTROL_ERROR`.
    pub fn window_update(&mut self, stream: u32, increment: u32) -> Result<bool, WindowError> {
        if stream == 0 {
            return self.windows.conn_update(increment).map(|()| true);
        }
        Ok(self
            .streams
            .get_mut(&stream)
            .is_none_or(|s| stream_update(&mut s.window, increment)))
    }

    /// Writes (with `write`) what the windows now let out of the blocked
    /// streams whose HEADERS are queued.
    pub fn flush<W: FnMut(IOBuf)>(&mut self, mut write: W) {
        if self.blocked.is_empty() || self.windows.conn() <= 0 {
            return;
        }
        let mut out = IOBuf::new();
        for _ in 0..self.blocked.len() {
            let Some(id) = self.blocked.pop_front() else {
                break;
            };
            let posted = self.streams.get(&id).is_some_and(|s| s.posted);
            if !posted || !self.push(id, &mut out) {
                self.blocked.push_back(id);
            } else if let Some(s) = self.streams.get_mut(&id) {
                s.blocked = false;
            }
            if self.windows.conn() <= 0 {
                break;
            }
        }
        if !out.is_empty() {
            write(out);
        }
    }

    /// Appends as much of stream `id`'s body as the windows let, the
    /// last frame with END_STREAM if the request ends there. True when
    /// all of what is pending is sent.
    fn push(&mut self, id: u32, out: &mut IOBuf) -> bool {
        let Some(s) = self.streams.get_mut(&id) else {
            return true;
        };
        let before = s.pending.len();
        // A streaming request closed with nothing left ends with an
        // empty DATA frame.
        let end = s.end && !s.sent_all;
        let all = self
            .windows
            .put_data(out, id, &mut s.window, &mut s.pending, end);
        if all && end {
            s.sent_all = true;
        }
        if let Some(sink) = &s.sink {
            if s.pending.len() != before || before == 0 {
                sink.set_unsent(s.pending.len());
            }
        }
        all
    }
}

/// The client connection preface: the magic, SETTINGS (no push; the
/// limits of `opts`), and the connection's window opened to what a
/// stream is given.
fn preface(out: &mut IOBuf, opts: &H2Options) {
    out.append(PREFACE);
    frame::put_settings(
        out,
        &[
            (setting::ENABLE_PUSH, 0),
            (setting::INITIAL_WINDOW_SIZE, opts.initial_window_size),
            (setting::MAX_FRAME_SIZE, opts.max_frame_size),
            (setting::MAX_HEADER_LIST_SIZE, opts.max_header_list_size),
        ],
    );
    let grow = i64::from(opts.initial_window_size) - i64::from(frame::DEFAULT_WINDOW);
    if grow > 0 {
        frame::put_window_update(out, 0, grow as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{flag, kind};
    use super::*;

    fn frames(mut buf: IOBuf) -> Vec<(u8, u8, u32, usize)> {
        let mut v = Vec::new();
        if buf.len() >= PREFACE.len() && buf.to_vec().starts_with(PREFACE) {
            buf.pop_front(PREFACE.len());
        }
        while let Some(h) = frame::FrameHead::peek(&buf) {
            buf.pop_front(frame::HEADER_LEN + h.len as usize);
            v.push((h.kind, h.flags, h.stream, h.len as usize));
        }
        v
    }

    #[test]
    fn body_waits_for_windows_and_for_its_headers_to_be_queued() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        let (id, out) = s.open(
            7,
            b"\x83",
            IOBuf::from(vec![0u8; 100_000]),
            true,
            None,
            &opts,
        );
        assert_eq!(id, 1);
        let f = frames(out);
        // SETTINGS, WINDOW_UPDATE, HEADERS, then 65535 bytes of DATA
        // (the default windows), in frames of at most 16 KiB.
        assert_eq!(f[0].0, kind::SETTINGS);
        assert_eq!(f[2].0, kind::HEADERS);
        let data: usize = f.iter().filter(|x| x.0 == kind::DATA).map(|x| x.3).sum();
        assert_eq!(data, 65_535);
        assert!(f.iter().all(|x| x.3 <= 16_384));
        // The window opens before the HEADERS are queued: nothing yet.
        s.window_update(0, 100_000).unwrap();
        s.window_update(1, 100_000).unwrap();
        let mut wrote = IOBuf::new();
        s.flush(|o| wrote.append_owned(o));
        assert!(wrote.is_empty());
        s.posted(7, true, |o| wrote.append_owned(o));
        let f = frames(wrote);
        let data: usize = f.iter().map(|x| x.3).sum();
        assert_eq!(data, 100_000 - 65_535);
        assert_eq!(f.last().unwrap().1 & flag::END_STREAM, flag::END_STREAM);
        assert!(s.close(1).is_some_and(|c| !c.unfinished && c.cid == 7));
        assert_eq!(s.active(), 0);
    }

    #[test]
    fn goaway_closes_the_streams_past_its_last() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        for cid in 10..14 {
            s.open(cid, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
            assert_eq!(s.posted(cid, true, |_| {}), None);
        }
        // Streams 1, 3, 5, 7: the server processes up to 3.
        assert_eq!(s.go_away(3), vec![(5, 12), (7, 13)]);
        assert_eq!(s.active(), 2);
        assert_eq!(s.goaway, Some(3));
    }

    #[test]
    fn a_goaway_while_a_request_is_packed_answers_it_once_queued() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        s.open(10, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
        s.posted(10, true, |_| {});
        // Stream 3 is packed, its request not yet queued, when the
        // GOAWAY (last stream 1) comes: its call may not be waiting yet.
        s.open(11, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
        assert_eq!(s.go_away(1), vec![]);
        assert_eq!(s.active(), 1);
        // Queued: answered now, once.
        assert_eq!(s.posted(11, true, |_| {}), Some(3));
        assert_eq!(s.posted(11, true, |_| {}), None);
        // Dropped unsent: nothing to answer.
        s.goaway = None;
        s.settled = true;
        s.open(12, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
        assert_eq!(s.go_away(1), vec![]);
        assert_eq!(s.posted(12, false, |_| {}), None);
        assert_eq!(s.active(), 1);
    }

    #[test]
    fn a_dropped_request_forgets_its_stream_and_preface() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        s.open(1, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
        s.posted(1, false, |_| {});
        assert_eq!(s.active(), 0);
        let (id, out) = s.open(2, b"\x83", IOBuf::from(&b"x"[..]), true, None, &opts);
        assert_eq!(id, 3);
        assert!(out.to_vec().starts_with(PREFACE));
    }

    #[test]
    fn a_streaming_request_goes_on_until_closed() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        let sink = Arc::new(StreamSink::new(opts.initial_window_size));
        let (id, out) = s.open(5, b"\x83", IOBuf::new(), false, Some(sink.clone()), &opts);
        // HEADERS without END_STREAM.
        let f = frames(out);
        let h = f.iter().find(|x| x.0 == kind::HEADERS).unwrap();
        assert_eq!(h.1 & flag::END_STREAM, 0);
        // Before its HEADERS are queued, a message waits.
        let mut wrote = IOBuf::new();
        assert!(s
            .send_more(5, IOBuf::from(vec![1u8; 70_000]), false, |o| wrote
                .append_owned(o))
            .is_some());
        assert!(wrote.is_empty());
        assert_eq!(sink.unsent(), 70_000);
        s.posted(5, true, |o| wrote.append_owned(o));
        let f = frames(std::mem::take(&mut wrote));
        assert_eq!(f.iter().map(|x| x.3).sum::<usize>(), 65_535);
        assert!(f.iter().all(|x| x.1 & flag::END_STREAM == 0));
        assert_eq!(sink.unsent(), 70_000 - 65_535);
        // The close waits behind the held-back bytes.
        assert_eq!(
            s.send_more(5, IOBuf::new(), true, |o| wrote.append_owned(o)),
            Some(false)
        );
        assert!(wrote.is_empty());
        s.window_update(0, 10_000).unwrap();
        s.window_update(id, 10_000).unwrap();
        s.flush(|o| wrote.append_owned(o));
        let f = frames(wrote);
        assert_eq!(f.iter().map(|x| x.3).sum::<usize>(), 70_000 - 65_535);
        assert_eq!(f.last().unwrap().1 & flag::END_STREAM, flag::END_STREAM);
        assert_eq!(sink.unsent(), 0);
        // Nothing follows the end.
        assert_eq!(s.send_more(5, IOBuf::from(&b"x"[..]), false, |_| {}), None);
        assert!(s.close(id).is_some_and(|c| !c.unfinished));
        assert_eq!(s.send_more(5, IOBuf::new(), true, |_| {}), None);
    }

    #[test]
    fn a_streaming_close_with_nothing_pending_is_an_empty_data_frame() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        let (id, _) = s.open(5, b"\x83", IOBuf::new(), false, None, &opts);
        s.posted(5, true, |_| {});
        let mut wrote = IOBuf::new();
        assert_eq!(
            s.send_more(5, IOBuf::new(), true, |o| wrote.append_owned(o)),
            Some(false)
        );
        assert_eq!(frames(wrote), vec![(kind::DATA, flag::END_STREAM, id, 0)]);
    }

    #[test]
    fn queued_messages_share_frames_up_to_the_frame_size() {
        let mut s = ClientSend::default();
        let opts = H2Options::default();
        s.window_update(0, 1 << 20).unwrap();
        s.set_initial_window(1 << 20).unwrap();
        let (id, _) = s.open(5, b"\x83", IOBuf::new(), false, None, &opts);
        s.posted(5, true, |_| {});
        // 3,000 messages of 20 bytes: the first asks for the deferred
        // flush, which writes all of them in frames of 16 KiB (the
        // default frame size), not 3,000 frames.
        let mut wrote = IOBuf::new();
        for i in 0..3_000 {
            let start = s.send_more(5, IOBuf::from(vec![7u8; 20]), false, |o| {
                wrote.append_owned(o)
            });
            assert_eq!(start, Some(i == 0));
        }
        assert!(wrote.is_empty(), "nothing before the flush");
        s.flushed();
        s.flush(|o| wrote.append_owned(o));
        let f = frames(std::mem::take(&mut wrote));
        assert_eq!(f.iter().map(|x| x.3).sum::<usize>(), 60_000);
        assert_eq!(f.len(), 60_000usize.div_ceil(16_384));
        assert!(f.iter().all(|x| x.0 == kind::DATA && x.2 == id && x.1 == 0));
        // The end goes at once, after what is queued.
        s.send_more(5, IOBuf::from(vec![7u8; 20]), false, |_| {});
        s.send_more(5, IOBuf::new(), true, |o| wrote.append_owned(o));
        assert_eq!(frames(wrote), vec![(kind::DATA, flag::END_STREAM, id, 20)]);
    }
}
