//! [`GrpcStream`]: one streaming gRPC call as the client sees it, with
//! serialized messages. [`GrpcChannel`](super::GrpcChannel) opens it;
//! the typed handles of `client_typed.rs` wrap it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use fibrpc_fiber::timer;
use fibrpc_iobuf::IOBuf;
use http::HeaderMap;

use super::client::{check_head, final_status, frame_request, inflate_message, GrpcClientProtocol};
use crate::channel::OpenCall;
use crate::protocol::h2::client::{self as h2c, StreamSink, Taken};
use crate::{errno, RpcError};

/// No deadline timer armed.
const NO_TIMER: u64 = u64::MAX;

/// One streaming gRPC call on the client (server streaming, client
/// streaming or bidirectional): the client's messages
/// ([`send`](Self::send), then [`close_send`](Self::close_send)) and
/// the server's ([`recv`](Self::recv)), serialized.
///
/// Both suspend the calling fiber (or block a plain thread): `recv`
/// until a whole message came or the call ended, `send` while more than
/// [`H2Options::stream_send_buffer`](crate::protocol::h2::H2Options::stream_send_buffer)
/// bytes of the stream wait for the server's flow-control windows. What
/// the server sends is held up to the stream's receive window
/// (`H2Options::initial_window_size`), given back as `recv` takes it: a
/// caller that reads slowly stops the server.
///
/// The call ends with the server's `grpc-status`: `recv` returns
/// `Ok(None)` after the last message when it is 0, else the error with
/// bRPC's code for it (as unary calls map it). [`cancel`](Self::cancel),
/// dropping every clone before the end, and the deadline (sent as
/// `grpc-timeout`, and kept by a timer here) reset the stream
/// (`RST_STREAM CANCEL`); the server's RST_STREAM or GOAWAY and a
/// broken connection fail it. Clones share the call, so one fiber may
/// read while another writes.
#[derive(Clone)]
pub struct GrpcStream {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GrpcStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcStream")
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

/// The limits one stream works within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamConfig {
    /// Messages are gzip-compressed (and sent with `grpc-encoding`).
    pub gzip: bool,
    /// Request bytes held for the server's windows before `send` waits.
    pub send_buffer: usize,
    /// The largest response message taken (`max_body_size`).
    pub max_message: usize,
    /// The largest response message once inflated.
    pub max_decompressed: usize,
}

