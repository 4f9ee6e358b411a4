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
//! backup delay. A failure the [`RetryPolicy`] wants sent
//! again starts another attempt, on a replica the call has not tried
//! yet when there is one, while `max_retry`, the deadline and the
//! channel's [`RetryBudget`] allow.
//!
//! # Deadlines
//!
//! A call's deadline is its own timeout (the controller's, else the
//! channel's), capped by the deadline of the request the calling fiber
//! serves ([`crate::call_context`]). A call that inherits less than
//! `min_inherited_budget` fails at once, unsent.
//!
//! [`RetryBudget`]: super::RetryBudget
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
//! [`retryable`] (see `retry.rs`), which [`DefaultRetryPolicy`] applies;
//! a user's [`RetryPolicy`] replaces it. A backup request is a second
//! copy sent on purpose, to a replica other than the first attempt's;
//! the user asks for it.
//!
//! The result goes through the protocol's
//! `process_response`, and the outcome (latency, error, retries) into the
//! controller. Synchronous, callback and `Future` forms share all of it
//! (the asynchronous ones are in `async_call.rs`).

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::attempts::{AttemptStatus, CallAttempt};
use super::call::PendingCall;
use super::cancel;
use super::connections::{Conn, Connections};
use super::intercept;
#[cfg(doc)]
use super::retry::retryable;
use super::retry::{connection_failure, RequestSent, NOT_RETRIED};
use super::retry_budget::RetryTokens;
use super::retry_policy::{DefaultRetryPolicy, FailedAttempt, RetryPolicy};
use super::selector::{AttemptOutcome, SelectInput, ServerSelector, SingleServer};
use super::tried::TriedServers;
use super::ChannelOptions;
use crate::protocol::ClientProtocol;
use crate::socket::QueuedWrite;
use crate::{errno, Controller, RpcError};

