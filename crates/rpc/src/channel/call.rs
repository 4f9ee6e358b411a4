//! A call waiting for its response: a butex the caller sleeps on and a slot
//! the reader (or `Socket::set_failed`, or an asynchronous call's timer)
//! fills once. An asynchronous call has nobody sleeping on the butex; it
//! leaves a continuation that the completion starts in a new fiber.
//!
//! The call also watches its request's writes (one attempt's request, and
//! its backup request): whether any byte of them reached the kernel
//! decides whether a failed attempt may be sent again.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_fiber::butex::Butex;

use super::retry::RequestSent;
use crate::socket::{Socket, WaitingCall, WriteWatcher};
use crate::unstarted::{run_on_thread, IfUnstarted};
use crate::RpcError;

/// How long [`PendingCall::request_sent`] waits for a `writev` in
/// progress on another thread (it takes microseconds; a writer thread
/// descheduled longer than this counts as having sent).
const WRITE_IN_PROGRESS_WAIT: Duration = Duration::from_millis(20);

/// What an asynchronous call does once completed (run in a new fiber).
pub(crate) type Continuation = Box<dyn FnOnce() + Send>;

/// See the module docs. Shared by the caller and the connection's
/// pending calls. `M`: the protocol's response message.
pub(crate) struct PendingCall<M> {
    /// 0 while waiting, 1 once the outcome is set.
    done: Butex,
    slot: Mutex<Slot<M>>,
    /// Messages of this call inside a `writev` right now.
    writing: AtomicU32,
    /// Messages of this call of which the kernel took some byte.
    written: AtomicU32,
    /// When the attempt began and when the call gives up (for `/ids`;
    /// times the engine read anyway).
    started: Instant,
    deadline: Option<Instant>,
}

/// What completing a call fills and takes, under one lock.
struct Slot<M> {
    outcome: Option<Result<M, RpcError>>,
    /// Set before the call is registered anywhere that can complete it.
    then: Option<Continuation>,
    /// The connection whose response woke this (synchronous) caller, and
    /// whose `woken_counter` counts it until the caller takes the
    /// outcome: see [`PendingCall::complete_from`].
    woken_by: Option<Arc<Socket>>,
}

impl<M> Default for Slot<M> {
    fn default() -> Self {
        Slot {
            outcome: None,
            then: None,
            woken_by: None,
        }
    }
}

