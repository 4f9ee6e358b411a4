//! [`Channel`]: the client side. A channel talks to one server over
//! baidu_std: synchronous calls suspend the calling fiber (or block a plain
//! thread) until the response, a failure or the deadline; asynchronous calls
//! return at once and run a callback.

mod async_call;
pub(crate) mod call;
pub(crate) mod connections;
mod options;
mod response;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use crate::protocol::baidu_std::{self, checksum, compress, RpcMeta, RpcRequestMeta};
use crate::protocol::InputMessage;
use crate::socket::Socket;
use crate::{codec, errno, Controller, RpcError};
use call::PendingCall;
use connections::Connections;
pub use options::{ChannelOptions, ConnectionType};

/// A client of one server. Cheap to clone (clones share connections); the
/// connections close when the last clone is dropped.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    options: ChannelOptions,
    conns: Connections,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("addr", &self.inner.addr)
            .field("connection_type", &self.inner.options.connection_type)
            .finish()
    }
}

/// Correlation ids are unique per process, so a late response can never
/// match a newer call on the same connection.
fn next_correlation_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Channel {
    /// A channel to `addr` (resolved now; connected at the first call).
    pub fn new(addr: impl ToSocketAddrs, options: ChannelOptions) -> Result<Channel, RpcError> {
        let addr = addr
            .to_socket_addrs()
            .map_err(RpcError::from)?
            .next()
            .ok_or_else(|| RpcError::new(libc::EINVAL, "the address resolves to nothing"))?;
        Ok(Channel {
            inner: Arc::new(Inner {
                addr,
                conns: Connections::new(
                    addr,
                    &options,
                    crate::protocol::CLIENT_PROTOCOLS,
                    Arc::new(connections::ClientUser),
                ),
                options,
            }),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The options the channel was made with.
    pub fn options(&self) -> &ChannelOptions {
        &self.inner.options
    }

    /// Calls `service.method` with a protobuf request and waits for the
    /// response. The outcome is also recorded in `cntl`.
    pub fn call<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let payload = self.call_raw(service, method, cntl, codec::encode(request))?;
        codec::decode_response(&payload).inspect_err(|e| cntl.error = Some(e.clone()))
    }

    /// Calls with a serialized request and returns the serialized response
    /// payload (decompressed). The response attachment, error and latency
    /// are in `cntl`.
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let start = Instant::now();
        reset_outcome(cntl);
        let r = self
            .plan(service, method, cntl, request, start)
            .and_then(|plan| self.run_attempts(plan, cntl, start));
        record_outcome(cntl, start, &r);
        r
    }

    /// What every attempt of a call sends and obeys.
    fn plan(
        &self,
        service: &str,
        method: &str,
        cntl: &Controller,
        request: IOBuf,
        start: Instant,
    ) -> Result<CallPlan, RpcError> {
        let opts = &self.inner.options;
        let deadline = cntl.timeout.or(opts.timeout).map(|t| start + t);
        let delivered = deadline.filter(|_| opts.deliver_timeout);
        let (meta, payload) = request_frame_parts(service, method, cntl, request, delivered)?;
        Ok(CallPlan {
            meta,
            payload,
            deadline,
            max_retry: cntl.max_retry.unwrap_or(opts.max_retry),
            backup: cntl.backup_request.or(opts.backup_request),
        })
    }

    /// Attempts until a response, a final error, or the retries or the
    /// deadline run out.
    fn run_attempts(
        &self,
        mut plan: CallPlan,
        cntl: &mut Controller,
        start: Instant,
    ) -> Result<IOBuf, RpcError> {
        loop {
            let (deadline, backup) = (plan.deadline, plan.backup);
            match self.attempt(&mut plan.meta, &plan.payload, cntl, start, deadline, backup) {
                Ok(frame) => return response::finish(frame, cntl),
                Err(e) if plan.may_retry(&e, cntl) => cntl.retried += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// One try: a connection, the request written, the response awaited
    /// (plus a backup request if configured).
    fn attempt(
        &self,
        meta: &mut RpcMeta,
        payload: &IOBuf,
        cntl: &mut Controller,
        start: Instant,
        deadline: Option<Instant>,
        backup: Option<Duration>,
    ) -> Result<baidu_std::Frame, RpcError> {
        let conns = &self.inner.conns;
        let sock = conns.get(deadline)?;
        cntl.remote_side = Some(sock.remote_side());
        cntl.local_side = Some(sock.local_side());
        let call = PendingCall::new();
        let corr = send(&sock, meta, payload, cntl, &call)?;
        let backup_at = backup
            .map(|b| start + b)
            .filter(|&b| deadline.is_none_or(|d| b < d));
        let mut completed = call.wait(backup_at.or(deadline));
        let mut second = None;
        if !completed && backup_at.is_some() {
            // A backup request; on a single connection it shares the socket.
            if let Ok(s2) = conns.get(deadline) {
                if let Ok(c2) = send(&s2, meta, payload, cntl, &call) {
                    cntl.has_backup_request = true;
                    second = Some((s2, c2));
                }
            }
            completed = call.wait(deadline);
        }
        // A late response finds nothing and is dropped.
        sock.take_pending(corr);
        if let Some((s2, c2)) = &second {
            s2.take_pending(*c2);
        }
        let outcome = call.take();
        conns.put_back(sock, completed);
        if let Some((s2, _)) = second {
            conns.put_back(s2, completed);
        }
        match outcome {
            Some(Ok(InputMessage::BaiduStd(frame))) => Ok(frame),
            Some(Ok(_)) => Err(RpcError::new(
                errno::ERESPONSE,
                "a response of another protocol",
            )),
            Some(Err(e)) => Err(e),
            None => Err(timeout_error(self.inner.addr, start, deadline)),
        }
    }
}

/// Registers `call` on `sock` under a fresh correlation id and writes the
/// request. Returns the correlation id.
fn send(
    sock: &Arc<Socket>,
    meta: &mut RpcMeta,
    payload: &IOBuf,
    cntl: &Controller,
    call: &Arc<PendingCall>,
) -> Result<i64, RpcError> {
    let corr = next_correlation_id();
    let frame = encode_frame(corr, meta, payload, cntl)?;
    post(sock, corr, frame, call).map(|()| corr)
}

/// The request frame under correlation id `corr`.
fn encode_frame(
    corr: i64,
    meta: &mut RpcMeta,
    payload: &IOBuf,
    cntl: &Controller,
) -> Result<IOBuf, RpcError> {
    meta.correlation_id = Some(corr);
    let mut frame = IOBuf::new();
    baidu_std::encode(meta, payload, &cntl.request_attachment, &mut frame)
        .map_err(|e| RpcError::new(errno::EREQUEST, e.to_string()))?;
    Ok(frame)
}

/// Registers `call` on `sock` under `corr` and writes its frame.
fn post(
    sock: &Arc<Socket>,
    corr: i64,
    frame: IOBuf,
    call: &Arc<PendingCall>,
) -> Result<(), RpcError> {
    if !sock.add_pending(corr, call.clone()) {
        return Err(sock.failed_error());
    }
    if let Err(e) = sock.write(frame) {
        sock.take_pending(corr);
        return Err(e);
    }
    Ok(())
}

/// A call's request and the rules its attempts follow.
struct CallPlan {
    meta: RpcMeta,
    payload: IOBuf,
    deadline: Option<Instant>,
    max_retry: u32,
    backup: Option<Duration>,
}

impl CallPlan {
    /// Whether a failed attempt is sent again.
    fn may_retry(&self, e: &RpcError, cntl: &Controller) -> bool {
        retryable(e)
            && cntl.retried < self.max_retry
            && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// The error of a call to `addr` that reached its deadline.
fn timeout_error(addr: SocketAddr, start: Instant, deadline: Option<Instant>) -> RpcError {
    RpcError::new(
        errno::ERPCTIMEDOUT,
        format!(
            "reached timeout={}ms @{addr}",
            deadline.map_or(0, |d| d.duration_since(start).as_millis()),
        ),
    )
}

/// Clears what a previous call left in `cntl`.
fn reset_outcome(cntl: &mut Controller) {
    cntl.error = None;
    cntl.retried = 0;
    cntl.has_backup_request = false;
    cntl.response_attachment.clear();
}

/// Records a finished call's latency and error in `cntl`.
fn record_outcome<T>(cntl: &mut Controller, start: Instant, r: &Result<T, RpcError>) {
    cntl.latency = start.elapsed();
    if let Err(e) = r {
        cntl.error = Some(e.clone());
    }
}

/// The request meta (without correlation id) and the compressed payload;
/// `deadline`, if given, goes into the meta as `timeout_ms`.
fn request_frame_parts(
    service: &str,
    method: &str,
    cntl: &Controller,
    request: IOBuf,
    deadline: Option<Instant>,
) -> Result<(RpcMeta, IOBuf), RpcError> {
    let ct = cntl.compress_type().as_i32();
    let payload = if ct == 0 {
        request
    } else {
        compress::compress(ct, &request)
            .map_err(|e| RpcError::new(errno::EREQUEST, format!("cannot compress: {e}")))?
    };
    let att = cntl.request_attachment.len();
    let att = i32::try_from(att)
        .map_err(|_| RpcError::new(errno::EREQUEST, format!("attachment of {att} bytes")))?;
    // Presence as bRPC writes it, so our frames match its byte for byte.
    let mut meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: service.to_owned(),
            method_name: method.to_owned(),
            log_id: Some(cntl.log_id as i64),
            timeout_ms: deadline.map(|d| {
                let ms = d.saturating_duration_since(Instant::now()).as_millis();
                ms.min(i32::MAX as u128) as i32
            }),
            ..Default::default()
        }),
        compress_type: Some(ct),
        attachment_size: (att > 0).then_some(att),
        content_type: Some(0),
        checksum_type: Some(0),
        checksum_value: Some(Vec::new()),
        ..Default::default()
    };
    if cntl.checksum {
        checksum::fill_crc32c(&mut meta, &payload, &cntl.request_attachment);
    }
    Ok((meta, payload))
}

/// Failures worth sending again: the connection broke or could not be
/// made. Timeouts and server answers are final.
pub(crate) fn retryable(e: &RpcError) -> bool {
    matches!(
        e.code,
        errno::EFAILEDSOCKET
            | errno::EEOF
            | errno::ELOGOFF
            | libc::ECONNREFUSED
            | libc::ECONNRESET
            | libc::ECONNABORTED
            | libc::EPIPE
            | libc::ENETUNREACH
            | libc::EHOSTUNREACH
    )
}