/// How many servers' connections an engine finds without a lock (see
/// `Inner::recent`).
const LOCK_FREE_SERVERS: usize = 8;

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
    /// The first [`LOCK_FREE_SERVERS`] servers', also found here without
    /// the lock and the hash, in the order they were made: a channel to
    /// one server (most are) or to a few replicas takes no shared lock
    /// per call, which the callers of every worker would take in turn,
    /// and hashes no address.
    recent: [OnceLock<(SocketAddr, Arc<Connections<P>>)>; LOCK_FREE_SERVERS],
    /// The retry budget's bucket, if the options set one.
    retry_tokens: Option<RetryTokens>,
    /// Callers woken by a response on any connection of the engine that
    /// have not run yet, when the selector spreads calls over several
    /// servers: a writer of each server waits for them
    /// ([`Socket::woken_callers`](crate::socket::Socket)).
    woken_callers: Option<Arc<AtomicUsize>>,
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
    /// Servers the call's attempts went to: the next one avoids them.
    tried: TriedServers,
    /// The server of the attempt that ended last (`None`: none was
    /// chosen), and whether it was the backup request.
    last: (Option<SocketAddr>, bool),
    /// The server and latency of the last attempt that got a response,
    /// for the selector's [`answered`](ServerSelector::answered).
    pub(super) responded: Option<(SocketAddr, Duration)>,
    /// The server the selector already chose for the next attempt (an
    /// asynchronous call that found no idle connection there hands its
    /// pick to the fiber that carries it on): used instead of asking
    /// again, so a balancer sees one pick per attempt.
    pub(super) chosen: Option<SocketAddr>,
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
    /// is available, and remembers it as the attempt's server.
    pub(super) fn tried(&mut self, server: SocketAddr) {
        self.tried.add(server);
        self.last = (Some(server), false);
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
                retry_tokens: options.retry_budget.as_ref().map(RetryTokens::new),
                woken_callers: (!selector.single_server()).then(Arc::default),
                options,
                selector,
                servers: RwLock::default(),
                recent: Default::default(),
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
        let r = match self.plan(cntl, request, start) {
            Ok(plan) => self.run_attempts(plan, cntl, start),
            Err(e) => Err(e),
        };
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
    /// timeout, else the channel's, capped by the inherited one.
    pub(crate) fn deadline(&self, cntl: &Controller, start: Instant) -> Option<Instant> {
        self.deadline_inherited(cntl, start).0
    }

    /// [`deadline`](Self::deadline), and whether it is the inherited
    /// one ([`crate::call_context`]).
    fn deadline_inherited(&self, cntl: &Controller, start: Instant) -> (Option<Instant>, bool) {
        let opts = &self.inner.options;
        let own = cntl.timeout.or(opts.timeout).map(|t| start + t);
        if !opts.inherit_deadline {
            return (own, false);
        }
        match crate::call_context::inherited_deadline() {
            Some(d) if own.is_none_or(|o| d < o) => (Some(d), true),
            _ => (own, false),
        }
    }

    /// The call's plan; an error if it inherits too little time to be
    /// sent at all.
    pub(super) fn plan(
        &self,
        cntl: &Controller,
        request: P::Request,
        start: Instant,
    ) -> Result<CallPlan<P::Request>, RpcError> {
        let opts = &self.inner.options;
        let (deadline, inherited) = self.deadline_inherited(cntl, start);
        if let (Some(d), true) = (deadline, inherited) {
            let left = d.saturating_duration_since(start);
            let min = opts.min_inherited_budget.max(Duration::from_millis(1));
            if left < min {
                return Err(RpcError::new(
                    errno::ERPCTIMEDOUT,
                    format!(
                        "not sent: {}us left of the deadline inherited from the request \
                         being served (min_inherited_budget={}us)",
                        left.as_micros(),
                        min.as_micros()
                    ),
                )
                .into_local());
            }
        }
        if let Some(tokens) = &self.inner.retry_tokens {
            tokens.deposit();
        }
        let idempotent = cntl
            .idempotent
            .or(opts.idempotent)
            .or_else(|| self.inner.protocol.idempotent(&request))
            .unwrap_or(false);
        // A call that opens streams is sent once (as bRPC's): its
        // streams are bound to the connection it goes out on.
        let once = cntl.streams.opens_streams();
        Ok(CallPlan {
            request,
            deadline,
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
            tried: TriedServers::default(),
            last: (None, false),
            responded: None,
            chosen: None,
        })
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
            if cancel::cancelled(cntl) {
                return Err(cancel::cancelled_error());
            }
            // Refused by an interceptor: final (its hooks heard it).
            let attempt = self.attempt(&mut plan, cntl, start)?;
            let (e, sent) = match attempt {
                Ok(msg) => match self.processed(&plan, msg, cntl) {
                    Ok(r) => {
                        cntl.answered_by_backup = plan.last.1;
                        return Ok(r);
                    }
                    // The server answered: it had the request.
                    Err(e) => (e, RequestSent::Maybe),
                },
                Err((e, sent)) => (e.into_local(), sent),
            };
            if let Some(e) = self.failed_attempt(&plan, cntl, e, sent) {
                return Err(e);
            }
        }
    }

    /// Books a failed attempt's error `e` (this side's, marked
    /// [local](RpcError::is_local), or the server's answer) in `cntl`
    /// and asks the retry policy: `None` if the call goes on with
    /// another attempt (after the policy's backoff), else the call's
    /// error. For this side's errors its text lists the earlier
    /// attempts' errors; it says why the call was not retried when it
    /// had room (idempotency, the retry budget, the backoff).
    pub(super) fn failed_attempt(
        &self,
        plan: &CallPlan<P::Request>,
        cntl: &mut Controller,
        mut e: RpcError,
        sent: RequestSent,
    ) -> Option<RpcError> {
        let (server, backup) = plan.last;
        cntl.unanswered.push(CallAttempt {
            server,
            backup,
            status: AttemptStatus::Failed(e.clone()),
        });
        // Cancelled: final, whatever the policy says.
        if cancel::is_cancelled(&e) {
            return Some(e);
        }
        let local = e.is_local();
        if local {
            cntl.attempt_errors.push(e.clone());
        }
        let room = plan.can_try_again(cntl);
        let custom = cntl
            .retry_policy
            .clone()
            .or_else(|| self.inner.options.retry_policy.clone());
        let policy: &dyn RetryPolicy = custom.as_deref().unwrap_or(&DefaultRetryPolicy);
        let attempt = FailedAttempt::new(&e, cntl.retried + 1, sent, plan.idempotent, server);
        let why_not = if !room {
            None
        } else if !policy.do_retry(&attempt) {
            (custom.is_none() && connection_failure(&e)).then_some(NOT_RETRIED)
        } else if !self.retry_token() {
            Some(
                "not retried: the channel's retry budget is spent \
                 (ChannelOptions::retry_budget)",
            )
        } else {
            let wait = policy.backoff(&attempt);
            if wait.is_zero() {
                return retrying(cntl, e, local);
            }
            if plan.deadline.is_some_and(|d| Instant::now() + wait >= d) {
                Some("not retried: the retry policy's backoff would pass the deadline")
            } else {
                // Interrupted: retry at once.
                let _ = fibrpc_fiber::sleep(wait);
                return retrying(cntl, e, local);
            }
        };
        if let Some(why) = why_not {
            e.text.push_str("; ");
            e.text.push_str(why);
        }
        Some(if local {
            with_history(e, &cntl.attempt_errors)
        } else {
            e
        })
    }

    /// Takes a token of the retry budget; true if there is none to take.
    fn retry_token(&self) -> bool {
        self.inner
            .retry_tokens
            .as_ref()
            .is_none_or(RetryTokens::withdraw)
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
            excluded: plan.tried.as_slice(),
            request_code: cntl.request_code,
        })
    }

    /// The server the selector chooses for `input`, and its connections.
    fn connections_for(
        &self,
        input: &SelectInput<'_>,
    ) -> Result<(SocketAddr, Arc<Connections<P>>), RpcError> {
        let addr = self.inner.selector.select(input)?;
        Ok((addr, self.connections_of(addr)))
    }

    /// The connections to `addr`, made on first use.
    fn connections_of(&self, addr: SocketAddr) -> Arc<Connections<P>> {
        // Filled in order: the first empty slot ends the search.
        for slot in &self.inner.recent {
            match slot.get() {
                Some((a, c)) if *a == addr => return c.clone(),
                Some(_) => {}
                None => break,
            }
        }
        if let Some(c) = self
            .inner
            .servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
        {
            return c.clone();
        }
        let mut servers = self
            .inner
            .servers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(c) = servers.get(&addr) {
            return c.clone();
        }
        let c = Arc::new(Connections::new(
            addr,
            &self.inner.options,
            self.inner.protocol.clone(),
            self.inner.woken_callers.clone(),
        ));
        servers.insert(addr, c.clone());
        // Under the write lock: each server made takes the next free
        // slot, once.
        if let Some(slot) = self.inner.recent.iter().find(|s| s.get().is_none()) {
            let _ = slot.set((addr, c.clone()));
        }
        c
    }

    /// Tells the selector how an attempt went; returns the attempt's
    /// latency.
    pub(super) fn feedback(
        &self,
        server: SocketAddr,
        error: Option<&RpcError>,
        sent: Instant,
    ) -> Duration {
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
        latency
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
        plan.last = (None, false);
        plan.responded = None;
        let picked = match plan.chosen.take() {
            Some(addr) => Ok((addr, self.connections_of(addr))),
            None => self.select(plan, cntl),
        };
        let (addr, pool) = match picked {
            Ok(s) => s,
            Err(e) => return Ok(Err((e, RequestSent::No))),
        };
        plan.tried(addr);
        if !self.inner.options.interceptors.is_empty() {
            if let Err(e) = self.before_hooks(plan, addr, cntl) {
                cntl.unanswered.push(CallAttempt {
                    server: Some(addr),
                    backup: false,
                    status: AttemptStatus::Failed(e.clone()),
                });
                return Err(e);
            }
        }
        let r = self.attempt_on(&pool, addr, plan, cntl, start);
        if let Err((e, _)) = &r {
            if !self.inner.options.interceptors.is_empty() {
                self.after_hooks(plan, cntl, Err(e));
            }
        }
        Ok(r)
    }

    /// A backup request for `call` to a replica the call has not tried
    /// yet (the same server if there is no other): its server, pool,
    /// connection and correlation id, or `None` if it could not be sent
    /// (the first attempt then goes on alone).
    #[allow(clippy::type_complexity)]
    fn send_backup(
        &self,
        plan: &mut CallPlan<P::Request>,
        cntl: &mut Controller,
        call: &Arc<PendingCall<P::Message>>,
    ) -> Option<(SocketAddr, Arc<Connections<P>>, Conn<P>, u64)> {
        let (addr, pool) = self.select(plan, cntl).ok()?;
        let sent = Instant::now();
        let conn = match pool.get(plan.deadline) {
            Ok(c) => c,
            Err(e) => {
                self.feedback(addr, Some(&e), sent);
                return None;
            }
        };
        match self.send(&conn, &mut plan.request, cntl, call, plan.deadline) {
            Ok(id) => {
                plan.tried.add(addr);
                Some((addr, pool, conn, id))
            }
            Err(e) => {
                pool.put_back(conn, true);
                self.feedback(addr, Some(&e), sent);
                None
            }
        }
    }

    /// The attempt on `addr` (through `pool`), with its backup request
    /// if the call has one; tells the selector how each went.
    fn attempt_on(
        &self,
        pool: &Arc<Connections<P>>,
        addr: SocketAddr,
        plan: &mut CallPlan<P::Request>,
        cntl: &mut Controller,
        start: Instant,
    ) -> Result<P::Message, AttemptError> {
        let deadline = plan.deadline;
        let sent = Instant::now();
        let conn = match pool.get(deadline) {
            Ok(c) => c,
            Err(e) => {
                self.feedback(addr, Some(&e), sent);
                return Err((e, RequestSent::No));
            }
        };
        cntl.remote_side = Some(conn.sock.remote_side());
        cntl.local_side = Some(conn.sock.local_side());
        let call = PendingCall::new(sent, deadline);
        // Nothing of the request was queued if this fails.
        let id = match self.send(&conn, &mut plan.request, cntl, &call, deadline) {
            Ok(id) => id,
            Err(e) => {
                pool.put_back(conn, true);
                self.feedback(addr, Some(&e), sent);
                return Err((e, RequestSent::No));
            }
        };
        cancel::watch(cntl, Arc::downgrade(&call) as _);
        let backup_at = plan
            .backup
            .map(|b| start + b)
            .filter(|&b| deadline.is_none_or(|d| b < d));
        let mut completed = call.wait(backup_at.or(deadline));
        let mut second = None;
        if !completed && backup_at.is_some() {
            second = self.send_backup(plan, cntl, &call);
            cntl.has_backup_request = second.is_some();
            completed = call.wait(deadline);
        }
        // A late response finds nothing and is dropped. The answer came
        // on the connection whose entry is gone (both gone: both
        // answered, or the first failed; the first is named).
        let first_pending = conn.input.give_up(&conn.sock, id).is_some();
        let backup_answered = match &second {
            Some((_, _, c2, id2)) => c2.input.give_up(&c2.sock, *id2).is_none() && first_pending,
            None => false,
        };
        let outcome = call.take();
        if let Some(Ok(m)) = &outcome {
            self.note_response(cntl, m);
        }
        let error = match &outcome {
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(e.clone()),
            None => Some(timeout_error(addr, start, deadline)),
        };
        let reusable = match &outcome {
            Some(Ok(m)) => self.inner.protocol.reusable_after(m),
            _ => true,
        };
        // A cancelled attempt's response may still come, as after a
        // timeout: its connection carries no other call.
        let clean =
            completed && reusable && !matches!(&outcome, Some(Err(e)) if cancel::is_cancelled(e));
        let Some((addr2, pool2, c2, _)) = second else {
            if !reusable {
                pool.retire(&conn);
            }
            pool.put_back(conn, clean);
            let latency = self.feedback(addr, error.as_ref(), sent);
            if error.is_none() {
                plan.responded = Some((addr, latency));
            }
            return attempt_result(outcome, &call, addr, start, deadline);
        };
        // The loser's response may still come: its connection carries
        // no other call.
        let ((win_addr, win_pool, win), (lose_addr, lose_pool, lose)) = if backup_answered {
            ((addr2, &pool2, c2), (addr, pool, conn))
        } else {
            ((addr, pool, conn), (addr2, &pool2, c2))
        };
        if !reusable {
            win_pool.retire(&win);
        }
        win_pool.put_back(win, clean);
        lose_pool.put_back(lose, false);
        let latency = self.feedback(win_addr, error.as_ref(), sent);
        if error.is_none() {
            plan.responded = Some((win_addr, latency));
        }
        self.feedback(lose_addr, None, sent);
        if completed {
            cntl.unanswered.push(CallAttempt {
                server: Some(lose_addr),
                backup: !backup_answered,
                status: AttemptStatus::Superseded,
            });
        }
        if backup_answered {
            cntl.remote_side = Some(addr2);
            plan.last = (Some(addr2), true);
        }
        attempt_result(outcome, &call, addr, start, deadline)
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
            let queued = post_in_order(conn, id, wire, call, order.is_some())?;
            drop(order);
            drop(queued);
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
        let queued = post_in_order(conn, id, wire, call, order.is_some())?;
        drop(order);
        drop(queued);
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

/// Registers `call` on `conn` under `id` and queues its packed request;
/// `call` hears whether the kernel took any of it. The request is
/// written when the returned [`QueuedWrite`] is dropped. An error means
/// nothing of it was queued.
pub(super) fn post<'a, P: ClientProtocol>(
    conn: &'a Conn<P>,
    id: u64,
    wire: IOBuf,
    call: &Arc<PendingCall<P::Message>>,
) -> Result<QueuedWrite<'a>, RpcError> {
    let protocol = conn.input.protocol();
    if !conn.input.add(&conn.sock, id, call.clone()) {
        protocol.request_queued(id, &conn.sock, false);
        return Err(conn.sock.failed_error());
    }
    let queued = match conn.sock.queue_watched(wire, call.clone()) {
        Ok(q) => q,
        Err(e) => {
            conn.input.take(id);
            protocol.request_queued(id, &conn.sock, false);
            return Err(e);
        }
    };
    if let Some(answer) = protocol.request_queued(id, &conn.sock, true) {
        // Refused while it was packed: its call hears it now, not at
        // its deadline.
        if let Some(call) = conn.input.take(id) {
            call.complete(Ok(answer));
        }
    }
    Ok(queued)
}

