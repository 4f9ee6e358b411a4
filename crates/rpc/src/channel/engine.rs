//! [`CallEngine`]: the one call engine under every client front
//! ([`Channel`](super::Channel) for baidu_std,
//! [`HttpChannel`](crate::http::HttpChannel), and any
//! [`ClientProtocol`]).
//!
//! A call is a plan (the packed-once request, the deadline, the retry
//! budget, the backup delay) run as attempts. Each attempt asks the
//! [`ServerSelector`] for a server (the seam where the cluster layer plugs
//! in), takes a connection to it (single, pooled or short), registers the
//! call under a fresh correlation id, writes the request and waits for the
//! response, a failure or the deadline — with a backup request after the
//! backup delay. A failure that allows the request to be sent again
//! ([`retryable`]) starts another attempt while the budget and the
//! deadline allow.
//!
//! # Retries
//!
//! Like bRPC, a call is retried (up to `max_retry` times) when this
//! side's connection broke or could not be made; timeouts and errors the
//! server answered with are final. Unlike a plain bRPC channel, a request
//! that may have reached the server is retried only if the call is
//! idempotent, since the server may have executed it: the engine knows,
//! per attempt, whether the kernel took any byte of the request (the
//! socket's writer reports it to the [`PendingCall`]). So a refused or
//! failed connect, a full write queue, or a request still queued behind
//! others when the connection failed is retried for every call, and a
//! connection reset after the request went out is retried only for calls
//! marked idempotent ([`Controller::set_idempotent`],
//! [`ChannelOptions::idempotent`], or the protocol's view of the request:
//! HTTP's safe methods, `PUT` and `DELETE`). The rule is one function,
//! [`retryable`] (see `retry.rs`). A backup request is a second copy sent
//! on purpose; the user asks for it.
//!
//! The result goes through the protocol's
//! `process_response`, and the outcome (latency, error, retries) into the
//! controller. Synchronous, callback and `Future` forms share all of it
//! (the asynchronous ones are in `async_call.rs`).

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::call::PendingCall;
use super::connections::{Conn, Connections};
use super::intercept;
use super::retry::{connection_failure, refused_unrun, retryable, RequestSent, NOT_RETRIED};
use super::selector::{AttemptOutcome, SelectInput, ServerSelector, SingleServer};
use super::ChannelOptions;
use crate::protocol::ClientProtocol;
use crate::{errno, Controller, RpcError};

/// The call engine for protocol `P`. Cheap to clone (clones share the
/// connections); connections close when the last clone is dropped.
pub struct CallEngine<P: ClientProtocol> {
    pub(super) inner: Arc<Inner<P>>,
}

pub(super) struct Inner<P: ClientProtocol> {
    pub protocol: Arc<P>,
    pub options: ChannelOptions,
    selector: Arc<dyn ServerSelector>,
    /// The connections to each server the selector chose so far.
    servers: RwLock<HashMap<SocketAddr, Arc<Connections<P>>>>,
}

impl<P: ClientProtocol> Clone for CallEngine<P> {
    fn clone(&self) -> Self {
        CallEngine {
            inner: self.inner.clone(),
        }
    }
}

impl<P: ClientProtocol> std::fmt::Debug for CallEngine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEngine")
            .field("protocol", &self.inner.protocol.name())
            .field("connection_type", &self.inner.options.connection_type)
            .finish()
    }
}

/// Correlation ids are unique per process, so a late response can never
/// match a newer call on the same connection.
pub(super) fn next_correlation_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A call's request and the rules its attempts follow.
pub(super) struct CallPlan<R> {
    pub request: R,
    pub deadline: Option<Instant>,
    max_retry: u32,
    /// Whether running the request twice is harmless: then a request that
    /// may have reached the server can be sent again.
    idempotent: bool,
    pub backup: Option<Duration>,
    /// Servers of failed attempts.
    excluded: Vec<SocketAddr>,
    /// The server and latency of the last attempt that got a response,
    /// for the selector's [`answered`](ServerSelector::answered).
    responded: Option<(SocketAddr, Duration)>,
}

/// A failed attempt: its error, and whether its request may have reached
/// the server.
pub(super) type AttemptError = (RpcError, RequestSent);

impl<R> CallPlan<R> {
    /// Whether the retry budget and the deadline allow another attempt.
    pub(super) fn can_try_again(&self, cntl: &Controller) -> bool {
        cntl.retried < self.max_retry && self.deadline.is_none_or(|d| Instant::now() < d)
    }

    /// Makes the call's later attempts avoid `server` when another one
    /// is available.
    pub(super) fn exclude(&mut self, server: SocketAddr) {
        if !self.excluded.contains(&server) {
            self.excluded.push(server);
        }
    }
}

