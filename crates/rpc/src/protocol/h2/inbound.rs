//! The receiving half of a streaming request (a gRPC streaming call):
//! the connection's reader appends the stream's DATA as it comes, and
//! the handler's fiber takes it out, waiting for more. The stream's
//! flow-control window is given back only as the handler takes data,
//! so a handler that reads slowly holds the client back and at most one
//! window (`H2Options::initial_window_size`) waits here per stream.

use std::time::{Duration, Instant};

use fibrpc_fiber::sync::{Condvar, Mutex};
use fibrpc_iobuf::IOBuf;

use super::frame::{self, Reason};

/// How long a waiting handler sleeps before it looks again whether the
/// connection failed (a failed connection tells no stream).
const RECHECK: Duration = Duration::from_millis(100);

/// Why a stream's input ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboundEnd {
    /// The client reset the stream (cancelled the call).
    Reset(u32),
    /// The server reset the stream for the client's error.
    Failed(Reason),
}

#[derive(Debug)]
struct State {
    /// Received and not yet taken.
    data: IOBuf,
    /// What the client may still send on the stream.
    window: i64,
    /// The client finished sending (END_STREAM).
    end: bool,
    /// The stream ended early.
    broken: Option<InboundEnd>,
    /// The handler is done: data is dropped (and its window given back
    /// at once) until the client stops.
    discard: bool,
}

/// A streaming request's input, shared by the reader and the handler.
#[derive(Debug)]
pub(crate) struct Inbound {
    state: Mutex<State>,
    cond: Condvar,
    stream: u32,
    /// The window each stream starts with (what is given back towards).
    initial_window: u32,
}

/// What the reader does after appending DATA.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Appended {
    /// Kept for the handler.
    Kept,
    /// Dropped (the handler is done): give back this many bytes of the
    /// stream's window.
    Dropped(u32),
    /// Past the stream's window: reset it with FLOW_CONTROL_ERROR.
    OverWindow,
}

/// What a handler's [`Inbound::take`] got.
#[derive(Debug)]
pub(crate) enum Taken {
    /// Bytes, and the WINDOW_UPDATE to write (empty if none is due).
    Data(IOBuf, IOBuf),
    /// The client finished sending and everything was taken.
    End,
    /// The stream ended early.
    Broken(InboundEnd),
    /// Nothing came before the deadline.
    TimedOut,
    /// The connection failed.
    ConnectionFailed,
}

impl Inbound {
    /// The input of `stream`, whose window is `initial_window`; `end`
    /// when the request's HEADERS ended it already.
    pub(super) fn new(stream: u32, initial_window: u32, end: bool) -> Inbound {
        Inbound {
            state: Mutex::new(State {
                data: IOBuf::new(),
                window: i64::from(initial_window),
                end,
                broken: None,
                discard: false,
            }),
            cond: Condvar::new(),
            stream,
            initial_window,
        }
    }

    /// The stream's id.
    pub(crate) fn stream_id(&self) -> u32 {
        self.stream
    }

    /// DATA for the stream (in the reader), `end` with END_STREAM.
    pub(super) fn append(&self, data: IOBuf, frame_len: u32, end: bool) -> Appended {
        let mut s = self.state.lock();
        if i64::from(frame_len) > s.window {
            return Appended::OverWindow;
        }
        s.end |= end;
        if s.discard {
            self.cond.notify_all();
            return Appended::Dropped(frame_len);
        }
        s.window -= i64::from(frame_len);
        s.data.append_owned(data);
        self.cond.notify_all();
        Appended::Kept
    }

    /// The client finished sending (trailers, or an empty END_STREAM).
    pub(super) fn finish(&self) {
        self.state.lock().end = true;
        self.cond.notify_all();
    }

    /// The stream ended early: the handler's reads fail from now on.
    pub(super) fn break_off(&self, why: InboundEnd) {
        let mut s = self.state.lock();
        if s.broken.is_none() {
            s.broken = Some(why);
        }
        self.cond.notify_all();
    }

    /// Whether the reader may forget the stream: it broke, or the
    /// handler is done with it.
    pub(super) fn is_done(&self) -> bool {
        let s = self.state.lock();
        s.broken.is_some() || s.discard
    }

    /// Whether the client finished sending.
    pub(crate) fn client_done(&self) -> bool {
        let s = self.state.lock();
        s.end || s.broken.is_some()
    }

    /// The handler is done: what is buffered is dropped, and so is what
    /// comes later.
    pub(crate) fn discard(&self) {
        let mut s = self.state.lock();
        s.discard = true;
        s.data.clear();
    }

    /// Whether the stream ended early, and how.
    pub(crate) fn broken(&self) -> Option<InboundEnd> {
        self.state.lock().broken
    }

    /// Takes what was received, waiting for data until `deadline`;
    /// `failed` says whether the connection is gone (looked at every
    /// [`RECHECK`]). The window is given back for what is taken once
    /// half of it was used, as the reader does for whole requests.
    pub(crate) fn take(&self, deadline: Option<Instant>, failed: &dyn Fn() -> bool) -> Taken {
        let mut s = self.state.lock();
        loop {
            if !s.data.is_empty() {
                let data = std::mem::take(&mut s.data);
                let mut update = IOBuf::new();
                // Everything received is taken now: the window used is
                // what may be given back.
                let used = i64::from(self.initial_window) - s.window;
                if used >= i64::from(self.initial_window / 2) && !s.end {
                    frame::put_window_update(&mut update, self.stream, used as u32);
                    s.window += used;
                }
                return Taken::Data(data, update);
            }
            if let Some(b) = s.broken {
                return Taken::Broken(b);
            }
            if s.end {
                return Taken::End;
            }
            if failed() {
                return Taken::ConnectionFailed;
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if d <= now => return Taken::TimedOut,
                Some(d) => (d - now).min(RECHECK),
                None => RECHECK,
            };
            s = self.cond.wait_timeout(s, wait).0;
        }
    }
}
