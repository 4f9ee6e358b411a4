//! The butex: bRPC's fiber futex, and the base of every blocking primitive.
//!
//! A butex is an atomic `u32` plus a list of waiters. `wait(expected)`
//! blocks while the value equals `expected`; `wake_*` releases waiters after
//! the value was changed. A fiber waits by switching out (its worker keeps
//! running other fibers); a plain thread waits on an OS futex. join, sleep,
//! Mutex, Condvar, RwLock, Semaphore, channels and fd readiness all wait here.
//!
//! Waiter nodes live on the waiting fiber's (or thread's) stack. The rules
//! that keep that sound:
//! - a node is linked and unlinked only under the butex's lock;
//! - whoever unlinks a fiber node owns the fiber's run token and makes it
//!   ready *after* releasing the lock, touching the node no more, and
//!   routing it with what the node says (`WakeRoute`), never with the
//!   fiber's run state: a pinned fiber links itself *before* it switches
//!   out (its worker cannot resume it before that), so it may still be
//!   running when woken; a migratable one is linked by the scheduler after
//!   the switch, since any worker could resume it;
//! - the waiting side does not leave `wait` while a timer callback or an
//!   interrupter may still use its node (see `finish_fiber_wait`).

mod current_waiter;
mod list;
mod parker;
mod spin_lock;

pub(crate) use self::current_waiter::CurrentWaiter;
use self::list::WaiterList;
use self::parker::Parker;
pub(crate) use self::spin_lock::SpinLock;
use crate::loom::{AtomicBool, AtomicU32};
use crate::runtime::context::{ParkFn, Switch};
use crate::runtime::task_group::current_group;
use crate::runtime::task_meta::TaskRef;
use crate::runtime::{current_yielder, ready_to_run, WakeRoute};
use crate::timer;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Why a [`Butex::wait`] returned without being woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// The value was not `expected` when checked (bRPC: `EWOULDBLOCK`).
    WouldBlock,
    /// The deadline passed (`ETIMEDOUT`).
    TimedOut,
    /// The fiber was interrupted with [`crate::interrupt`] (`EINTR`).
    Interrupted,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WaitError::WouldBlock => "value changed before waiting",
            WaitError::TimedOut => "timed out",
            WaitError::Interrupted => "interrupted",
        })
    }
}

impl std::error::Error for WaitError {}

/// A fiber futex: a 32-bit value and the fibers and threads waiting on it.
pub struct Butex {
    value: AtomicU32,
    /// Guards `list`. A waker takes it after changing the value and a waiter
    /// checks the value under it, which is what makes a wakeup impossible to
    /// lose. (A lock-free "any waiters?" hint would need a SeqCst fence on
    /// both sides; on x86 that costs as much as the uncontended lock.)
    lock: SpinLock,
    list: UnsafeCell<WaiterList>,
}

// SAFETY: `list` is only accessed with `lock` held; everything else is atomic.
unsafe impl Sync for Butex {}
// SAFETY: a butex with linked waiters cannot be moved (they borrow it), so
// moving one moves only plain data.
unsafe impl Send for Butex {}

impl Default for Butex {
    fn default() -> Self {
        Butex::new(0)
    }
}

impl std::fmt::Debug for Butex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Butex")
            .field("value", &self.value.load(Ordering::Relaxed))
            .finish()
    }
}

/// Who is waiting.
pub(crate) enum WaiterKind {
    Fiber(TaskRef, WakeRoute),
    Thread(Arc<Parker>),
}

/// A waiter node, on the waiter's stack.
pub(crate) struct Waiter {
    pub(crate) prev: Cell<*const Waiter>,
    pub(crate) next: Cell<*const Waiter>,
    /// The butex this node waits on (alive while the owner is in `wait`).
    butex: *const Butex,
    /// Whether the node is in `butex`'s list. Changed under the lock; read
    /// without it by a thread waiter (Acquire) to learn it was woken.
    linked: AtomicBool,
    /// Set under the lock by a timeout or interrupt that came before the
    /// node was linked: `link` then refuses to link it.
    cancelled: Cell<Option<WaitError>>,
    kind: WaiterKind,
    /// How the wait ended; written by the unlinker under the lock.
    outcome: Cell<Result<(), WaitError>>,
    /// Set (Release) by the timeout callback as its very last access.
    timer_done: AtomicBool,
}