impl<M> Slot<M> {
    /// The woken caller runs: it no longer counts as a write to come.
    fn release_waker(&mut self) {
        if let Some(sock) = self.woken_by.take() {
            sock.woken_counter().fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<M> PendingCall<M> {
    /// A call whose attempt began at `started` and which gives up at
    /// `deadline`.
    pub(crate) fn new(started: Instant, deadline: Option<Instant>) -> Arc<PendingCall<M>> {
        Arc::new(PendingCall {
            done: Butex::new(0),
            slot: Mutex::new(Slot::default()),
            writing: AtomicU32::new(0),
            written: AtomicU32::new(0),
            started,
            deadline,
        })
    }

    /// The call as the console shows it, waiting under `correlation_id`.
    pub(crate) fn describe(&self, correlation_id: u64, now: Instant) -> WaitingCall {
        let state = if self.done.value().load(Ordering::Acquire) == 1 {
            "answered"
        } else if self.writing.load(Ordering::Relaxed) > 0 {
            "writing"
        } else if self.written.load(Ordering::Relaxed) > 0 {
            "sent"
        } else {
            "queued"
        };
        WaitingCall {
            correlation_id,
            state,
            age: now.saturating_duration_since(self.started),
            deadline_in: self.deadline.map(|d| d.saturating_duration_since(now)),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot<M>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `f` to be started in a new fiber when the call completes.
    /// Must come before the call is put where something can complete it
    /// (a socket's pending map, a timer).
    pub(crate) fn set_continuation(&self, f: Continuation) {
        self.slot().then = Some(f);
    }

    /// Sets the outcome unless one was set already (the first response
    /// wins: backup requests, a failure racing a response). Returns
    /// whether this call set it.
    pub(crate) fn complete(&self, r: Result<M, RpcError>) -> bool {
        self.complete_inner(r, None)
    }

    /// [`complete`](Self::complete) with a response read from `sock`.
    /// A synchronous caller woken here counts in `sock`'s
    /// `queued_inputs` until it takes the outcome: it is likely to send
    /// its next request on the same connection, so a request written
    /// meanwhile waits behind it and the requests of all the callers one
    /// read woke leave in one `writev` (the server batches its responses
    /// by the same counter). A pipelined client with 16 callers writes
    /// once per read instead of 16 times, as a tokio client's connection
    /// task does. On a channel over several servers the count is the
    /// channel's, shared by its connections ([`Socket::woken_callers`]):
    /// the next request may go to any server, and a writer of each waits.
    pub(crate) fn complete_from(&self, sock: &Arc<Socket>, r: Result<M, RpcError>) -> bool {
        self.complete_inner(r, Some(sock))
    }

    fn complete_inner(&self, r: Result<M, RpcError>, from: Option<&Arc<Socket>>) -> bool {
        let then = {
            let mut slot = self.slot();
            if slot.outcome.is_some() {
                return false;
            }
            slot.outcome = Some(r);
            let then = slot.then.take();
            if let (None, Some(sock)) = (&then, from) {
                sock.woken_counter().fetch_add(1, Ordering::Relaxed);
                slot.woken_by = Some(sock.clone());
            }
            then
        };
        self.done.value().store(1, Ordering::Release);
        self.done.wake_all();
        if let Some(f) = then {
            // Not here: we may be a socket's reader, `set_failed`'s caller
            // or the timer thread, and the continuation runs user code.
            // Should no fiber start for it, it runs on a thread: dropping
            // it would lose the caller's callback.
            let work = IfUnstarted::new(f, |f| {
                run_on_thread("an asynchronous call's completion", f);
            });
            let _ = fibrpc_fiber::Builder::new().spawn(move || (work.take())());
        }
        true
    }

    /// Waits until completed or `deadline`; returns whether completed.
    /// The deadline is kept by the timer thread (the butex's timeout).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.done.value().load(Ordering::Acquire) == 1 {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // Interrupted or spurious wakeups: look again.
            let _ = self.done.wait(0, deadline);
        }
    }

    /// Takes the outcome (once).
    pub(crate) fn take(&self) -> Option<Result<M, RpcError>> {
        let mut slot = self.slot();
        slot.release_waker();
        slot.outcome.take()
    }

    /// Whether any byte of the call's requests reached the kernel. Asked
    /// once the call completed: a request still queued then is never
    /// written (the connection failed, and a failed socket writes
    /// nothing more), but a `writev` that started before the failure may
    /// still be running on the writer's thread; its outcome decides, so
    /// wait for it (bounded: after [`WRITE_IN_PROGRESS_WAIT`] the request
    /// counts as sent).
    pub(crate) fn request_sent(&self) -> RequestSent {
        let mut until = None;
        while self.writing.load(Ordering::SeqCst) > 0 {
            let until = *until.get_or_insert_with(|| Instant::now() + WRITE_IN_PROGRESS_WAIT);
            if Instant::now() >= until {
                return RequestSent::Maybe;
            }
            // The writer is inside a non-blocking syscall on another
            // thread (it does not suspend between the two reports).
            std::thread::yield_now();
        }
        if self.written.load(Ordering::SeqCst) > 0 {
            RequestSent::Maybe
        } else {
            RequestSent::No
        }
    }
}

impl<M> Drop for PendingCall<M> {
    fn drop(&mut self) {
        // A caller that gave up (its deadline passed) never takes.
        self.slot().release_waker();
    }
}

impl<M: Send + 'static> super::cancel::Cancel for PendingCall<M> {
    fn cancel(&self) {
        self.complete(Err(super::cancel::cancelled_error()));
    }
}

impl<M: Send + 'static> WriteWatcher for PendingCall<M> {
    fn writing(&self) {
        self.writing.fetch_add(1, Ordering::SeqCst);
    }

    fn wrote(&self, took: bool) {
        // `written` first: whoever sees `writing` drop sees the outcome.
        if took {
            self.written.fetch_add(1, Ordering::SeqCst);
        }
        self.writing.fetch_sub(1, Ordering::SeqCst);
    }
}