/// [`post`], and when the protocol matches responses by order
/// (`ordered`, the order lock held since packing), a request that could
/// not be queued fails the connection: the protocol recorded it, and
/// the responses after it would answer the wrong calls.
///
/// The caller drops the order lock before the [`QueuedWrite`]: the
/// write list keeps the order the requests were queued in, so the lock
/// need not cover the `writev`. Held over it, the lock made the
/// connection's other callers suspend on it for the length of a system
/// call and be woken one by one after it, each wake of a caller on
/// another worker a futex or eventfd round trip. (Redis, 16 callers on
/// one connection, with the write-behind fiber's wait for the batch's
/// writers in `socket/write.rs`: client CPU per call 9-12 µs → 5-7 µs,
/// system calls per call 1.5 → 0.7.)
pub(super) fn post_in_order<'a, P: ClientProtocol>(
    conn: &'a Conn<P>,
    id: u64,
    wire: IOBuf,
    call: &Arc<PendingCall<P::Message>>,
    ordered: bool,
) -> Result<QueuedWrite<'a>, RpcError> {
    let r = post(conn, id, wire, call);
    let ordered = ordered && conn.input.protocol().responses_in_request_order();
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

/// Counts a retry of an attempt that failed with `e` (an answered
/// error joins the attempts' errors here; this side's already did).
fn retrying(cntl: &mut Controller, e: RpcError, local: bool) -> Option<RpcError> {
    if !local {
        cntl.attempt_errors.push(e);
    }
    cntl.retried += 1;
    None
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
    cntl.unanswered.clear();
    cntl.answered = false;
    cntl.answered_by_backup = false;
    cntl.has_backup_request = false;
    cntl.response_attachment.clear();
    cntl.subs.clear();
}

/// Records a finished call's latency and error in `cntl` (and finishes
/// its rpcz span, if traced). A failed call fails the streams it was to
/// open.
pub(crate) fn record_outcome<T>(cntl: &mut Controller, start: Instant, r: &Result<T, RpcError>) {
    cntl.latency = start.elapsed();
    match r {
        Ok(_) => cntl.answered = true,
        Err(e) => {
            cntl.error = Some(e.clone());
            let _ = cntl.streams.call_ended(Err(e));
        }
    }
    crate::rpcz::client_done(cntl, r.as_ref().map_or_else(|e| e.code, |_| 0));
}

/// An attempt's result from its call's outcome (`None`: the deadline
/// came first).
fn attempt_result<M>(
    outcome: Option<Result<M, RpcError>>,
    call: &PendingCall<M>,
    addr: SocketAddr,
    start: Instant,
    deadline: Option<Instant>,
) -> Result<M, AttemptError> {
    match outcome {
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err((e, call.request_sent())),
        // Final whatever was sent (the retry rule never retries it).
        None => Err((timeout_error(addr, start, deadline), RequestSent::Maybe)),
    }
}