impl<P: ClientProtocol> CallEngine<P> {
    /// An engine calling the one server at `addr` (resolved now;
    /// connected at the first call).
    pub fn new(
        protocol: P,
        addr: impl ToSocketAddrs,
        options: ChannelOptions,
    ) -> Result<CallEngine<P>, RpcError> {
        let addr = addr
            .to_socket_addrs()
            .map_err(RpcError::from)?
            .next()
            .ok_or_else(|| RpcError::new(libc::EINVAL, "the address resolves to nothing"))?;
        Ok(Self::with_selector(
            protocol,
            Arc::new(SingleServer(addr)),
            options,
        ))
    }

    /// An engine whose attempts go where `selector` says.
    pub fn with_selector(
        protocol: P,
        selector: Arc<dyn ServerSelector>,
        options: ChannelOptions,
    ) -> CallEngine<P> {
        CallEngine {
            inner: Arc::new(Inner {
                protocol: Arc::new(protocol),
                options,
                selector,
                servers: RwLock::default(),
            }),
        }
    }

    /// The options the engine was made with.
    pub fn options(&self) -> &ChannelOptions {
        &self.inner.options
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        &self.inner.protocol
    }

    /// Sends `request` and waits (the calling fiber suspends, a plain
    /// thread blocks) for the result. The outcome is also recorded in
    /// `cntl`: latency, error, retries, remote side.
    pub fn call(
        &self,
        cntl: &mut Controller,
        request: P::Request,
    ) -> Result<P::Response, RpcError> {
        let start = Instant::now();
        reset_outcome(cntl);
        self.trace(cntl, &request, start);
        let plan = self.plan(cntl, request, start);
        let r = self.run_attempts(plan, cntl, start);
        record_outcome(cntl, start, &r);
        r
    }

    /// rpcz: starts the call's span if rpcz is on (one relaxed load when
    /// off) and the call is sampled or made under a traced context.
    #[inline]
    pub(super) fn trace(&self, cntl: &mut Controller, request: &P::Request, start: Instant) {
        if crate::rpcz::enabled() {
            let p = &self.inner.protocol;
            crate::rpcz::client_start(cntl, p.name(), start, || {
                let (service, method) = p.call_name(request);
                (service.to_owned(), method.to_owned())
            });
        }
    }

    /// rpcz: an attempt's response arrived (`msg`), for a traced call.
    #[inline]
    pub(super) fn note_response(&self, cntl: &mut Controller, msg: &P::Message) {
        if cntl.span.is_some() {
            let size = self.inner.protocol.message_size(msg);
            crate::rpcz::client_received(cntl, size);
        }
    }

    /// The deadline of a call started at `start`: the controller's
    /// timeout, else the channel's.
    pub(crate) fn deadline(&self, cntl: &Controller, start: Instant) -> Option<Instant> {
        cntl.timeout
            .or(self.inner.options.timeout)
            .map(|t| start + t)
    }

    pub(super) fn plan(
        &self,
        cntl: &Controller,
        request: P::Request,
        start: Instant,
    ) -> CallPlan<P::Request> {
        let opts = &self.inner.options;
        let idempotent = cntl
            .idempotent
            .or(opts.idempotent)
            .or_else(|| self.inner.protocol.idempotent(&request))
            .unwrap_or(false);
        // A call that opens streams is sent once (as bRPC's): its
        // streams are bound to the connection it goes out on.
        let once = cntl.streams.opens_streams();
        CallPlan {
            request,
            deadline: self.deadline(cntl, start),
            max_retry: if once {
                0
            } else {
                cntl.max_retry.unwrap_or(opts.max_retry)
            },
            idempotent,
            backup: cntl
                .backup_request
                .or(opts.backup_request)
                .filter(|_| !once),
            excluded: Vec::new(),
            responded: None,
        }
    }

    /// Attempts until a response, a final error, or the retries or the
    /// deadline run out.
    pub(super) fn run_attempts(
        &self,
        mut plan: CallPlan<P::Request>,
        cntl: &mut Controller,
        start: Instant,
    ) -> Result<P::Response, RpcError> {
        loop {
            // Refused by an interceptor: final (its hooks heard it).
            let attempt = self.attempt(&mut plan, cntl, start)?;
            match attempt {
                Ok(msg) => match self.processed(&plan, msg, cntl) {
                    Err(e) if refused_unrun(&e) && plan.can_try_again(cntl) => {
                        // The server is stopping: the retry goes to
                        // another replica if the cluster has one.
                        if let Some(server) = cntl.remote_side {
                            plan.exclude(server);
                        }
                        cntl.attempt_errors.push(e);
                        cntl.retried += 1;
                    }
                    r => return r,
                },
                Err((e, sent)) => match failed_attempt(&plan, cntl, e, sent) {
                    Some(e) => return Err(e),
                    None => cntl.retried += 1,
                },
            }
        }
    }

