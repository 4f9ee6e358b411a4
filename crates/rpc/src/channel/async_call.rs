//! Asynchronous calls (bRPC's `CallMethod` with a `done` closure) and
//! their `Future` form.
//!
//! When a connection is at hand (the channel's single connection, an idle
//! pooled one), an asynchronous call holds no fiber while it is in flight:
//! the request is written, a timer keeps the deadline, and the response,
//! the connection's failure or the timer completes the [`PendingCall`],
//! which starts the continuation in a new fiber. That fiber turns the
//! response into the result, retries a connection failure synchronously
//! (it may block) and runs the caller's callback. So ten thousand
//! outstanding calls cost ten thousand small records, not ten thousand
//! fibers.
//!
//! Calls that would have to block before anything is sent — connecting
//! (short connections, a pool with no idle connection, a broken single
//! connection), or a backup request to schedule — are carried by a fiber
//! from the start, which runs the synchronous path.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use fibrpc_fiber::timer::{self, TimerId};

use super::call::PendingCall;
use super::connections::{Conn, Connections};
use super::engine::{
    post_in_order, record_outcome, reset_outcome, timeout_error, CallEngine, CallPlan,
};
use super::retry::RequestSent;
use crate::protocol::ClientProtocol;
use crate::unstarted::{run_on_thread, IfUnstarted};
use crate::{errno, Controller, RpcError};

/// The caller's callback.
type Done<T> = Box<dyn FnOnce(Controller, Result<T, RpcError>) + Send>;

/// No timer armed (yet).
const NO_TIMER: u64 = u64::MAX;

impl<P: ClientProtocol> CallEngine<P> {
    /// Starts the call and returns at once; `done` runs in a fiber of its
    /// own with the controller and the outcome, so it may block.
    ///
    /// While the call is in flight no fiber is held for it (see the
    /// module docs for the cases that need one); timeouts, retries and
    /// the controller's fields behave as for [`call`](Self::call).
    pub fn call_async(
        &self,
        mut cntl: Controller,
        request: P::Request,
        done: impl FnOnce(Controller, Result<P::Response, RpcError>) + Send + 'static,
    ) {
        let start = Instant::now();
        reset_outcome(&mut cntl);
        self.trace(&mut cntl, &request, start);
        let done: Done<P::Response> = Box::new(done);
        if super::cancel::cancelled(&cntl) {
            let e = super::cancel::cancelled_error();
            record_outcome(&mut cntl, start, &Err::<(), _>(e.clone()));
            return spawn_done(cntl, Err(e), done);
        }
        let mut plan = match self.plan(&cntl, request, start) {
            Ok(plan) => plan,
            Err(e) => {
                record_outcome(&mut cntl, start, &Err::<(), _>(e.clone()));
                return spawn_done(cntl, Err(e), done);
            }
        };
        if plan.backup.is_none() {
            match self.select(&plan, &cntl) {
                Ok((addr, pool)) => {
                    if let Some(conn) = pool.try_get() {
                        // A connection whose credential is still to go
                        // out may wait for it: a fiber carries the call.
                        if self.inner.options.auth.is_none() || conn.input.auth.is_sent() {
                            plan.tried(addr);
                            return self.start_in_flight(addr, pool, conn, plan, cntl, start, done);
                        }
                        pool.put_back(conn, true);
                    }
                    // The carrier's first attempt goes where the selector
                    // said: asking again would skew the balancer (a
                    // round robin would never reach a server without an
                    // idle connection).
                    plan.chosen = Some(addr);
                }
                Err(e) => {
                    record_outcome(&mut cntl, start, &Err::<(), _>(e.clone()));
                    return spawn_done(cntl, Err(e), done);
                }
            }
        }
        self.spawn_carrier(plan, cntl, start, done);
    }

    /// [`call_async`](Self::call_async) as a `Future`, for any executor
    /// (tokio included): it resolves to the controller and the outcome.
    /// Polling never blocks, and no fiber is held while the call is in
    /// flight.
    pub fn call_future(&self, cntl: Controller, request: P::Request) -> CallFuture<P::Response> {
        let (future, resolve) = CallFuture::pending();
        self.call_async(cntl, request, resolve);
        future
    }

