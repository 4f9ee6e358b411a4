//! bRPC's ParkingLot: where idle workers sleep.
//!
//! `pending_signal` counts signals (`count << 1`) with the low bit meaning
//! "stop". A worker reads the state, looks for work once more, and futex-waits
//! on the value it read, so a signal that lands in between makes the wait
//! return at once: no wakeup is lost.
//!
//! bRPC shares 4 lots among all workers. Here every worker has its own lot:
//! a fiber that already started is pinned to its worker (the soundness
//! rule in the crate docs), so waking it must wake *that* worker; a shared
//! lot would have to wake all its sleepers to be sure. General signals pick
//! a sleeping lot (see `TaskControl::signal_task`), so no more than the
//! workers needed wake.

use crate::loom::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicUsize};
use crate::sys::futex;
use std::sync::atomic::Ordering;

/// A snapshot of a lot's `pending_signal`, taken before the last look for
/// work and handed back to [`ParkingLot::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct State(u32);

impl State {
    /// Whether the lot was stopped when the snapshot was taken.
    pub(crate) fn stopped(self) -> bool {
        self.0 & 1 != 0
    }
}

/// One worker's futex word plus a flag saying whether it is asleep.
///
/// A worker may sleep in `epoll_wait` instead of on the futex (the I/O
/// driver's worker placement): it then publishes the dispatcher's eventfd
/// in `epoll_waker`, and a signal writes to that eventfd.
pub(crate) struct ParkingLot {
    pending_signal: AtomicU32,
    sleeping: AtomicBool,
    epoll_waker: AtomicI32,
    /// Under loom, the eventfd: "readable" once written.
    #[cfg(loom)]
    pub(crate) loom_eventfd: AtomicBool,
}

impl ParkingLot {
    /// A lot with no signal pending.
    pub(crate) fn new() -> Self {
        ParkingLot {
            pending_signal: AtomicU32::new(0),
            sleeping: AtomicBool::new(false),
            epoll_waker: AtomicI32::new(-1),
            #[cfg(loom)]
            loom_eventfd: AtomicBool::new(false),
        }
    }

    /// Current state, to be passed to [`wait`](Self::wait).
    pub(crate) fn state(&self) -> State {
        State(self.pending_signal.load(Ordering::Acquire))
    }

    /// Adds a signal and wakes the sleeper, if any. Returns how many woke.
    pub(crate) fn signal(&self) -> usize {
        // SeqCst: against `wait_in_epoll`'s publication of the waker (either
        // it sees this signal, or we see its eventfd).
        self.pending_signal.fetch_add(2, Ordering::SeqCst);
        if self.wake_epoll() {
            return 1;
        }
        futex::wake(&self.pending_signal, 1)
    }

    /// Writes the eventfd of the epoll the owner sleeps in, if it does.
    fn wake_epoll(&self) -> bool {
        fence(Ordering::SeqCst);
        let fd = self.epoll_waker.load(Ordering::SeqCst);
        if fd < 0 {
            return false;
        }
        #[cfg(not(loom))]
        crate::sys::eventfd::notify(fd);
        #[cfg(loom)]
        self.loom_eventfd.swap(true, Ordering::SeqCst);
        true
    }

    /// Sleeps like [`wait`](Self::wait), but inside `poll` (an
    /// `epoll_wait` that `waker`, an eventfd in that epoll, interrupts).
    pub(crate) fn wait_in_epoll(&self, expected: State, waker: i32, poll: impl FnOnce()) {
        if expected.stopped() {
            return;
        }
        self.epoll_waker.swap(waker, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // A signal that came before we published the waker changed the
        // state: don't sleep. One after it writes the eventfd.
        if self.pending_signal.load(Ordering::SeqCst) == expected.0 {
            poll();
        }
        self.epoll_waker.swap(-1, Ordering::SeqCst);
    }

    /// Sleeps until a signal or stop arrives after `expected` was read.
    pub(crate) fn wait(&self, expected: State) {
        if !expected.stopped() {
            futex::wait(&self.pending_signal, expected.0, None);
        }
    }

    /// As [`wait`](Self::wait), for at most `timeout`.
    pub(crate) fn wait_for(&self, expected: State, timeout: std::time::Duration) {
        if !expected.stopped() {
            futex::wait(&self.pending_signal, expected.0, Some(timeout));
        }
    }

    /// Sets the stop bit and wakes the sleeper for good.
    pub(crate) fn stop(&self) {
        self.pending_signal.fetch_or(1, Ordering::SeqCst);
        self.wake_epoll();
        futex::wake(&self.pending_signal, u32::MAX);
    }

    /// Marks the owner asleep (`true`) or awake. A SeqCst RMW: it pairs
    /// with a waker's claim (an RMW on the same flag, after it published
    /// work): either the claim sees `true`, or this reads from the claim
    /// and the owner's next look sees the work.
    ///
    /// A swap rather than a store: the same `xchg` on x86 as a SeqCst store,
    /// and loom orders it correctly against RMWs (tokio-rs/loom#254).
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.swap(sleeping, Ordering::SeqCst);
    }

