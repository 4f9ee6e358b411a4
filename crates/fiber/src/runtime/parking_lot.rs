//! bRPC's ParkingLot: where idle workers sleep.
//!
//! `pending_signal` counts signals (`count << 1`) with the low bit meaning
//! "stop". A worker reads the state, looks for work once more, and futex-waits
//! on the value it read, so a signal that lands in between makes the wait
//! return at once: no wakeup is lost.
//!
//! bRPC shares 4 lots among all workers. Here every worker has its own lot:
//! a fiber that already started is pinned to its worker (see DESIGN.md §2,
//! soundness), so waking it must wake *that* worker; a shared lot would have
//! to wake all its sleepers to be sure. General signals pick a sleeping lot
//! (see `TaskControl::signal_task`), so no more than the workers needed wake.

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

    /// Sets the stop bit and wakes the sleeper for good.
    pub(crate) fn stop(&self) {
        self.pending_signal.fetch_or(1, Ordering::SeqCst);
        self.wake_epoll();
        futex::wake(&self.pending_signal, u32::MAX);
    }

    /// Marks the owner asleep (`true`) or awake. SeqCst: it pairs with the
    /// SeqCst fence a waker issues after publishing work (a Dekker pattern:
    /// either the waker sees `sleeping` or the sleeper sees the work).
    ///
    /// A swap rather than a store: the same `xchg` on x86 as a SeqCst store,
    /// and loom orders it correctly against RMWs (tokio-rs/loom#254).
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.swap(sleeping, Ordering::SeqCst);
    }

    /// Whether the owner is (about to be) asleep.
    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
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
            // The waker's fence pairs with this one: either it sees us
            // asleep, or `find` sees its work (whatever orderings `find`'s
            // own loads use).
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
/// signalled. The SeqCst fence pairs with the sleeper's SeqCst increment
/// of `parked`: either we see the sleeper, or it sees the work.
pub(crate) fn wake_one_sleeper<'a>(
    parked: &AtomicUsize,
    lots: impl Iterator<Item = &'a ParkingLot>,
) -> bool {
    fence(Ordering::SeqCst);
    if parked.load(Ordering::SeqCst) == 0 {
        return false;
    }
    for lot in lots {
        if lot.is_sleeping() && lot.signal() > 0 {
            return true;
        }
    }
    false
}

/// The waking side, after queuing work only `lot`'s owner may take.
pub(crate) fn wake_owner(lot: &ParkingLot) {
    // Pairs with the owner's SeqCst `set_sleeping(true)` before its last look.
    fence(Ordering::SeqCst);
    if lot.is_sleeping() {
        lot.signal();
    }
}
