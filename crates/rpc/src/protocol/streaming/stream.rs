//! [`Stream`]: one end of a stream, its writer's window and its
//! receiver's buffer (bRPC's `Stream`).
//!
//! A stream is `Pending` until its call's response went out (server) or
//! came in (client): writes are held meanwhile. It is `Connected` once
//! it knows the peer's stream id, and `Closed` after a close from either
//! side, a reset, a connection failure or a window overrun. The state
//! lives under a short lock that is never held across a socket write (a
//! failing write fails the socket, whose failure fails this stream; a
//! TLS write may suspend). DATA and CLOSE frames are decided and queued
//! under a second, fiber-aware lock (`wire`), so they keep their order:
//! held messages before later ones, CLOSE after every DATA.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fibrpc_fiber::butex::Butex;
use fibrpc_fiber::timer::{self, TimerId};
use fibrpc_iobuf::IOBuf;

use super::frame::{encode, encode_message};
use super::meta::StreamFrameMeta;
use super::options::{StreamInput, StreamOptions};
use super::registry;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// The largest DATA frame payload a write produces: a longer message is
/// sent as segments with `has_continuation` (bRPC's
/// `stream_write_max_segment_size`, kept under the 64 MiB body limit).
pub const MAX_SEGMENT_SIZE: usize = 32 << 20;

/// One end of a stream (bRPC's `StreamId`): a cheap handle, cloned
/// freely; every clone is the same stream. The stream lives until it is
/// closed ([`close`](Self::close)) by either side, reset, or its
/// connection fails; dropping handles does not close it.
#[derive(Clone)]
pub struct Stream {
    pub(super) inner: Arc<StreamInner>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("Stream")
            .field("id", &self.inner.id)
            .field("remote_id", &st.remote_id)
            .field("phase", &st.phase)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Pending,
    Connected,
    Closed,
}

/// Counters of one stream (see [`Stream::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Payload bytes this side wrote (accepted by `write`).
    pub produced: u64,
    /// Payload bytes the peer reported consumed.
    pub remote_consumed: u64,
    /// Payload bytes of whole messages received.
    pub received: u64,
    /// Payload bytes received and consumed (read, handled or dropped).
    pub consumed: u64,
    /// Payload bytes received and not yet consumed, now.
    pub unconsumed: u64,
    /// The most bytes ever held unconsumed at once.
    pub max_unconsumed: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages written.
    pub messages_out: u64,
}

pub(crate) struct StreamInner {
    id: i64,
    pub(super) options: StreamOptions,
    state: Mutex<State>,
    /// Orders this stream's DATA and CLOSE frames on the socket; taken
    /// before `state`, held across the socket write.
    wire: fibrpc_fiber::sync::Mutex<()>,
    /// Bumped whenever a waiting writer may go on (feedback, connect,
    /// close).
    writable: Butex,
    /// Bumped whenever `recv` may find something (a message, an idle
    /// timeout, the close).
    readable: Butex,
    pub(super) created: SystemTime,
}

pub(super) struct State {
    pub(super) phase: Phase,
    /// Why the stream closed; `None` for a normal close.
    error: Option<RpcError>,
    pub(super) sock: Option<Arc<Socket>>,
    /// The peer's stream id, -1 until known.
    pub(super) remote_id: i64,
    /// Whether the peer wants FEEDBACK (it has a window).
    peer_need_feedback: bool,
    /// Whether the peer reads what this side writes.
    peer_writable: bool,
    /// The stream connected once (its call opened it).
    pub(super) opened: bool,
    /// A client's first stream: its first message is the call's response.
    pub(super) awaits_response: bool,
    /// A client's first stream: the call's other streams, connected with
    /// the response.
    pub(super) siblings: Vec<Stream>,
    produced: u64,
    remote_consumed: u64,
    messages_out: u64,
    /// Messages written before the stream connected.
    held: Vec<IOBuf>,
    /// The segments of a message still arriving.
    partial: IOBuf,
    inbox: VecDeque<IOBuf>,
    received: u64,
    consumed: u64,
    max_unconsumed: u64,
    messages_in: u64,
    feedback_sent: u64,
    /// A fiber is delivering to the handler.
    consumer_running: bool,
    /// An idle timeout to report (to the handler, or to `recv`).
    idle_pending: bool,
    /// The handler heard of the close.
    end_delivered: bool,
    last_message: Instant,
    idle_timer: Option<TimerId>,
}