    /// Sends the request and leaves the rest to the completion.
    #[allow(clippy::too_many_arguments)]
    fn start_in_flight(
        &self,
        addr: SocketAddr,
        pool: Arc<Connections<P>>,
        conn: Conn<P>,
        mut plan: CallPlan<P::Request>,
        mut cntl: Controller,
        start: Instant,
        done: Done<P::Response>,
    ) {
        if !self.inner.options.interceptors.is_empty() {
            if let Err(e) = self.before_hooks(&plan, addr, &mut cntl) {
                pool.put_back(conn, true);
                let r = Err(e);
                record_outcome(&mut cntl, start, &r);
                return spawn_done(cntl, r, done);
            }
        }
        cntl.remote_side = Some(conn.sock.remote_side());
        cntl.local_side = Some(conn.sock.local_side());
        let deadline = plan.deadline;
        let sent = Instant::now();
        let call = PendingCall::new(sent, deadline);
        let timer_id = Arc::new(AtomicU64::new(NO_TIMER));
        // Packed before the continuation takes the plan; registered and
        // written after it is set (nothing can complete the call before).
        // Held until the request is queued (protocols matching responses
        // by order).
        let order = conn.input.order_lock();
        let id = match self.pack(&conn, &mut plan.request, &mut cntl) {
            Ok(w) => w,
            Err(e) => {
                drop(order);
                pool.put_back(conn, true);
                let r = Err(e);
                record_outcome(&mut cntl, start, &r);
                return spawn_done(cntl, r, done);
            }
        };
        let (corr, wire) = id;
        // rpcz: once posted, the call may complete (and its controller
        // move on) before `post` returns; the write is stamped as it
        // starts.
        crate::rpcz::client_written(&mut cntl);
        let canceller = cntl.canceller.clone();
        let finish = InFlight {
            engine: self.clone(),
            addr,
            pool,
            conn: conn.clone(),
            corr,
            call: call.clone(),
            timer_id: timer_id.clone(),
            plan,
            cntl,
            start,
            sent,
            done,
        };
        call.set_continuation(Box::new(move || finish.complete()));
        let ordered = order.is_some();
        let posted = post_in_order(&conn, corr, wire, &call, ordered);
        drop(order);
        // Written now, outside the order lock (see `post_in_order`).
        let posted = posted.map(drop);
        if let Err(e) = posted {
            // Nothing of it was queued: completes through the
            // continuation, which retries it like any unsent request.
            call.complete(Err(e));
            return;
        }
        if let Some(d) = deadline {
            let c = call.clone();
            let id = timer::add(d, move || {
                c.complete(Err(timeout_error(addr, start, deadline)));
            });
            timer_id.store(id.as_u64(), Ordering::Release);
        }
        if let Some(c) = canceller {
            c.watch(Arc::downgrade(&call) as _);
        }
    }

    /// Runs the whole call on the synchronous path in a fiber.
    fn spawn_carrier(
        &self,
        plan: CallPlan<P::Request>,
        cntl: Controller,
        start: Instant,
        done: Done<P::Response>,
    ) {
        let work = IfUnstarted::new(
            (self.clone(), plan, cntl, done),
            |(_, _, cntl, done): (Self, _, Controller, Done<P::Response>)| {
                fail_on_thread(cntl, done, "an asynchronous call");
            },
        );
        let _ = fibrpc_fiber::Builder::new().spawn(move || {
            let (me, plan, mut cntl, done) = work.take();
            let r = me.run_attempts(plan, &mut cntl, start);
            record_outcome(&mut cntl, start, &r);
            done(cntl, r);
        });
    }
}

/// Runs `done` with an outcome known at once, in a fiber of its own.
pub(crate) fn spawn_done<T: Send + 'static>(
    cntl: Controller,
    r: Result<T, RpcError>,
    done: Done<T>,
) {
    // Without a fiber the callback still runs, on a thread.
    let work = IfUnstarted::new(
        (cntl, r, done),
        |(cntl, r, done): (Controller, _, Done<T>)| {
            run_on_thread("an asynchronous call's callback", move || done(cntl, r));
        },
    );
    let _ = fibrpc_fiber::Builder::new().spawn(move || {
        let (cntl, r, done) = work.take();
        done(cntl, r)
    });
}

/// The call could not start for want of a fiber: its callback hears so,
/// on a thread.
fn fail_on_thread<T: Send + 'static>(mut cntl: Controller, done: Done<T>, what: &'static str) {
    let e = RpcError::new(
        errno::EINTERNAL,
        "no fiber could start for the call (fiber stacks exhausted)",
    );
    cntl.error = Some(e.clone());
    run_on_thread(what, move || done(cntl, Err(e)));
}

/// An asynchronous call in flight: what its completion needs.
struct InFlight<P: ClientProtocol> {
    engine: CallEngine<P>,
    addr: SocketAddr,
    pool: Arc<Connections<P>>,
    conn: Conn<P>,
    corr: u64,
    call: Arc<PendingCall<P::Message>>,
    /// The deadline's timer, once armed.
    timer_id: Arc<AtomicU64>,
    plan: CallPlan<P::Request>,
    cntl: Controller,
    start: Instant,
    sent: Instant,
    done: Done<P::Response>,
}

