//! Asynchronous calls (bRPC's `CallMethod` with a `done` closure).
//!
//! When a connection is at hand (the channel's single connection, an idle
//! pooled one), an asynchronous call holds no fiber while it is in flight:
//! the request is written, a timer keeps the deadline, and the response,
//! the connection's failure or the timer completes the [`PendingCall`],
//! which starts the continuation in a new fiber. That fiber decodes the
//! response, retries a connection failure synchronously (it may block) and
//! runs the caller's callback. So ten thousand outstanding calls cost ten
//! thousand small records, not ten thousand fibers.
//!
//! Calls that would have to block before anything is sent — connecting
//! (short connections, a pool with no idle connection, a broken single
//! connection), or a backup request to schedule — are carried by a fiber
//! from the start, which runs the synchronous path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fibrpc_fiber::timer::{self, TimerId};
use fibrpc_iobuf::IOBuf;

use super::call::PendingCall;
use super::{encode_frame, next_correlation_id, post, record_outcome, reset_outcome};
use super::{response, timeout_error, CallPlan, Channel};
use crate::protocol::InputMessage;
use crate::socket::Socket;
use crate::{codec, errno, Controller, RpcError};

/// The caller's callback, on the serialized response.
type RawDone = Box<dyn FnOnce(Controller, Result<IOBuf, RpcError>) + Send>;

/// No timer armed (yet).
const NO_TIMER: u64 = u64::MAX;

impl Channel {
    /// Starts the call and returns at once; `done` runs in a fiber of its
    /// own with the controller and the outcome, so it may block.
    ///
    /// While the call is in flight no fiber is held for it (see the
    /// module docs for the cases that need one); timeouts, retries of
    /// connection failures and the controller's fields behave as for
    /// [`Channel::call`].
    pub fn call_async<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: &Req,
        done: impl FnOnce(Controller, Result<Resp, RpcError>) + Send + 'static,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        let done: RawDone = Box::new(move |mut cntl, r| {
            let r = r.and_then(|p| codec::decode_response(&p));
            if let Err(e) = &r {
                cntl.error = Some(e.clone());
            }
            done(cntl, r)
        });
        self.call_raw_async(service, method, cntl, codec::encode(request), done);
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        mut cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        let start = Instant::now();
        reset_outcome(&mut cntl);
        let plan = match self.plan(service, method, &cntl, request, start) {
            Ok(plan) => plan,
            Err(e) => return spawn_done(cntl, start, Err(e), done),
        };
        if plan.backup.is_none() {
            if let Some(sock) = self.inner.conns.try_get() {
                return self.start_in_flight(sock, plan, cntl, start, done);
            }
        }
        self.spawn_carrier(plan, cntl, start, done);
    }

    /// Sends the request and leaves the rest to the completion.
    fn start_in_flight(
        &self,
        sock: Arc<Socket>,
        mut plan: CallPlan,
        mut cntl: Controller,
        start: Instant,
        done: RawDone,
    ) {
        cntl.remote_side = Some(sock.remote_side());
        cntl.local_side = Some(sock.local_side());
        let corr = next_correlation_id();
        let frame = match encode_frame(corr, &mut plan.meta, &plan.payload, &cntl) {
            Ok(f) => f,
            Err(e) => {
                self.inner.conns.put_back(sock, true);
                return spawn_done(cntl, start, Err(e), done);
            }
        };
        let call = PendingCall::new();
        let timer_id = Arc::new(AtomicU64::new(NO_TIMER));
        let deadline = plan.deadline;
        let finish = InFlight {
            channel: self.clone(),
            sock: sock.clone(),
            corr,
            call: call.clone(),
            timer_id: timer_id.clone(),
            plan,
            cntl,
            start,
            done,
        };
        // Before the call can be completed by anyone.
        call.set_continuation(Box::new(move || finish.complete()));
        if let Err(e) = post(&sock, corr, frame, &call) {
            // Completes through the continuation, which retries it like
            // any connection failure.
            call.complete(Err(e));
            return;
        }
        if let Some(d) = deadline {
            let c = call.clone();
            let addr = self.inner.addr;
            let id = timer::add(d, move || {
                c.complete(Err(timeout_error(addr, start, deadline)));
            });
            timer_id.store(id.as_u64(), Ordering::Release);
        }
    }

    /// Runs the whole call on the synchronous path in a fiber.
    fn spawn_carrier(&self, plan: CallPlan, mut cntl: Controller, start: Instant, done: RawDone) {
        let me = self.clone();
        let spawned = fibrpc_fiber::Builder::new().spawn(move || {
            let r = me.run_attempts(plan, &mut cntl, start);
            record_outcome(&mut cntl, start, &r);
            done(cntl, r);
        });
        if let Err(e) = spawned {
            // The callback moved into the closure that could not start.
            eprintln!("fibrpc: cannot start an asynchronous call: {e}");
        }
    }
}

/// Runs `done` with an outcome known at once, in a fiber of its own.
fn spawn_done(mut cntl: Controller, start: Instant, r: Result<IOBuf, RpcError>, done: RawDone) {
    record_outcome(&mut cntl, start, &r);
    if let Err(e) = fibrpc_fiber::Builder::new().spawn(move || done(cntl, r)) {
        eprintln!("fibrpc: cannot start an asynchronous call's callback: {e}");
    }
}

/// An asynchronous call in flight: what its completion needs.
struct InFlight {
    channel: Channel,
    sock: Arc<Socket>,
    corr: i64,
    call: Arc<PendingCall>,
    /// The deadline's timer, once armed.
    timer_id: Arc<AtomicU64>,
    plan: CallPlan,
    cntl: Controller,
    start: Instant,
    done: RawDone,
}

impl InFlight {
    /// The continuation (in a fiber of its own): the outcome, a retry on
    /// the synchronous path if the connection failed, then the callback.
    fn complete(self) {
        let InFlight {
            channel,
            sock,
            corr,
            call,
            timer_id,
            plan,
            mut cntl,
            start,
            done,
        } = self;
        // A late response finds nothing and is dropped.
        sock.take_pending(corr);
        let id = timer_id.load(Ordering::Acquire);
        if id != NO_TIMER {
            // Fails harmlessly if it fired (and completed nothing).
            let _ = timer::cancel(TimerId::from_u64(id));
        }
        let outcome = call.take();
        let timed_out = matches!(&outcome, Some(Err(e)) if e.code == errno::ERPCTIMEDOUT);
        // After a timeout the response may still come: not reusable.
        channel.inner.conns.put_back(sock, !timed_out);
        let r = match outcome {
            Some(Ok(InputMessage::BaiduStd(frame))) => response::finish(frame, &mut cntl),
            Some(Ok(_)) => Err(RpcError::new(
                errno::ERESPONSE,
                "a response of another protocol",
            )),
            Some(Err(e)) if plan.may_retry(&e, &cntl) => {
                cntl.retried += 1;
                channel.run_attempts(plan, &mut cntl, start)
            }
            Some(Err(e)) => Err(e),
            None => Err(RpcError::new(
                errno::EINTERNAL,
                "an asynchronous call completed without an outcome",
            )),
        };
        record_outcome(&mut cntl, start, &r);
        done(cntl, r);
    }
}