impl Waiter {
    fn new(butex: &Butex, kind: WaiterKind) -> Self {
        Waiter {
            prev: Cell::new(std::ptr::null()),
            next: Cell::new(std::ptr::null()),
            butex,
            linked: AtomicBool::new(false),
            cancelled: Cell::new(None),
            kind,
            outcome: Cell::new(Ok(())),
            timer_done: AtomicBool::new(false),
        }
    }
}

/// Something to wake once the lock is released.
enum Wakeup {
    Fiber(TaskRef, WakeRoute),
    Thread(Arc<Parker>),
}

impl Wakeup {
    /// Wakes the waiter; `run_now`: a fiber of the caller's worker runs at
    /// once (see `ready_to_run`).
    #[inline(always)]
    fn fire(self, run_now: bool) {
        match self {
            Wakeup::Fiber(t, r) => ready_to_run(t, r, run_now),
            Wakeup::Thread(p) => p.unpark(),
        }
    }
}

impl Butex {
    /// A butex holding `value`.
    #[cfg(not(loom))]
    pub const fn new(value: u32) -> Self {
        Butex {
            value: AtomicU32::new(value),
            lock: SpinLock::new(),
            list: UnsafeCell::new(WaiterList::new()),
        }
    }

    /// A butex holding `value` (loom's atomics are not `const`).
    #[cfg(loom)]
    pub fn new(value: u32) -> Self {
        Butex {
            value: AtomicU32::new(value),
            lock: SpinLock::new(),
            list: UnsafeCell::new(WaiterList::new()),
        }
    }

    /// The value. Change it, then call a `wake_*` method.
    pub fn value(&self) -> &AtomicU32 {
        &self.value
    }

    /// Blocks while the value equals `expected`, until woken, `deadline`
    /// passes, or (in a fiber) [`crate::interrupt`]. Spurious returns are
    /// possible: callers re-check their condition.
    ///
    /// Always inlined, with the switch in it: a fiber that, once resumed,
    /// returns through frames it entered before switching out has its
    /// returns mispredicted (the CPU's return stack buffer holds the
    /// addresses of the context that resumed it), and that desynchronizes
    /// the switch back as well. Same-worker ping-pong: 35 ns with the wait
    /// in the loop's own function, 58 ns with it one call further down.
    #[inline(always)]
    pub fn wait(&self, expected: u32, deadline: Option<Instant>) -> Result<(), WaitError> {
        if self.value.load(Ordering::Acquire) != expected {
            return Err(WaitError::WouldBlock);
        }
        if let Some(g) = current_group() {
            if let Some(task) = g.current_task() {
                if let Some(y) = current_yielder(task) {
                    return self.wait_fiber(task, y, expected, deadline);
                }
            }
        }
        self.wait_thread(expected, deadline)
    }

    /// Wakes one waiter (the oldest). Returns how many were woken.
    ///
    /// As bRPC's `butex_wake`: if the caller is a fiber and the waiter a
    /// fiber of the same worker, the woken fiber runs at once, on the spot
    /// (nested in this call, until it blocks, yields or ends), and then the
    /// caller goes on — or yields, if other fibers are queued on its worker
    /// meanwhile. The woken fiber runs while what the caller wrote is still
    /// in cache, and a caller about to wait for an answer (a ping-pong, a
    /// request and its reply) skips that wait entirely. So do not call it
    /// while holding a
    /// lock that the woken fiber may take with a thread-blocking lock
    /// (`std::sync::Mutex`): it would block the worker. A waker that wakes
    /// many in a row (a producer) wants [`wake_one_queued`](Self::wake_one_queued).
    ///
    /// Inlinable for the same reason as [`wait`](Self::wait): the woken
    /// fiber runs nested inside this call, and the caller returns through
    /// it afterwards.
    #[inline]
    pub fn wake_one(&self) -> usize {
        self.wake_first(true)
    }

    /// Wakes one waiter (the oldest) by queueing it; the caller goes on
    /// running. Returns how many were woken. What the primitives of
    /// [`crate::sync`] use: a channel sender that switched to the receiver
    /// at every message would hand over one message per switch (measured:
    /// 18 ns per message queued, 124 ns switching).
    pub fn wake_one_queued(&self) -> usize {
        self.wake_first(false)
    }