    /// The result of an attempt's response, which the interceptors hear.
    pub(super) fn processed(
        &self,
        plan: &CallPlan<P::Request>,
        msg: P::Message,
        cntl: &mut Controller,
    ) -> Result<P::Response, RpcError> {
        let r = self.inner.protocol.process_response(msg, cntl);
        if let Some((server, latency)) = plan.responded {
            let error = r.as_ref().err();
            let outcome = AttemptOutcome::new(server, error, latency);
            self.inner.selector.answered(&outcome);
        }
        if !self.inner.options.interceptors.is_empty() {
            self.after_hooks(plan, cntl, r.as_ref().map(|_| ()));
        }
        r
    }

    /// The interceptors' `after` hooks for an attempt that went out (or
    /// failed on its way).
    pub(super) fn after_hooks(
        &self,
        plan: &CallPlan<P::Request>,
        cntl: &Controller,
        result: Result<(), &RpcError>,
    ) {
        let hooks = &self.inner.options.interceptors;
        intercept::after(&*self.inner.protocol, hooks, &plan.request, cntl, result);
    }

    /// The interceptors' `before` hooks for an attempt to `server`.
    pub(super) fn before_hooks(
        &self,
        plan: &CallPlan<P::Request>,
        server: SocketAddr,
        cntl: &mut Controller,
    ) -> Result<(), RpcError> {
        let hooks = &self.inner.options.interceptors;
        intercept::before(&*self.inner.protocol, hooks, &plan.request, server, cntl)
    }

    /// Connects now to the server the selector chooses for a call with no
    /// request code, and keeps the connection for the calls (single and
    /// pooled connections; short ones connect per call anyway). Fails if
    /// the server cannot be reached within the connect timeout.
    pub fn connect_now(&self) -> Result<(), RpcError> {
        let (_, pool) = self.connections_for(&SelectInput {
            excluded: &[],
            request_code: None,
        })?;
        if self.inner.options.connection_type == super::ConnectionType::Short {
            return Ok(());
        }
        let conn = pool.get(Some(Instant::now() + self.inner.options.connect_timeout))?;
        pool.put_back(conn, true);
        Ok(())
    }

    /// Chooses the server of the next attempt and its connections.
    pub(super) fn select(
        &self,
        plan: &CallPlan<P::Request>,
        cntl: &Controller,
    ) -> Result<(SocketAddr, Arc<Connections<P>>), RpcError> {
        self.connections_for(&SelectInput {
            excluded: &plan.excluded,
            request_code: cntl.request_code,
        })
    }

    /// The server the selector chooses for `input`, and its connections.
    fn connections_for(
        &self,
        input: &SelectInput<'_>,
    ) -> Result<(SocketAddr, Arc<Connections<P>>), RpcError> {
        let addr = self.inner.selector.select(input)?;
        if let Some(c) = self
            .inner
            .servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
        {
            return Ok((addr, c.clone()));
        }
        let mut servers = self
            .inner
            .servers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let c = servers.entry(addr).or_insert_with(|| {
            Arc::new(Connections::new(
                addr,
                &self.inner.options,
                self.inner.protocol.clone(),
            ))
        });
        Ok((addr, c.clone()))
    }

    /// Tells the selector how an attempt went, and remembers a failed
    /// server so that a retry avoids it.
    pub(super) fn feedback(
        &self,
        plan: &mut CallPlan<P::Request>,
        server: SocketAddr,
        error: Option<&RpcError>,
        sent: Instant,
    ) {
        // An attempt's error is this side's (the server's answers come
        // as responses): marked so, the selector can tell a broken
        // connection from a server's reply carrying the same code.
        let local = error.map(|e| e.clone().into_local());
        let latency = sent.elapsed();
        self.inner.selector.feedback(&AttemptOutcome {
            server,
            error: local.as_ref(),
            latency,
        });
        match error {
            Some(_) => plan.exclude(server),
            None => plan.responded = Some((server, latency)),
        }
    }