struct Inner {
    open: OpenCall<GrpcClientProtocol>,
    sink: Arc<StreamSink>,
    deadline: Option<Instant>,
    config: StreamConfig,
    /// Response bytes taken from the sink, not yet cut into messages,
    /// and whether the response's headers were checked.
    recv: StdMutex<(IOBuf, bool)>,
    /// One `send` at a time: messages go out whole, in order.
    sending: fibrpc_fiber::sync::Mutex<()>,
    send_closed: AtomicBool,
    /// This side ended the call (cancelled, or its deadline passed).
    local_end: StdMutex<Option<RpcError>>,
    /// The server's outcome, once taken.
    outcome: StdMutex<Option<Result<(), RpcError>>>,
    timer: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let t = self.timer.load(Ordering::Acquire);
        if t != NO_TIMER {
            let _ = timer::cancel(timer::TimerId::from_u64(t));
        }
        // The open call's drop resets the stream if it did not end.
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GrpcStream {
    /// The stream of `open`, whose response goes to `sink`.
    pub(crate) fn new(
        open: OpenCall<GrpcClientProtocol>,
        sink: Arc<StreamSink>,
        deadline: Option<Instant>,
        config: StreamConfig,
    ) -> GrpcStream {
        let inner = Arc::new(Inner {
            open,
            sink,
            deadline,
            config,
            recv: StdMutex::new((IOBuf::new(), false)),
            sending: fibrpc_fiber::sync::Mutex::new(()),
            send_closed: AtomicBool::new(false),
            local_end: StdMutex::new(None),
            outcome: StdMutex::new(None),
            timer: AtomicU64::new(NO_TIMER),
        });
        if let Some(d) = deadline {
            let weak: Weak<Inner> = Arc::downgrade(&inner);
            let id = timer::add(d, move || {
                // Not on the timer's thread: resetting writes.
                let _ = fibrpc_fiber::Builder::new().spawn(move || {
                    if let Some(inner) = weak.upgrade() {
                        inner.expire();
                    }
                });
            });
            inner.timer.store(id.as_u64(), Ordering::Release);
        }
        GrpcStream { inner }
    }

    /// The call's deadline (sent as `grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The response's headers (the server's initial metadata), once they
    /// came.
    pub fn headers(&self) -> Option<HeaderMap> {
        self.inner.sink.head().map(|(_, h)| h)
    }

    /// Sends one message, waiting while the server's windows hold back
    /// more than the stream's send buffer. Fails once the call ended
    /// (with its error if it failed), after
    /// [`close_send`](Self::close_send), and at the deadline.
    pub fn send(&self, message: IOBuf) -> Result<(), RpcError> {
        let inner = &*self.inner;
        if let Some(e) = inner.local_end() {
            return Err(e);
        }
        if inner.send_closed.load(Ordering::Acquire) {
            return Err(RpcError::new(
                errno::EREQUEST,
                "send on a gRPC stream after close_send",
            ));
        }
        let framed = frame_request(inner.config.gzip, message)?;
        let _turn = inner.sending.lock();
        if !inner
            .sink
            .wait_room(inner.config.send_buffer, inner.deadline)
        {
            return Err(inner.ended_error());
        }
        h2c::send_data(inner.open.sock(), inner.open.id(), framed, false)
            .map_err(|_| inner.ended_error())
    }

    /// Half-closes the call: the server hears that no more messages come
    /// (END_STREAM). Then only [`recv`](Self::recv) is left. Closing
    /// twice, or a call that already ended, is not an error.
    pub fn close_send(&self) -> Result<(), RpcError> {
        let inner = &*self.inner;
        if inner.send_closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(e) = inner.local_end() {
            return Err(e);
        }
        let _turn = inner.sending.lock();
        let _ = h2c::send_data(inner.open.sock(), inner.open.id(), IOBuf::new(), true);
        Ok(())
    }

    /// The server's next message, waiting for it; `Ok(None)` once the
    /// call ended with `grpc-status` 0. Fails with the call's error (the
    /// server's status, a reset, a broken connection, the deadline, a
    /// cancel), and on a malformed or too large message (the call is then
    /// reset).
    pub fn recv(&self) -> Result<Option<IOBuf>, RpcError> {
        loop {
            match self.inner.recv_step(None)? {
                Some(Step::Message(m)) => return Ok(Some(m)),
                Some(Step::End) => return Ok(None),
                None => {
                    // Nothing yet: wait for more (the deadline's timer
                    // ends the sink too).
                    if let Taken::Data(d, give) = self.inner.sink.take_wait(self.inner.deadline) {
                        self.inner.took(d, give)?;
                    } else if self.inner.deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(self.inner.expire());
                    }
                }
            }
        }
    }

    /// [`recv`](Self::recv) as a `Future` for any executor (tokio
    /// included); polling never blocks.
    pub fn recv_async(&self) -> RecvFuture {
        RecvFuture {
            stream: self.clone(),
        }
    }

    /// Ends the call from this side: the stream is reset
    /// (`RST_STREAM CANCEL`) unless it ended already, and `send` and
    /// `recv` fail with `ECANCELED` from now on.
    pub fn cancel(&self) {
        self.inner.end_locally(RpcError::new(
            libc::ECANCELED,
            "the gRPC call was cancelled by this client",
        ));
    }

    /// Whether the call ended: the server's status came, or this side
    /// cancelled it, or its deadline passed.
    pub fn is_finished(&self) -> bool {
        self.inner.sink.ended()
    }
}

/// What one step of receiving found.
enum Step {
    Message(IOBuf),
    End,
}

impl Inner {
    fn local_end(&self) -> Option<RpcError> {
        lock(&self.local_end).clone()
    }

    /// This side ends the call with `e` (unless it ended already).
    fn end_locally(&self, e: RpcError) -> RpcError {
        {
            let mut l = lock(&self.local_end);
            if let Some(prev) = &*l {
                return prev.clone();
            }
            if lock(&self.outcome).is_some() || self.open.is_done() {
                // The server's outcome is in: nothing to reset.
                return e;
            }
            *l = Some(e.clone());
        }
        self.open.give_up();
        self.sink.end();
        e
    }

    /// The deadline passed.
    fn expire(&self) -> RpcError {
        let e = RpcError::new(
            errno::ERPCTIMEDOUT,
            format!(
                "the gRPC stream to {} reached its deadline",
                self.open.sock().remote_side()
            ),
        );
        self.end_locally(e)
    }