    /// Claims the wakeup of an owner that is (about to be) asleep: true
    /// for exactly one waker per sleep, which must then [`signal`]. The
    /// others see a worker already on its way up and make no syscall —
    /// without the claim, every signal in the ~20 µs a wakeup takes here
    /// wrote the eventfd or called futex-wake again (three writes per
    /// wakeup under RPC load). A claimed owner looks for work after it
    /// wakes, so it also finds what those later wakers queued.
    ///
    /// [`signal`]: Self::signal
    pub(crate) fn claim_sleeper(&self) -> bool {
        self.sleeping.swap(false, Ordering::SeqCst)
    }
}

impl ParkingLot {
    /// The sleeping side of the wakeup protocol: look for work with `find`;
    /// if there is none, sleep until signalled and look again. `parked`
    /// counts the sleepers of all lots (see [`wake_one_sleeper`]). Returns
    /// what `find` found, or `None` once the lot is stopped.
    pub(crate) fn park_until<T>(
        &self,
        parked: &AtomicUsize,
        mut find: impl FnMut() -> Option<T>,
        mut on_sleep: impl FnMut(),
        mut sleep: impl FnMut(State),
    ) -> Option<T> {
        loop {
            // Read the state *before* the last look: a signal after this
            // point changes it, and `wait` then returns at once.
            let state = self.state();
            self.set_sleeping(true);
            parked.fetch_add(1, Ordering::SeqCst);
            // Our increment and a waker's RMW read of `parked` (and our
            // `sleeping` swap and its claim) are ordered one way or the
            // other: either it sees us asleep, or `find` sees its work
            // (whatever orderings `find`'s own loads use). The fence keeps
            // `find`'s loads after both.
            fence(Ordering::SeqCst);
            let found = find();
            if found.is_some() || state.stopped() {
                self.set_sleeping(false);
                parked.fetch_sub(1, Ordering::SeqCst);
                return found;
            }
            on_sleep();
            sleep(state);
            self.set_sleeping(false);
            parked.fetch_sub(1, Ordering::SeqCst);
            if let Some(t) = find() {
                return Some(t);
            }
        }
    }
}

/// The waking side, after queuing work any worker may take: signals one
/// sleeping lot among `lots` (tried in order). Returns whether one was
/// signalled.
///
/// `parked` is read with an RMW, which reads the latest count: either it
/// sees the sleeper's SeqCst increment, or the sleeper's increment comes
/// later, reads from it and so sees the work queued before (an RMW also
/// orders like a full fence on x86, so this costs what `fence` + `load`
/// did; loom, which models SeqCst fences only in part, then checks it).
pub(crate) fn wake_one_sleeper<'a>(
    parked: &AtomicUsize,
    lots: impl Iterator<Item = &'a ParkingLot>,
) -> bool {
    if parked.fetch_add(0, Ordering::SeqCst) == 0 {
        return false;
    }
    for lot in lots {
        if lot.claim_sleeper() {
            // Even if the futex wake finds nobody yet: the owner has not
            // reached its wait, sees the new signal count and stays up.
            lot.signal();
            return true;
        }
    }
    false
}

/// The waking side, after queuing work only `lot`'s owner may take. The
/// claim is an RMW on `sleeping`: if it finds `false`, the owner's next
/// `set_sleeping` (before its next look for work) reads from it, so that
/// look sees our work.
pub(crate) fn wake_owner(lot: &ParkingLot) {
    if lot.claim_sleeper() {
        lot.signal();
    }
}