    /// One try: a connection, the request written, the response awaited
    /// (plus a backup request if configured). The outer error: an
    /// interceptor refused the attempt before anything happened (the
    /// server is not to blame, and the hooks heard it already).
    #[allow(clippy::type_complexity)]
    fn attempt(
        &self,
        plan: &mut CallPlan<P::Request>,
        cntl: &mut Controller,
        start: Instant,
    ) -> Result<Result<P::Message, AttemptError>, RpcError> {
        let (addr, pool) = match self.select(plan, cntl) {
            Ok(s) => s,
            Err(e) => return Ok(Err((e, RequestSent::No))),
        };
        if !self.inner.options.interceptors.is_empty() {
            self.before_hooks(plan, addr, cntl)?;
        }
        let sent = Instant::now();
        let r = self.attempt_on(&pool, addr, plan, cntl, start);
        self.feedback(plan, addr, r.as_ref().err().map(|(e, _)| e), sent);
        if let Err((e, _)) = &r {
            if !self.inner.options.interceptors.is_empty() {
                self.after_hooks(plan, cntl, Err(e));
            }
        }
        Ok(r)
    }

    fn attempt_on(
        &self,
        pool: &Connections<P>,
        addr: SocketAddr,
        plan: &mut CallPlan<P::Request>,
        cntl: &mut Controller,
        start: Instant,
    ) -> Result<P::Message, AttemptError> {
        let deadline = plan.deadline;
        let conn = pool.get(deadline).map_err(|e| (e, RequestSent::No))?;
        cntl.remote_side = Some(conn.sock.remote_side());
        cntl.local_side = Some(conn.sock.local_side());
        let call = PendingCall::new();
        // Nothing of the request was queued if this fails.
        let id = match self.send(&conn, &mut plan.request, cntl, &call, deadline) {
            Ok(id) => id,
            Err(e) => {
                pool.put_back(conn, true);
                return Err((e, RequestSent::No));
            }
        };
        let backup_at = plan
            .backup
            .map(|b| start + b)
            .filter(|&b| deadline.is_none_or(|d| b < d));
        let mut completed = call.wait(backup_at.or(deadline));
        let mut second = None;
        if !completed && backup_at.is_some() {
            // A backup request; on a single connection it shares the socket.
            if let Ok(c2) = pool.get(deadline) {
                if let Ok(id2) = self.send(&c2, &mut plan.request, cntl, &call, deadline) {
                    cntl.has_backup_request = true;
                    second = Some((c2, id2));
                }
            }
            completed = call.wait(deadline);
        }
        // A late response finds nothing and is dropped.
        conn.input.take(id);
        if let Some((c2, id2)) = &second {
            c2.input.take(*id2);
        }
        let outcome = call.take();
        let reusable = match &outcome {
            Some(Ok(m)) => self.inner.protocol.reusable_after(m),
            _ => true,
        };
        if !reusable {
            pool.retire(&conn);
        }
        pool.put_back(conn, completed && reusable);
        if let Some((c2, _)) = second {
            pool.put_back(c2, completed && reusable);
        }
        match outcome {
            Some(Ok(m)) => {
                self.note_response(cntl, &m);
                Ok(m)
            }
            Some(Err(e)) => Err((e, call.request_sent())),
            // Final whatever was sent (the retry rule never retries it).
            None => Err((timeout_error(addr, start, deadline), RequestSent::Maybe)),
        }
    }

    /// Registers `call` on `conn` under a fresh correlation id and writes
    /// the request — with the connection's credential if the channel has
    /// an authenticator and no request carried it yet (waiting, until
    /// `deadline`, while another call sends it). Returns the correlation
    /// id.
    pub(super) fn send(
        &self,
        conn: &Conn<P>,
        request: &mut P::Request,
        cntl: &mut Controller,
        call: &Arc<PendingCall<P::Message>>,
        deadline: Option<Instant>,
    ) -> Result<u64, RpcError> {
        let Some(auth) = &self.inner.options.auth else {
            // Held until the request is queued (protocols matching
            // responses by order).
            let order = conn.input.order_lock();
            let (id, wire) = self.pack(conn, request, cntl)?;
            post_in_order(conn, id, wire, call, order.is_some())?;
            drop(order);
            crate::rpcz::client_written(cntl);
            return Ok(id);
        };
        let protocol = &*self.inner.protocol;
        // Waits while another call sends the credential: before the order
        // lock, which that call needs.
        let turn = intercept::credential_turn(protocol, &**auth, conn, request, deadline)?;
        let order = conn.input.order_lock();
        let packed = self.pack(conn, request, cntl);
        if turn.is_some() {
            // Only this request carries it (retries included).
            protocol.set_credential(request, None)?;
        }
        let (id, wire) = packed?;
        post_in_order(conn, id, wire, call, order.is_some())?;
        drop(order);
        if let Some(turn) = turn {
            turn.sent();
        }
        crate::rpcz::client_written(cntl);
        Ok(id)
    }