    /// The call's outcome, once the stream ended.
    fn settle(&self) -> Result<(), RpcError> {
        if let Some(e) = self.local_end() {
            return Err(e);
        }
        let mut outcome = lock(&self.outcome);
        if let Some(o) = &*outcome {
            return o.clone();
        }
        if !self.open.wait(self.deadline) {
            drop(outcome);
            return Err(self.expire());
        }
        let o = match self.open.take() {
            Some(r) => r.and_then(final_status).map(drop),
            None => Err(RpcError::new(
                errno::EINTERNAL,
                "the gRPC stream's outcome was taken",
            )),
        };
        *outcome = Some(o.clone());
        o
    }

    /// Why a message could not be sent: the call's error, or that it
    /// ended.
    fn ended_error(&self) -> RpcError {
        if let Some(e) = self.local_end() {
            return e;
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return self.expire();
        }
        match self.settle() {
            Err(e) => e,
            Ok(()) => RpcError::new(
                libc::ECANCELED,
                "the server ended the gRPC call (status OK) before this message was sent",
            ),
        }
    }

    /// Bytes taken from the sink: buffered (and the window given back).
    fn took(&self, data: IOBuf, give: u32) -> Result<(), RpcError> {
        if give > 0 {
            h2c::give_back(self.open.sock(), self.open.id(), give);
        }
        lock(&self.recv).0.append_owned(data);
        Ok(())
    }

    /// Cuts a message from what was taken, takes more without waiting,
    /// or finds the end. `None`: nothing yet (`waker` hears of more).
    fn recv_step(&self, waker: Option<&std::task::Waker>) -> Result<Option<Step>, RpcError> {
        if let Some(e) = self.local_end() {
            return Err(e);
        }
        loop {
            if let Some(m) = self.cut()? {
                return Ok(Some(Step::Message(m)));
            }
            match self.sink.take(waker) {
                Taken::Data(d, give) => self.took(d, give)?,
                Taken::Ended => {
                    if let Some(e) = self.local_end() {
                        return Err(e);
                    }
                    self.settle()?;
                    if !lock(&self.recv).0.is_empty() {
                        return Err(RpcError::new(
                            errno::ERESPONSE,
                            "the gRPC stream ended inside a message",
                        ));
                    }
                    return Ok(Some(Step::End));
                }
                Taken::Empty => return Ok(None),
            }
        }
    }

    /// The next whole message of what was taken, if there is one.
    fn cut(&self) -> Result<Option<IOBuf>, RpcError> {
        let mut r = lock(&self.recv);
        let (buf, checked) = &mut *r;
        if buf.len() < 5 {
            return Ok(None);
        }
        let head = self.sink.head();
        if !*checked {
            let (status, headers) = head.as_ref().ok_or_else(|| {
                RpcError::new(errno::ERESPONSE, "DATA before the response's headers")
            })?;
            if let Err(e) = check_head(*status, headers) {
                drop(r);
                return Err(self.end_locally(e));
            }
            *checked = true;
        }
        let mut prefix = [0u8; 5];
        buf.copy_to(&mut prefix, 0);
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if len > self.config.max_message {
            drop(r);
            return Err(self.end_locally(RpcError::new(
                errno::ERESPONSE,
                format!(
                    "a gRPC response message of {len} bytes, over max_body_size ({})",
                    self.config.max_message
                ),
            )));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        buf.pop_front(5);
        let body = buf.split_to(len);
        drop(r);
        let headers = head.map(|(_, h)| h).unwrap_or_default();
        match inflate_message(prefix[0], body, &headers, self.config.max_decompressed) {
            Ok(m) => Ok(Some(m)),
            Err(e) => Err(self.end_locally(e)),
        }
    }
}

/// [`GrpcStream::recv_async`]'s future: the next message, `None` at the
/// end, or the call's error.
#[derive(Debug)]
pub struct RecvFuture {
    stream: GrpcStream,
}

impl Future for RecvFuture {
    type Output = Result<Option<IOBuf>, RpcError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &*self.stream.inner;
        match inner.recv_step(Some(cx.waker())) {
            Ok(Some(Step::Message(m))) => Poll::Ready(Ok(Some(m))),
            Ok(Some(Step::End)) => Poll::Ready(Ok(None)),
            // The deadline's timer ends the sink, which wakes us.
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
