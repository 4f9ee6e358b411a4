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

use crate::sys::futex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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
#[derive(Default)]
pub(crate) struct ParkingLot {
    pending_signal: AtomicU32,
    sleeping: AtomicBool,
}

impl ParkingLot {
    /// Current state, to be passed to [`wait`](Self::wait).
    pub(crate) fn state(&self) -> State {
        State(self.pending_signal.load(Ordering::Acquire))
    }

    /// Adds a signal and wakes the sleeper, if any. Returns how many woke.
    pub(crate) fn signal(&self) -> usize {
        self.pending_signal.fetch_add(2, Ordering::Release);
        futex::wake(&self.pending_signal, 1)
    }

    /// Sleeps until a signal or stop arrives after `expected` was read.
    pub(crate) fn wait(&self, expected: State) {
        if !expected.stopped() {
            futex::wait(&self.pending_signal, expected.0, None);
        }
    }

    /// Sets the stop bit and wakes the sleeper for good.
    pub(crate) fn stop(&self) {
        self.pending_signal.fetch_or(1, Ordering::Release);
        futex::wake(&self.pending_signal, u32::MAX);
    }

    /// Marks the owner asleep (`true`) or awake. SeqCst: it pairs with the
    /// SeqCst fence a waker issues after publishing work (a Dekker pattern:
    /// either the waker sees `sleeping` or the sleeper sees the work).
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }

    /// Whether the owner is (about to be) asleep.
    pub(crate) fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::SeqCst)
    }
}
