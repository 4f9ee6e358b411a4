//! The timer thread (bRPC's `TimerThread`): runs short callbacks at
//! deadlines. Fiber sleep and every timeout in the runtime go through it.
//!
//! ```
//! use std::time::Duration;
//! use fibrpc_fiber::timer::{self, CancelResult};
//!
//! let (tx, rx) = std::sync::mpsc::channel();
//! timer::add_after(Duration::from_millis(1), move || tx.send(()).unwrap());
//! rx.recv().unwrap();
//!
//! // The common case: a timeout that never fires.
//! let id = timer::add_after(Duration::from_secs(5), || unreachable!());
//! assert_eq!(timer::cancel(id), CancelResult::Cancelled);
//! assert_eq!(timer::cancel(id), CancelResult::NotFound);
//! ```
//!
//! # How it works
//!
//! - `add` hashes the calling thread to one of N buckets (13 by default), and
//!   under that bucket's small mutex takes a task slot from the bucket's free
//!   list, stores the closure in the slot (inline when it is at most four
//!   words: no allocation) and appends `(deadline, slot, version)` to the
//!   bucket's list of new tasks. Only if the deadline is earlier than both
//!   the bucket's nearest and the timer thread's planned wake-up does it wake
//!   the thread (a futex wake); all other adds make no system call.
//! - `cancel` is one compare-and-swap on the slot's versioned state word. On
//!   success the closure is dropped right away and the slot goes back to its
//!   bucket's free list; the (now stale) heap entry is discarded by version.
//! - The timer thread moves new tasks from all buckets into a binary
//!   min-heap, runs the due ones (catching panics), and futex-waits until the
//!   nearest deadline or a wake.
//!
//! # Cost
//!
//! `cargo bench -p fibrpc-fiber --bench timer` on the 2-core dev VM: an
//! `add_after` + `cancel` pair of a timer that never fires (what every RPC
//! with a timeout pays) takes ~50-70 ns, about half of it reading the clock;
//! no allocation and no system call. A 1 ms timer fires a median ~10-30 µs
//! late (the timer thread runs with a 1 µs timer slack).

mod bucket;
pub(crate) mod callback;
mod os;
pub(crate) mod slot;
mod stats;
mod sync;
mod thread;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use stats::TimerStats;
pub use thread::{TimerOptions, TimerThread};

/// Identifies a scheduled timer: slot index and slot version, so an id of a
/// timer that already ran or was cancelled is recognised as stale even after
/// its slot is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);

impl TimerId {
    /// An id that never names a timer: cancelling it returns
    /// [`CancelResult::NotFound`].
    pub const INVALID: TimerId = TimerId(0);

    /// The raw value, e.g. to store in an atomic.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`TimerId::as_u64`].
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

/// Outcome of [`cancel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelResult {
    /// The timer was pending; its callback was dropped and will never run.
    Cancelled,
    /// The callback is running right now on the timer thread (it will
    /// finish; a caller that must wait for it needs its own signal).
    Running,
    /// No such pending timer: it already ran, was already cancelled, or the
    /// id is stale or invalid.
    NotFound,
}

/// The global timer thread used by the free functions, started on first use.
pub fn global() -> &'static TimerThread {
    static GLOBAL: OnceLock<TimerThread> = OnceLock::new();
    GLOBAL.get_or_init(|| {
        TimerThread::new(TimerOptions::default())
            .unwrap_or_else(|e| panic!("fibrpc: cannot start the timer thread: {e}"))
    })
}

/// Runs `f` on the global timer thread at `deadline` (promptly if it is
/// past). `f` must be short and must not block; it usually wakes a fiber.
pub fn add(deadline: Instant, f: impl FnOnce() + Send + 'static) -> TimerId {
    global().add(deadline, f)
}

/// Runs `f` on the global timer thread after `delay`. See [`add`].
pub fn add_after(delay: Duration, f: impl FnOnce() + Send + 'static) -> TimerId {
    global().add_after(delay, f)
}

/// Cancels a timer of the global timer thread; O(1), never waits.
pub fn cancel(id: TimerId) -> CancelResult {
    global().cancel(id)
}

/// Counters of the global timer thread.
pub fn stats() -> TimerStats {
    global().stats()
}