/// What the reader does after a DATA frame, outside the stream's lock.
pub(super) enum Arrival {
    /// Nothing more.
    Done,
    /// The client's first message: the call's response.
    Response(IOBuf),
    /// The peer broke the rules: fail the stream and reset the peer's.
    Violation(String),
}

impl StreamInner {
    pub(super) fn new(options: StreamOptions) -> Arc<StreamInner> {
        let s = Arc::new(StreamInner {
            id: registry::next_id(),
            options,
            state: Mutex::new(State {
                phase: Phase::Pending,
                error: None,
                sock: None,
                remote_id: -1,
                peer_need_feedback: false,
                peer_writable: false,
                opened: false,
                awaits_response: false,
                siblings: Vec::new(),
                produced: 0,
                remote_consumed: 0,
                messages_out: 0,
                held: Vec::new(),
                partial: IOBuf::new(),
                inbox: VecDeque::new(),
                received: 0,
                consumed: 0,
                max_unconsumed: 0,
                messages_in: 0,
                feedback_sent: 0,
                consumer_running: false,
                idle_pending: false,
                end_delivered: false,
                last_message: Instant::now(),
                idle_timer: None,
            }),
            wire: fibrpc_fiber::sync::Mutex::new(()),
            writable: Butex::new(0),
            readable: Butex::new(0),
            created: SystemTime::now(),
        });
        registry::insert(s.clone());
        s
    }