    /// Packs `request` for `conn` under a fresh correlation id.
    pub(super) fn pack(
        &self,
        conn: &Conn<P>,
        request: &mut P::Request,
        cntl: &mut Controller,
    ) -> Result<(u64, IOBuf), RpcError> {
        let id = next_correlation_id();
        let wire = self
            .inner
            .protocol
            .pack_request(request, id, cntl, &conn.sock)?;
        crate::rpcz::client_packed(cntl, wire.len());
        Ok((id, wire))
    }
}

/// Registers `call` on `conn` under `id` and writes its packed request;
/// `call` hears whether the kernel took any of it. An error means
/// nothing of it was queued.
pub(super) fn post<P: ClientProtocol>(
    conn: &Conn<P>,
    id: u64,
    wire: IOBuf,
    call: &Arc<PendingCall<P::Message>>,
) -> Result<(), RpcError> {
    if !conn.input.add(&conn.sock, id, call.clone()) {
        return Err(conn.sock.failed_error());
    }
    if let Err(e) = conn.sock.write_watched(wire, call.clone()) {
        conn.input.take(id);
        return Err(e);
    }
    Ok(())
}

/// [`post`], and when the protocol matches responses by order
/// (`ordered`, the order lock held since packing), a request that could
/// not be queued fails the connection: the protocol recorded it, and
/// the responses after it would answer the wrong calls.
pub(super) fn post_in_order<P: ClientProtocol>(
    conn: &Conn<P>,
    id: u64,
    wire: IOBuf,
    call: &Arc<PendingCall<P::Message>>,
    ordered: bool,
) -> Result<(), RpcError> {
    let r = post(conn, id, wire, call);
    if let (Err(e), true) = (&r, ordered) {
        conn.sock.set_failed(RpcError::new(
            e.code,
            format!("a request recorded in order could not be queued: {e}"),
        ));
    }
    r
}

/// The error of a call to `addr` that reached its deadline.
pub(super) fn timeout_error(
    addr: SocketAddr,
    start: Instant,
    deadline: Option<Instant>,
) -> RpcError {
    RpcError::new(
        errno::ERPCTIMEDOUT,
        format!(
            "reached timeout={}ms @{addr}",
            deadline.map_or(0, |d| d.duration_since(start).as_millis()),
        ),
    )
}

/// Books a failed attempt's error `e` (this side's, so
/// [local](RpcError::is_local)) in `cntl`: `None` if the call goes on
/// with another attempt ([`retryable`], budget and deadline allowing),
/// else the call's error, whose text lists the earlier attempts' errors
/// and says so when only idempotency kept the call from a retry.
pub(super) fn failed_attempt<R>(
    plan: &CallPlan<R>,
    cntl: &mut Controller,
    e: RpcError,
    sent: RequestSent,
) -> Option<RpcError> {
    let mut e = e.into_local();
    cntl.attempt_errors.push(e.clone());
    let room = plan.can_try_again(cntl);
    if room && retryable(&e, sent, plan.idempotent) {
        return None;
    }
    if room && connection_failure(&e) {
        e.text.push_str("; ");
        e.text.push_str(NOT_RETRIED);
    }
    Some(with_history(e, &cntl.attempt_errors))
}

/// `last` (the last of `attempts`) with the earlier attempts' errors
/// appended to its text.
fn with_history(mut last: RpcError, attempts: &[RpcError]) -> RpcError {
    let earlier = &attempts[..attempts.len().saturating_sub(1)];
    if earlier.is_empty() {
        return last;
    }
    last.text.push_str("; earlier attempts:");
    for (i, e) in earlier.iter().enumerate() {
        use std::fmt::Write;
        let sep = if i == 0 { "" } else { ";" };
        let _ = write!(last.text, "{sep} #{} {e}", i + 1);
    }
    last
}

/// Clears what a previous call left in `cntl`.
pub(crate) fn reset_outcome(cntl: &mut Controller) {
    cntl.error = None;
    cntl.retried = 0;
    cntl.attempt_errors.clear();
    cntl.has_backup_request = false;
    cntl.response_attachment.clear();
}

/// Records a finished call's latency and error in `cntl` (and finishes
/// its rpcz span, if traced). A failed call fails the streams it was to
/// open.
pub(crate) fn record_outcome<T>(cntl: &mut Controller, start: Instant, r: &Result<T, RpcError>) {
    cntl.latency = start.elapsed();
    if let Err(e) = r {
        cntl.error = Some(e.clone());
        let _ = cntl.streams.call_ended(Err(e));
    }
    crate::rpcz::client_done(cntl, r.as_ref().map_or_else(|e| e.code, |_| 0));
}