    /// Wakes the oldest waiter, if any; `run_now` as in `Wakeup::fire`.
    #[inline(always)]
    fn wake_first(&self, run_now: bool) -> usize {
        self.lock.lock();
        // SAFETY: lock held.
        let list = unsafe { &mut *self.list.get() };
        let first = list.pop_front();
        // SAFETY: a linked node is alive: its owner cannot leave `wait`
        // until the node is unlinked (which we do here, under the lock).
        let w = first.map(|n| unlink_wakeup(unsafe { &*n }, Ok(())));
        self.lock.unlock();
        match w {
            Some(w) => {
                w.fire(run_now);
                1
            }
            None => 0,
        }
    }

    /// Wakes every waiter by queueing them. Returns how many were woken.
    pub fn wake_all(&self) -> usize {
        self.wake_n(usize::MAX)
    }

    /// Runs `f` under the lock of the waiter list (which every
    /// [`wake_all`](Self::wake_all) takes), to order `f` against one.
    pub(crate) fn with_lock<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lock.lock();
        let r = f();
        self.lock.unlock();
        r
    }

    /// Wakes up to `n` waiters, oldest first, by queueing them (as
    /// [`wake_one_queued`](Self::wake_one_queued)).
    pub fn wake_n(&self, n: usize) -> usize {
        match n {
            0 => return 0,
            1 => return self.wake_one_queued(),
            _ => {}
        }
        // Taken even with nobody waiting: the end of a fiber relies on its
        // `wake_all` to order it against `interrupt_task`.
        self.lock.lock();
        // SAFETY: lock held.
        let list = unsafe { &mut *self.list.get() };
        let Some(first) = list.pop_front() else {
            self.lock.unlock();
            return 0;
        };
        // SAFETY: a linked node is alive: its owner cannot leave `wait`
        // until the node is unlinked (which we do here, under the lock).
        let first = unlink_wakeup(unsafe { &*first }, Ok(()));
        let mut rest = Vec::new();
        while rest.len() + 1 < n {
            let Some(node) = list.pop_front() else { break };
            // SAFETY: as above.
            rest.push(unlink_wakeup(unsafe { &*node }, Ok(())));
        }
        self.lock.unlock();
        let woken = 1 + rest.len();
        first.fire(false);
        for w in rest {
            w.fire(false);
        }
        woken
    }

    /// Links `node` if the value still equals `expected` and no timeout or
    /// interrupt (`interrupted`, for fibers) got to it first.
    ///
    /// # Safety
    /// `node` waits on `self`, and stays alive and at this address until it
    /// is unlinked.
    unsafe fn link(
        &self,
        node: &Waiter,
        expected: u32,
        interrupted: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<(), WaitError> {
        self.lock.lock();
        let refused = if self.value.load(Ordering::Relaxed) != expected {
            Some(WaitError::WouldBlock)
        } else if let Some(why) = node.cancelled.get() {
            Some(why)
        } else if interrupted.is_some_and(|f| f.load(Ordering::Relaxed)) {
            // The interrupter set the flag before taking this lock.
            Some(WaitError::Interrupted)
        } else {
            None
        };
        if let Some(why) = refused {
            self.lock.unlock();
            return Err(why);
        }
        // SAFETY: lock held; node liveness is the caller's contract.
        unsafe { (*self.list.get()).push_back(node) };
        node.linked.store(true, Ordering::Relaxed);
        self.lock.unlock();
        Ok(())
    }

    /// Always inlined into `wait` (see there).
    #[inline(always)]
    fn wait_fiber(
        &self,
        task: TaskRef,
        yielder: crate::runtime::context::YielderPtr,
        expected: u32,
        deadline: Option<Instant>,
    ) -> Result<(), WaitError> {
        // Load first: the common case (not interrupted) then costs no
        // locked instruction.
        if task.interrupted.load(Ordering::Relaxed)
            && task.interrupted.swap(false, Ordering::AcqRel)
        {
            return Err(WaitError::Interrupted);
        }
        let route = WakeRoute::of_current(task);
        let node = Waiter::new(self, WaiterKind::Fiber(task, route));
        let node_ptr = &node as *const Waiter;
        // Published before switching out so `interrupt` can find us (and
        // the console sees the fiber suspended, since when).
        task.diag.note_park();
        task.current_waiter.publish(node_ptr);
        // Armed before linking: a timeout that fires first marks the node
        // `cancelled` and `link` refuses it.
        let timer_id = deadline.map(|d| arm_timeout(node_ptr, d));
        // A migratable fiber must be switched out before anyone can make it
        // ready (another worker could resume it at once), so the scheduler
        // links it, on its own stack, with this callback.
        let mut park = |task: TaskRef| {
            // On the worker's stack now; we hold `task`'s token.
            // SAFETY: `node` lives on the suspended fiber's stack, which
            // stays put until the fiber resumes, and the fiber resumes only
            // after it is unlinked or was never linked.
            let r = unsafe { self.link(&node, expected, Some(&task.interrupted)) };
            if let Err(why) = r {
                node.outcome.set(Err(why));
                ready_to_run(task, route, false);
            }
            // Once linked, nothing here touches `node` again: a waker owns
            // the fiber now and it may already be running elsewhere.
        };
        let park_dyn: &mut (dyn FnMut(TaskRef) + '_) = &mut park;
        // SAFETY: erasing the lifetime is sound because the closure is only
        // called by the scheduler while this frame is suspended (alive).
        let mut park_fn: *mut (dyn FnMut(TaskRef) + 'static) =
            unsafe { std::mem::transmute(park_dyn as *mut (dyn FnMut(TaskRef) + '_)) };
        let switch = if route.is_pinned() {
            // A pinned fiber links itself before switching out: a waker that
            // gets it first queues it for this worker, which resumes it only
            // after the switch below. No callback for the scheduler.
            // SAFETY: `node` stays on this stack until it is unlinked: we
            // do not leave `wait` before that (`finish_fiber_wait`), and the
            // stack does not move.
            match unsafe { self.link(&node, expected, Some(&task.interrupted)) } {
                Ok(()) => Some(Switch::Parked),
                Err(why) => {
                    node.outcome.set(Err(why));
                    None
                }
            }
        } else {
            Some(Switch::Park(ParkFn(&mut park_fn)))
        };
        // One switch site (a second one would not be inlined, and an
        // out-of-line switch costs a mispredicted return each way).
        if let Some(switch) = switch {
            // Where this fiber stops, read in this very frame, for a tracer
            // of suspended fibers (`runtime::trace`).
            let (pc, sp, fp) = crate::runtime::trace::here_registers!();
            task.diag.note_suspended_at(pc, sp, fp);
            // SAFETY: we are the running fiber and `yielder` is its yielder.
            // If linked, our token is in the waiter list: the waker queues
            // us and our worker resumes us.
            unsafe { yielder.suspend(switch) };
        }
        self.finish_fiber_wait(task, &node, timer_id)
    }

    fn finish_fiber_wait(
        &self,
        task: TaskRef,
        node: &Waiter,
        timer_id: Option<timer::TimerId>,
    ) -> Result<(), WaitError> {
        // Whoever ended the wait (waker, timeout, interrupt) did so under
        // the lock before making us ready: the node is unlinked.
        if let Some(id) = timer_id {
            if timer::cancel(id) != timer::CancelResult::Cancelled {
                // The callback ran or is running and may still read `node`.
                while !node.timer_done.load(Ordering::Acquire) {
                    crate::loom::thread_yield();
                }
            }
        }
        // An interrupter may still be using our node.
        task.current_waiter.withdraw();
        let r = node.outcome.get();
        if r == Err(WaitError::Interrupted) {
            task.interrupted.store(false, Ordering::Release);
        }
        r
    }

    fn wait_thread(&self, expected: u32, deadline: Option<Instant>) -> Result<(), WaitError> {
        let parker = Parker::current();
        let node = Waiter::new(self, WaiterKind::Thread(parker.clone()));
        // SAFETY: `node` lives on this frame, and we do not leave it until
        // the node is unlinked (below: woken, or we unlink it ourselves).
        unsafe { self.link(&node, expected, None) }?;
        loop {
            if !node.linked.load(Ordering::Acquire) {
                return node.outcome.get();
            }
            let timed_out = parker.park(deadline);
            if timed_out {
                // SAFETY: node alive; acts only if still linked.
                return match unsafe { try_unlink(&node, WaitError::TimedOut) } {
                    Some(_) => Err(WaitError::TimedOut),
                    // Someone unlinked us first: wait for the flag.
                    None => {
                        while node.linked.load(Ordering::Acquire) {
                            crate::loom::spin_loop();
                        }
                        node.outcome.get()
                    }
                };
            }
        }
    }
}

/// Unlinks `node` (under the lock, already held by the caller and with the
/// node known to be linked) and returns what to wake.
fn unlink_wakeup(node: &Waiter, outcome: Result<(), WaitError>) -> Wakeup {
    node.outcome.set(outcome);
    let w = match &node.kind {
        WaiterKind::Fiber(t, r) => Wakeup::Fiber(t, *r),
        WaiterKind::Thread(p) => Wakeup::Thread(p.clone()),
    };
    // Last write: a thread waiter may return as soon as it sees this.
    node.linked.store(false, Ordering::Release);
    w
}

/// Ends `node`'s wait with `why`: unlinks it if linked (returning what to
/// wake, to fire after the lock is released), or, if it is not linked yet,
/// marks it so that `link` refuses it. Returns `None` if there is nothing to
/// wake (already woken, or not yet linked).
///
/// # Safety
/// `node` is alive for the duration of the call; so is its butex (true
/// while the owner is inside `wait`, which it cannot leave before the
/// caller is done — see `finish_fiber_wait`).
unsafe fn try_unlink(node: *const Waiter, why: WaitError) -> Option<Wakeup> {
    // SAFETY: alive per contract.
    let node = unsafe { &*node };
    // SAFETY: alive per contract.
    let b = unsafe { &*node.butex };
    b.lock.lock();
    if !node.linked.load(Ordering::Relaxed) {
        if node.outcome.get().is_ok() && node.cancelled.get().is_none() {
            node.cancelled.set(Some(why));
        }
        b.lock.unlock();
        return None;
    }
    // SAFETY: lock held; the node is in this list.
    let list = unsafe { &mut *b.list.get() };
    // SAFETY: as above.
    unsafe { list.remove(node) };
    let w = unlink_wakeup(node, Err(why));
    b.lock.unlock();
    Some(w)
}

/// Arms the timeout of a fiber wait.
fn arm_timeout(node: *const Waiter, deadline: Instant) -> timer::TimerId {
    struct NodePtr(*const Waiter);
    // SAFETY: the node outlives the callback: the waiting fiber does not
    // return from `wait` before the callback finished (`timer_done`) or was
    // cancelled.
    unsafe impl Send for NodePtr {}
    let p = NodePtr(node);
    timer::add(deadline, move || {
        let p = p;
        // SAFETY: see NodePtr.
        if let Some(w) = unsafe { try_unlink(p.0, WaitError::TimedOut) } {
            w.fire(false);
        }
        // SAFETY: see NodePtr; this is our last access.
        unsafe { (*p.0).timer_done.store(true, Ordering::Release) };
    })
}

/// Interrupts the fiber of `task`'s slot whose version is `version`, if
/// it is still that fiber (returns whether it was): if it is parked in a
/// butex wait, the wait returns [`WaitError::Interrupted`] now; in any case
/// its next wait does.
pub(crate) fn interrupt_task(task: TaskRef, version: u32) -> bool {
    // The version is checked and the flag set under the version butex's
    // lock, which the end of a fiber takes (its `wake_all`) after bumping
    // the version and before clearing the flag: either we see the bumped
    // version and set nothing, or our flag is set before that clear, which
    // removes it. Either way no flag survives onto the slot's next fiber
    // (bRPC checks the version under `version_lock` likewise).
    let live = task.version.with_lock(|| {
        let live = task.version.value().load(Ordering::Relaxed) == version;
        if live {
            task.interrupted.store(true, Ordering::SeqCst);
        }
        live
    });
    if !live {
        return false;
    }
    task.current_waiter.visit(|node| {
        // If our fiber ended since the check, the node is a later fiber's
        // of this slot: the version moved on before the slot was reused
        // and that fiber published its node (which `visit` read with
        // Acquire), so we see the move. A waiting fiber cannot end while
        // we visit (it waits for us in `withdraw`).
        if task.version.value().load(Ordering::Acquire) != version {
            return;
        }
        // SAFETY: while we visit, the waiting fiber spins in
        // `finish_fiber_wait` instead of leaving, so the node is alive.
        if let Some(w) = unsafe { try_unlink(node, WaitError::Interrupted) } {
            // Queued, never switched to: it would spin until our visit
            // ends.
            w.fire(false);
        }
    });
    true
}