impl<P: ClientProtocol> InFlight<P> {
    /// The continuation (in a fiber of its own): the outcome, a retry on
    /// the synchronous path if the connection failed, then the callback.
    fn complete(self) {
        let InFlight {
            engine,
            addr,
            pool,
            conn,
            corr,
            call,
            timer_id,
            mut plan,
            mut cntl,
            start,
            sent,
            done,
        } = self;
        // A late response finds nothing and is dropped.
        conn.input.give_up(&conn.sock, corr);
        let id = timer_id.load(Ordering::Acquire);
        if id != NO_TIMER {
            // Fails harmlessly if it fired (and completed nothing).
            let _ = timer::cancel(TimerId::from_u64(id));
        }
        let outcome = call.take();
        if let Some(Ok(m)) = &outcome {
            engine.note_response(&mut cntl, m);
        }
        let err = match &outcome {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        };
        let latency = engine.feedback(addr, err.as_ref(), sent);
        if let Some(Ok(_)) = &outcome {
            plan.responded = Some((addr, latency));
        }
        let clean = match &outcome {
            // After a timeout or a cancel the response may still come:
            // not reusable.
            Some(Err(e)) => e.code != errno::ERPCTIMEDOUT && !super::cancel::is_cancelled(e),
            Some(Ok(m)) => {
                let reusable = engine.inner.protocol.reusable_after(m);
                if !reusable {
                    pool.retire(&conn);
                }
                reusable
            }
            None => false,
        };
        pool.put_back(conn, clean);
        let r = match outcome {
            Some(Ok(msg)) => match engine.processed(&plan, msg, &mut cntl) {
                Ok(r) => Ok(r),
                // Answered: the policy decides (a stopping server's
                // `ELOGOFF` is sent again, elsewhere, by default).
                Err(e) => match engine.failed_attempt(&plan, &mut cntl, e, RequestSent::Maybe) {
                    Some(e) => Err(e),
                    None => engine.run_attempts(plan, &mut cntl, start),
                },
            },
            Some(Err(e)) => {
                if !engine.inner.options.interceptors.is_empty() {
                    engine.after_hooks(&plan, &cntl, Err(&e));
                }
                let e = e.into_local();
                match engine.failed_attempt(&plan, &mut cntl, e, call.request_sent()) {
                    Some(e) => Err(e),
                    None => engine.run_attempts(plan, &mut cntl, start),
                }
            }
            None => Err(RpcError::new(
                errno::EINTERNAL,
                "an asynchronous call completed without an outcome",
            )),
        };
        record_outcome(&mut cntl, start, &r);
        done(cntl, r);
    }
}

struct FutureState<T> {
    outcome: Option<(Controller, Result<T, RpcError>)>,
    waker: Option<Waker>,
}

/// A call in flight as a `Future` ([`CallEngine::call_future`]): resolves
/// to the controller (latency, attachment, error) and the outcome.
#[must_use = "a call future does nothing unless awaited; the call runs anyway"]
pub struct CallFuture<T> {
    shared: Arc<Mutex<FutureState<T>>>,
}

impl<T> std::fmt::Debug for CallFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallFuture").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> CallFuture<T> {
    /// An unresolved future and the callback that resolves it (and wakes
    /// whoever polls it): any callback-style call becomes a future.
    pub(crate) fn pending() -> (
        CallFuture<T>,
        impl FnOnce(Controller, Result<T, RpcError>) + Send + 'static,
    ) {
        let shared = Arc::new(Mutex::new(FutureState {
            outcome: None,
            waker: None,
        }));
        let theirs = shared.clone();
        let resolve = move |cntl, r| {
            let waker = {
                let mut s = theirs.lock().unwrap_or_else(|e| e.into_inner());
                s.outcome = Some((cntl, r));
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        };
        (CallFuture { shared }, resolve)
    }
}

impl<T> CallFuture<T> {
    /// A future already resolved to `r`.
    pub(crate) fn ready(cntl: Controller, r: Result<T, RpcError>) -> CallFuture<T> {
        CallFuture {
            shared: Arc::new(Mutex::new(FutureState {
                outcome: Some((cntl, r)),
                waker: None,
            })),
        }
    }
}

impl<T> Future for CallFuture<T> {
    type Output = (Controller, Result<T, RpcError>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        match s.outcome.take() {
            Some(o) => Poll::Ready(o),
            None => {
                match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
