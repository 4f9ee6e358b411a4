//! [`ServerStream`]: one streaming gRPC call as its handler sees it,
//! with serialized messages. The generated services wrap it in typed
//! handles ([`super::ServerStreamWriter`], [`super::ClientStreamReader`],
//! [`super::BidiStream`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Instant;

use fibrpc_fiber::sync::Mutex;
use fibrpc_iobuf::IOBuf;

use super::web_stream::WebSink;
use super::{frame_message, grpc_status_of, GrpcStatus};
use crate::protocol::baidu_std::compress::{self, CompressType};
use crate::protocol::h2::{H2Conn, Inbound, InboundEnd, SendFailure, Taken};
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Limits and settings of one streaming call, from the server's options
/// and the request's headers.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    /// The largest message taken (`ServerOptions::max_body_size`).
    pub max_message: usize,
    /// The largest message once inflated
    /// (`ServerOptions::max_decompressed_size`).
    pub max_decompressed: usize,
    /// Response bytes held for the client's window before `send` waits
    /// (`H2Options::stream_send_buffer`).
    pub send_buffer: usize,
    /// The request's `grpc-encoding`, if not `identity`.
    pub encoding: Option<String>,
}

#[derive(Debug, Default)]
struct RecvState {
    /// Bytes taken from the stream and not yet cut into messages.
    buf: IOBuf,
    /// The client finished sending.
    ended: bool,
}

/// Where the call's messages come from and go to.
enum Transport {
    /// A gRPC call on an HTTP/2 stream: its DATA as the reader appends
    /// it, its responses as the stream's frames.
    H2(Arc<Inbound>),
    /// A gRPC-Web call (server streaming): the request came whole and
    /// waits in `recv`'s buffer; responses go to its HTTP response.
    Web(Box<dyn WebSink>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::H2(inbound) => f.debug_tuple("H2").field(inbound).finish(),
            Transport::Web(_) => f.write_str("Web"),
        }
    }
}

#[derive(Debug)]
struct Inner {
    sock: Arc<Socket>,
    transport: Transport,
    deadline: Option<Instant>,
    limits: StreamLimits,
    recv: Mutex<RecvState>,
    finished: AtomicBool,
    /// The gRPC status of an error this stream raised (a message too
    /// large is RESOURCE_EXHAUSTED, whatever its error code maps to).
    raised: StdMutex<Option<(i32, GrpcStatus)>>,
    /// Length-prefixed message bytes taken from the client, and sent
    /// (rpcz's request and response sizes of the call).
    received_bytes: AtomicU64,
    sent_bytes: AtomicU64,
}

/// One streaming gRPC call on the server: the client's messages
/// ([`recv`](Self::recv)) and the server's ([`send`](Self::send)),
/// serialized. Both suspend the calling fiber, never a worker thread:
/// `recv` until a whole message came, `send` while the client's
/// flow-control window holds back more than
/// [`H2Options::stream_send_buffer`](crate::protocol::h2::H2Options::stream_send_buffer)
/// bytes of this stream.
///
/// The call ends with [`finish`](Self::finish) or, for the generated
/// services, with the handler's return. A client that cancels (RST_STREAM),
/// a deadline (`grpc-timeout`) that passes, and a connection that fails
/// all make `recv` and `send` fail from then on. Clones share the call, so
/// one fiber may read while another writes.
#[derive(Debug, Clone)]
pub struct ServerStream {
    inner: Arc<Inner>,
}

impl ServerStream {
    pub(crate) fn new(
        sock: Arc<Socket>,
        inbound: Arc<Inbound>,
        deadline: Option<Instant>,
        limits: StreamLimits,
    ) -> ServerStream {
        Self::with(
            sock,
            Transport::H2(inbound),
            deadline,
            limits,
            RecvState::default(),
        )
    }

    /// A gRPC-Web call: `request` is its whole body (length-prefixed
    /// messages, decoded from base64 in text mode), `sink` its response.
    pub(crate) fn web(
        sock: Arc<Socket>,
        request: IOBuf,
        deadline: Option<Instant>,
        limits: StreamLimits,
        sink: Box<dyn WebSink>,
    ) -> ServerStream {
        let recv = RecvState {
            buf: request,
            ended: true,
        };
        Self::with(sock, Transport::Web(sink), deadline, limits, recv)
    }