    pub(super) fn id(&self) -> i64 {
        self.id
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the peer may write to this stream (bRPC's `writable`).
    pub(super) fn reads_input(&self) -> bool {
        !matches!(self.options.input, StreamInput::Discard)
    }

    /// Binds the stream to the connection its frames travel on; fails
    /// the stream if the connection failed already.
    pub(super) fn bind(self: &Arc<Self>, sock: &Arc<Socket>) -> bool {
        self.lock().sock = Some(sock.clone());
        if registry::attach(sock, self.id) {
            return true;
        }
        self.fail(sock.failed_error());
        false
    }

    /// Records the peer's stream and what it asked for; the stream stays
    /// pending (a server's until its response is written).
    pub(super) fn set_remote(&self, remote_id: i64, need_feedback: bool, writable: bool) {
        let mut st = self.lock();
        st.remote_id = remote_id;
        st.peer_need_feedback = need_feedback;
        st.peer_writable = writable;
    }

    /// The stream is connected: held writes go out (after whatever the
    /// caller wrote to the socket before, the response), and the idle
    /// timer starts.
    pub(super) fn connect(self: &Arc<Self>) {
        let _wire = self.wire.lock();
        let (sock, out, feedback) = {
            let mut st = self.lock();
            if st.phase != Phase::Pending {
                return;
            }
            st.phase = Phase::Connected;
            st.opened = true;
            let held = std::mem::take(&mut st.held);
            let mut out = IOBuf::new();
            if st.peer_writable {
                for m in &held {
                    encode_message(st.remote_id, self.id, m, MAX_SEGMENT_SIZE, &mut out);
                }
            } else if !held.is_empty() {
                tracing::warn!(
                    stream = self.id,
                    messages = held.len(),
                    "the peer does not read this stream; messages written before it connected dropped"
                );
            }
            st.last_message = Instant::now();
            self.arm_idle(&mut st);
            // What was consumed before (a client stream's early input).
            let feedback = self.feedback_frame(&mut st);
            (st.sock.clone(), out, feedback)
        };
        if let Some(sock) = sock {
            // A failed connection fails the stream through its extension.
            if !out.is_empty() {
                let _ = sock.write(out);
            }
        }
        self.write_feedback(feedback);
        self.bump_writable();
    }

    /// The FEEDBACK frame to send if the peer wants one and something new
    /// was consumed (counted as sent: see [`write_feedback`]).
    ///
    /// [`write_feedback`]: Self::write_feedback
    fn feedback_frame(&self, st: &mut State) -> Option<Feedback> {
        if st.phase != Phase::Connected || !st.peer_need_feedback || st.consumed <= st.feedback_sent
        {
            return None;
        }
        let sock = st.sock.clone()?;
        let mut out = IOBuf::new();
        encode(
            &StreamFrameMeta::feedback(st.remote_id, self.id, st.consumed),
            &IOBuf::new(),
            &mut out,
        );
        let before = st.feedback_sent;
        st.feedback_sent = st.consumed;
        Some(Feedback { sock, out, before })
    }

    /// Writes a FEEDBACK frame (outside the state lock). One the socket
    /// refused is counted as unsent again: the next consume resends it.
    fn write_feedback(&self, f: Option<Feedback>) {
        let Some(Feedback { sock, out, before }) = f else {
            return;
        };
        if sock.write(out).is_err() {
            let mut st = self.lock();
            st.feedback_sent = st.feedback_sent.min(before);
        }
    }

    fn bump_writable(&self) {
        self.writable.value().fetch_add(1, Ordering::Release);
        self.writable.wake_all();
    }

    fn bump_readable(&self) {
        self.readable.value().fetch_add(1, Ordering::Release);
        self.readable.wake_all();
    }

    /// Writes one message; waits for the window while `wait` (until
    /// `deadline`), else fails with `EAGAIN`.
    pub(super) fn write(
        &self,
        msg: IOBuf,
        wait: bool,
        deadline: Option<Instant>,
    ) -> Result<(), RpcError> {
        let window = self.options.max_buf_size as u64;
        let n = msg.len() as u64;
        loop {
            let seq = self.writable.value().load(Ordering::Acquire);
            let full = {
                let _wire = self.wire.lock();
                let decided = {
                    let mut st = self.lock();
                    match st.phase {
                        Phase::Closed => return Err(closed_error(&st)),
                        Phase::Connected if !st.peer_writable => {
                            return Err(RpcError::new(
                                libc::EBADF,
                                "the peer does not read this stream (it has no handler)",
                            ))
                        }
                        _ => {}
                    }
                    if window > 0 && st.produced >= st.remote_consumed + window {
                        None
                    } else {
                        st.produced += n;
                        st.messages_out += 1;
                        if st.phase == Phase::Pending {
                            st.held.push(msg.clone());
                            return Ok(());
                        }
                        let Some(sock) = st.sock.clone() else {
                            return Err(RpcError::new(
                                libc::EINVAL,
                                "the stream has no connection",
                            ));
                        };
                        let mut out = IOBuf::new();
                        encode_message(st.remote_id, self.id, &msg, MAX_SEGMENT_SIZE, &mut out);
                        Some((sock, out))
                    }
                };
                match decided {
                    None => true,
                    Some((sock, out)) => match sock.write(out) {
                        Ok(()) => return Ok(()),
                        Err(e) => {
                            // Not sent: uncounted (the wire lock kept
                            // other writes out meanwhile).
                            let mut st = self.lock();
                            st.produced -= n;
                            st.messages_out -= 1;
                            // The connection's queue is full (many
                            // streams, a peer reading slowly): like a
                            // full window.
                            if e.code != errno::EOVERCROWDED {
                                return Err(e);
                            }
                            false
                        }
                    },
                }
            };
            if !wait {
                return Err(RpcError::new(
                    libc::EAGAIN,
                    "the stream's window is full (the peer has not consumed enough)",
                ));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RpcError::new(
                    libc::ETIMEDOUT,
                    "the stream's window stayed full until the deadline",
                ));
            }
            if full {
                let _ = self.writable.wait(seq, deadline);
            } else {
                // Nothing wakes a writer when the socket's queue drains:
                // look again shortly.
                let _ = fibrpc_fiber::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Waits until a write would not wait (or the stream closed, or
    /// `deadline`).
    pub(super) fn wait_writable(&self, deadline: Option<Instant>) -> Result<(), RpcError> {
        let window = self.options.max_buf_size as u64;
        loop {
            let seq = self.writable.value().load(Ordering::Acquire);
            {
                let st = self.lock();
                if st.phase == Phase::Closed {
                    return Err(closed_error(&st));
                }
                if window == 0 || st.produced < st.remote_consumed + window {
                    return Ok(());
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RpcError::new(libc::ETIMEDOUT, "the window stayed full"));
            }
            let _ = self.writable.wait(seq, deadline);
        }
    }

    /// FEEDBACK from the peer.
    pub(super) fn on_feedback(&self, consumed: i64) {
        let mut st = self.lock();
        // Before connecting, or stale: ignored (as bRPC).
        if st.phase != Phase::Connected || consumed <= st.remote_consumed as i64 {
            return;
        }
        st.remote_consumed = consumed as u64;
        drop(st);
        self.bump_writable();
    }

    /// A DATA frame (one segment) from the peer, in the reader.
    pub(super) fn on_data(self: &Arc<Self>, sock: &Socket, payload: IOBuf, more: bool) -> Arrival {
        let mut st = self.lock();
        if st.phase == Phase::Closed {
            return Arrival::Done;
        }
        if st.partial.is_empty() && !st.awaits_response {
            // A writer sends only while what it wrote minus what we
            // reported consumed is under its window, which is at most
            // ours: past it, the peer ignored the window.
            let unconsumed = st.received - st.consumed;
            let limit = self.options.receive_limit() as u64;
            if unconsumed >= limit {
                return Arrival::Violation(format!(
                    "the peer wrote past the window: {unconsumed} bytes unconsumed, \
                     window {limit}"
                ));
            }
        }
        if st.partial.len() + payload.len() > sock.max_body_size() {
            return Arrival::Violation(format!(
                "a message in segments passed max_body_size={}",
                sock.max_body_size()
            ));
        }
        st.partial.append_buf(&payload);
        if more {
            return Arrival::Done;
        }
        let msg = std::mem::take(&mut st.partial);
        if st.awaits_response {
            st.awaits_response = false;
            return Arrival::Response(msg);
        }
        let n = msg.len() as u64;
        st.received += n;
        st.messages_in += 1;
        st.max_unconsumed = st.max_unconsumed.max(st.received - st.consumed);
        st.last_message = Instant::now();
        match &self.options.input {
            StreamInput::Recv => {
                st.inbox.push_back(msg);
                drop(st);
                self.bump_readable();
            }
            StreamInput::Handler(_) => {
                st.inbox.push_back(msg);
                self.start_consumer(&mut st);
            }
            StreamInput::Discard => {
                st.consumed += n;
                let f = self.feedback_frame(&mut st);
                drop(st);
                self.write_feedback(f);
            }
        }
        Arrival::Done
    }

    /// Starts the fiber that feeds the handler, unless it runs.
    fn start_consumer(self: &Arc<Self>, st: &mut State) {
        if st.consumer_running || !matches!(self.options.input, StreamInput::Handler(_)) {
            return;
        }
        st.consumer_running = true;
        let s = self.clone();
        let lost = self.clone();
        fibrpc_fiber::Builder::new().spawn_or_else(
            move || super::consume::run(s),
            move || {
                crate::unstarted::run_on_thread("a stream's handler", move || {
                    super::consume::run(lost)
                })
            },
        );
    }

    /// The consumer's next step (see `consume.rs`).
    pub(super) fn next_event(&self) -> Event {
        let mut st = self.lock();
        if !st.inbox.is_empty() {
            let n = st.inbox.len().min(self.options.messages_in_batch.max(1));
            return Event::Messages(st.inbox.drain(..n).collect());
        }
        if st.idle_pending {
            st.idle_pending = false;
            return Event::Idle;
        }
        if st.phase == Phase::Closed && !st.end_delivered {
            st.end_delivered = true;
            return Event::End(st.error.clone());
        }
        st.consumer_running = false;
        Event::Stop
    }

    /// `n` bytes were consumed (handed to the handler, or read).
    pub(super) fn consumed(&self, n: u64) {
        let f = {
            let mut st = self.lock();
            st.consumed += n;
            self.feedback_frame(&mut st)
        };
        self.write_feedback(f);
    }

    /// The next message for `recv`.
    pub(super) fn recv(&self, deadline: Option<Instant>) -> Result<Option<IOBuf>, RpcError> {
        if !matches!(self.options.input, StreamInput::Recv) {
            return Err(RpcError::new(
                libc::EINVAL,
                "the stream's input goes to a handler (or is discarded), not to recv",
            ));
        }
        loop {
            let seq = self.readable.value().load(Ordering::Acquire);
            {
                let mut st = self.lock();
                if let Some(m) = st.inbox.pop_front() {
                    st.consumed += m.len() as u64;
                    // Batched: when the reader caught up, or half a window
                    // (ours: the peer's is likely the same) went unreported.
                    let half = match self.options.max_buf_size {
                        0 => self.options.receive_limit() / 2,
                        w => (w / 2).max(1),
                    } as u64;
                    let f = if st.inbox.is_empty() || st.consumed - st.feedback_sent >= half {
                        self.feedback_frame(&mut st)
                    } else {
                        None
                    };
                    drop(st);
                    self.write_feedback(f);
                    return Ok(Some(m));
                }
                if st.idle_pending {
                    st.idle_pending = false;
                    return Err(RpcError::new(
                        libc::ETIMEDOUT,
                        "no message within the stream's idle_timeout (the stream stays open)",
                    ));
                }
                if st.phase == Phase::Closed {
                    return match &st.error {
                        None => Ok(None),
                        Some(e) => Err(e.clone()),
                    };
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RpcError::new(
                    errno::ERPCTIMEDOUT,
                    "no message before the deadline",
                ));
            }
            let _ = self.readable.wait(seq, deadline);
        }
    }

    fn arm_idle(self: &Arc<Self>, st: &mut State) {
        let Some(t) = self.options.idle_timeout else {
            return;
        };
        let weak = Arc::downgrade(self);
        st.idle_timer = Some(timer::add(st.last_message + t, move || {
            if let Some(s) = weak.upgrade() {
                s.on_idle_timer(t);
            }
        }));
    }

    /// The idle timer fired (on the timer thread: quick).
    fn on_idle_timer(self: &Arc<Self>, t: Duration) {
        let mut st = self.lock();
        st.idle_timer = None;
        if st.phase == Phase::Closed {
            return;
        }
        let now = Instant::now();
        if now >= st.last_message + t {
            // The next one is another idle_timeout away.
            st.last_message = now;
            match &self.options.input {
                StreamInput::Handler(_) => {
                    st.idle_pending = true;
                    self.start_consumer(&mut st);
                }
                StreamInput::Recv => {
                    st.idle_pending = true;
                    self.readable.value().fetch_add(1, Ordering::Release);
                    self.readable.wake_all();
                }
                StreamInput::Discard => {}
            }
        }
        self.arm_idle(&mut st);
    }

    /// Closes the stream: normally (`error` none) or failed. Sends CLOSE
    /// to the peer if the stream was connected and `tell_peer`. Returns
    /// false if it was closed already.
    pub(super) fn finish(self: &Arc<Self>, error: Option<RpcError>, tell_peer: bool) -> bool {
        // After every DATA frame of the stream.
        let wire = self.wire.lock();
        let (sock, close) = {
            let mut st = self.lock();
            if st.phase == Phase::Closed {
                return false;
            }
            let was_connected = st.phase == Phase::Connected;
            st.phase = Phase::Closed;
            st.error = error;
            st.held.clear();
            st.partial.clear();
            if let Some(t) = st.idle_timer.take() {
                let _ = timer::cancel(t);
            }
            let close = (was_connected && tell_peer).then(|| {
                let mut out = IOBuf::new();
                encode(
                    &StreamFrameMeta::close(st.remote_id, self.id),
                    &IOBuf::new(),
                    &mut out,
                );
                out
            });
            self.start_consumer(&mut st);
            (st.sock.clone(), close)
        };
        if let (Some(sock), Some(out)) = (&sock, close) {
            let _ = sock.write(out);
        }
        drop(wire);
        registry::remove(self.id);
        if let Some(sock) = sock {
            registry::detach(&sock, self.id);
        }
        self.bump_writable();
        self.bump_readable();
        true
    }

    /// Fails the stream with `error` (its connection failed, its call
    /// failed): nothing goes on the wire.
    pub(super) fn fail(self: &Arc<Self>, error: RpcError) {
        self.finish(Some(error), false);
    }

    pub(super) fn stats(&self) -> StreamStats {
        let st = self.lock();
        StreamStats {
            produced: st.produced,
            remote_consumed: st.remote_consumed,
            received: st.received,
            consumed: st.consumed,
            unconsumed: st.received - st.consumed,
            max_unconsumed: st.max_unconsumed,
            messages_in: st.messages_in,
            messages_out: st.messages_out,
        }
    }

    /// Whether the stream connected once.
    pub(super) fn opened(&self) -> bool {
        self.lock().opened
    }

    pub(super) fn phase(&self) -> Phase {
        self.lock().phase
    }
}

/// A FEEDBACK frame decided under the state lock, written after it.
struct Feedback {
    sock: Arc<Socket>,
    out: IOBuf,
    /// `feedback_sent` before this one.
    before: u64,
}

/// What the handler's fiber does next.
pub(super) enum Event {
    Messages(Vec<IOBuf>),
    Idle,
    End(Option<RpcError>),
    Stop,
}

fn closed_error(st: &State) -> RpcError {
    match &st.error {
        Some(e) => RpcError::new(e.code, format!("the stream failed: {}", e.text)),
        None => RpcError::new(libc::EINVAL, "the stream is closed"),
    }
}