    fn with(
        sock: Arc<Socket>,
        transport: Transport,
        deadline: Option<Instant>,
        limits: StreamLimits,
        recv: RecvState,
    ) -> ServerStream {
        ServerStream {
            inner: Arc::new(Inner {
                sock,
                transport,
                deadline,
                limits,
                recv: Mutex::new(recv),
                finished: AtomicBool::new(false),
                raised: StdMutex::new(None),
                received_bytes: AtomicU64::new(0),
                sent_bytes: AtomicU64::new(0),
            }),
        }
    }

    /// The HTTP/2 stream id of the call (0 for a gRPC-Web call).
    pub fn stream_id(&self) -> u32 {
        match &self.inner.transport {
            Transport::H2(inbound) => inbound.stream_id(),
            Transport::Web(_) => 0,
        }
    }

    /// The HTTP/2 input of the call (none for gRPC-Web, whose request
    /// came whole).
    fn inbound(&self) -> Option<&Arc<Inbound>> {
        match &self.inner.transport {
            Transport::H2(inbound) => Some(inbound),
            Transport::Web(_) => None,
        }
    }

    /// The call's deadline (from the client's `grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Whether the call can no longer succeed: the client cancelled it,
    /// its deadline passed, its connection failed, or it finished.
    pub fn is_cancelled(&self) -> bool {
        self.inner.finished.load(Ordering::Acquire)
            || self.inbound().is_some_and(|i| i.broken().is_some())
            || self.inner.deadline.is_some_and(|d| Instant::now() >= d)
            || self.inner.sock.failed()
    }

    /// The next message from the client, waiting for it; `Ok(None)` once
    /// the client finished sending. Fails when the call was cancelled,
    /// timed out or broke, and on a malformed or too large message.
    pub fn recv(&self) -> Result<Option<IOBuf>, RpcError> {
        if self.is_finished() {
            return Err(RpcError::new(
                errno::EINTERNAL,
                "recv on a gRPC call that already finished",
            ));
        }
        let mut st = self.inner.recv.lock();
        loop {
            if let Some(msg) = self.cut_message(&mut st.buf)? {
                return Ok(Some(msg));
            }
            if st.ended {
                if st.buf.is_empty() {
                    return Ok(None);
                }
                return Err(self.raise(
                    errno::EREQUEST,
                    "the request stream ended within a message",
                    GrpcStatus::Internal,
                ));
            }
            let sock = &self.inner.sock;
            let Some(inbound) = self.inbound() else {
                st.ended = true;
                continue;
            };
            match inbound.take(self.inner.deadline, &|| sock.failed()) {
                Taken::Data(data, update) => {
                    st.buf.append_owned(data);
                    if !update.is_empty() {
                        // A failed write means a failed connection,
                        // which the next wait reports.
                        let _ = sock.write(update);
                    }
                }
                Taken::End => st.ended = true,
                Taken::Broken(why) => return Err(broken_error(why)),
                Taken::TimedOut => return Err(timed_out()),
                Taken::ConnectionFailed => return Err(connection_failed()),
            }
        }
    }

    /// Cuts one whole length-prefixed message off `buf`, inflated if it
    /// is compressed.
    fn cut_message(&self, buf: &mut IOBuf) -> Result<Option<IOBuf>, RpcError> {
        let mut prefix = [0u8; 5];
        if buf.copy_to(&mut prefix, 0) < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        let limits = &self.inner.limits;
        if prefix[0] > 1 {
            return Err(self.raise(
                errno::EREQUEST,
                format!("a message with compressed flag {}", prefix[0]),
                GrpcStatus::Internal,
            ));
        }
        if len > limits.max_message {
            return Err(self.raise(
                errno::EREQUEST,
                format!(
                    "a request message of {len} bytes, over max_body_size ({})",
                    limits.max_message
                ),
                GrpcStatus::ResourceExhausted,
            ));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        buf.pop_front(5);
        let msg = buf.split_to(len);
        self.inner
            .received_bytes
            .fetch_add(5 + len as u64, Ordering::Relaxed);
        if prefix[0] == 0 {
            return Ok(Some(msg));
        }
        match limits.encoding.as_deref() {
            Some("gzip") => {}
            Some(other) => {
                return Err(self.raise(
                    errno::EREQUEST,
                    format!("grpc-encoding {other} is not supported (gzip is)"),
                    GrpcStatus::Unimplemented,
                ))
            }
            None => {
                return Err(self.raise(
                    errno::EREQUEST,
                    "a compressed message without grpc-encoding",
                    GrpcStatus::Internal,
                ))
            }
        }
        compress::decompress(CompressType::Gzip.as_i32(), &msg, limits.max_decompressed)
            .map(Some)
            .map_err(|e| {
                self.raise(
                    errno::EREQUEST,
                    format!("request message: {e}"),
                    GrpcStatus::ResourceExhausted,
                )
            })
    }

    /// An error of this stream's own, remembered with its gRPC status.
    fn raise(&self, code: i32, text: impl Into<String>, status: GrpcStatus) -> RpcError {
        *self.inner.raised.lock().unwrap_or_else(|e| e.into_inner()) = Some((code, status));
        RpcError::new(code, text)
    }

    /// Sends one message to the client (the response headers go with
    /// the first). Waits while the client's window holds back too much
    /// of the stream; fails once the call was cancelled, timed out,
    /// broke or finished.
    pub fn send(&self, msg: IOBuf) -> Result<(), RpcError> {
        if self.inner.finished.load(Ordering::Acquire) {
            return Err(RpcError::new(
                errno::EINTERNAL,
                "send on a gRPC call that already finished",
            ));
        }
        let sock = &self.inner.sock;
        let inbound = match &self.inner.transport {
            Transport::H2(inbound) => inbound,
            Transport::Web(sink) => return sink.send(frame_message(msg), self.inner.deadline),
        };
        let Some(conn) = sock.existing_protocol_state::<H2Conn>() else {
            return Err(connection_failed());
        };
        let framed = frame_message(msg);
        let size = framed.len() as u64;
        let r = conn.stream_send(
            sock,
            self.stream_id(),
            &super::response_headers,
            framed,
            self.inner.limits.send_buffer,
            self.inner.deadline,
        );
        if r.is_ok() {
            self.inner.sent_bytes.fetch_add(size, Ordering::Relaxed);
        }
        r.map_err(|f| match f {
            SendFailure::Gone => match inbound.broken() {
                Some(why) => broken_error(why),
                None => RpcError::new(errno::ECLOSE, "the gRPC stream is closed"),
            },
            SendFailure::TimedOut => timed_out(),
            SendFailure::ConnectionFailed => connection_failed(),
        })
    }

    /// Ends the call with `status` in the trailers (`Ok`: gRPC's OK;
    /// an error: its code mapped as bRPC's `ErrorCodeToGrpcStatus`, and
    /// its text as `grpc-message`). Later calls, and sends, do nothing
    /// and fail. Messages still waiting for the client's window go
    /// before the trailers.
    pub fn finish(&self, status: Result<(), RpcError>) {
        if self.inner.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let (code, message) = match &status {
            Ok(()) => (GrpcStatus::Ok, None),
            Err(e) => {
                let raised = *self.inner.raised.lock().unwrap_or_else(|p| p.into_inner());
                let code = match raised {
                    Some((c, s)) if c == e.code => s,
                    _ => grpc_status_of(e.code),
                };
                (code, Some(format!("[E{}]{}", e.code, e.text)))
            }
        };
        let inbound = match &self.inner.transport {
            Transport::H2(inbound) => inbound,
            Transport::Web(sink) => return sink.finish(code, message),
        };
        // The client may still be sending: it is told to stop, and what
        // comes meanwhile is dropped.
        let reset_after = !inbound.client_done();
        inbound.discard();
        let sock = &self.inner.sock;
        let Some(conn) = sock.existing_protocol_state::<H2Conn>() else {
            return;
        };
        let trailers = super::status_block(false, code, message.as_deref());
        let trailers_only = super::status_block(true, code, message.as_deref());
        conn.stream_finish(sock, self.stream_id(), trailers_only, trailers, reset_after);
    }

    /// The length-prefixed message bytes taken from the client and sent
    /// to it so far (the compressed size for a compressed message).
    pub(crate) fn wire_bytes(&self) -> (u64, u64) {
        (
            self.inner.received_bytes.load(Ordering::Relaxed),
            self.inner.sent_bytes.load(Ordering::Relaxed),
        )
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.inner.finished.load(Ordering::Acquire)
    }
}

fn broken_error(why: InboundEnd) -> RpcError {
    match why {
        InboundEnd::Reset(code) => RpcError::new(
            libc::ECANCELED,
            format!("the client cancelled the call (RST_STREAM {code})"),
        ),
        InboundEnd::Failed(reason) => RpcError::new(
            errno::EREQUEST,
            format!("the stream was reset for the client's error ({reason:?})"),
        ),
    }
}

fn timed_out() -> RpcError {
    RpcError::new(
        errno::ERPCTIMEDOUT,
        "the call's deadline (grpc-timeout) passed",
    )
}

fn connection_failed() -> RpcError {
    RpcError::new(
        errno::EFAILEDSOCKET,
        "the connection of the gRPC call failed",
    )
}
