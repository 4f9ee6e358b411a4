//! Blocking synchronization for fibers *and* threads, built on the
//! [butex](crate::butex::Butex).
//!
//! Every primitive here can be used from fibers and from ordinary threads at
//! the same time: a fiber that has to wait suspends (its worker runs other
//! fibers), a thread blocks on an OS futex. Nothing here is built on
//! `std::sync` or `parking_lot`.
//!
//! | type | what it is |
//! |---|---|
//! | [`Mutex`] | mutual exclusion, bRPC's three-state futex mutex |
//! | [`Condvar`] | condition variable for this module's [`Mutex`] |
//! | [`RwLock`] | readers–writer lock, writers preferred |
//! | [`Semaphore`] | counting semaphore with RAII permits |
//! | [`CountdownEvent`] | bRPC's `CountdownEvent`: wait for N signals |
//! | [`mpsc`] | unbounded and bounded (incl. rendezvous) channels |
//! | [`contention`] | profiling of where `Mutex`/`RwLock` waiters waited |
//!
//! # Decisions common to all primitives
//!
//! - **No poisoning.** A panic while a guard is held simply unlocks (like
//!   `parking_lot`, unlike `std`). A fiber's panic is already caught at the
//!   fiber boundary and reported by `join`; making every later `lock()`
//!   return a `Result` would cost every caller for little benefit.
//! - **Every wait has a bounded variant** (`*_timeout(Duration)` and
//!   `*_deadline(Instant)`). A duration too large to express as an
//!   `Instant` means "no deadline".
//! - **Interrupts** ([`crate::interrupt`]): the plain waits (`lock`, `read`,
//!   `write`, `acquire`, `wait`, `recv`, `send`) are *not* interruptible:
//!   they keep waiting, and re-arm the fiber's interrupt flag when they
//!   return so the interrupt is not lost (the next interruptible wait, e.g.
//!   [`crate::sleep`], sees it). The `*_interruptible` variants return
//!   [`Interrupted`](crate::Interrupted) instead. On plain threads interrupts
//!   do not exist and the variants behave like the plain waits.
//! - **Guards are `!Send`**, like `std`'s: a lock taken on one thread is
//!   released on it. A fiber holding a guard across a wait (a `Condvar`
//!   wait, a channel receive, `sleep`) is sound because a started fiber
//!   never moves to another worker (see the crate docs).
//!
//! Compile-time checks of those auto-trait rules (these must not build):
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! let m = fibrpc_fiber::sync::Mutex::new(0);
//! send(m.lock()); // MutexGuard is !Send
//! ```
//!
//! ```compile_fail
//! fn sync<T: Sync>(_: &T) {}
//! let m = fibrpc_fiber::sync::Mutex::new(std::cell::Cell::new(0));
//! sync(&m.lock()); // a guard of a !Sync T is !Sync
//! ```
//!
//! ```compile_fail
//! fn send<T: Send>(_: T) {}
//! let l = fibrpc_fiber::sync::RwLock::new(0);
//! send(l.read()); // read guards are !Send
//! ```
//!
//! ```compile_fail
//! fn sync<T: Sync>(_: &T) {}
//! let (_tx, rx) = fibrpc_fiber::sync::mpsc::channel::<u8>();
//! sync(&rx); // one receiver: Receiver is !Sync
//! ```

mod condvar;
pub mod contention;
mod countdown;
pub mod mpsc;
mod mutex;
mod rwlock;
mod semaphore;

pub use condvar::{Condvar, WaitTimeoutResult};
pub use countdown::CountdownEvent;
pub use mutex::{Mutex, MutexGuard};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};

use crate::butex::{Butex, WaitError};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// `now + d`, or no deadline if that is not representable.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Why a [`Wait`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    TimedOut,
    Interrupted,
}

/// The policy of one blocking operation (its deadline, whether interrupts
/// end it), shared by every butex wait the operation makes.
///
/// A non-interruptible operation that swallows an interrupt remembers it
/// and re-arms the fiber's flag when the `Wait` is dropped, i.e. when the
/// operation returns. Re-arming earlier would make the next butex wait of
/// the same operation return at once (the flag is checked on entry) and
/// turn the wait into a busy loop.
pub(crate) struct Wait {
    deadline: Option<Instant>,
    interruptible: bool,
    swallowed: bool,
}

impl Wait {
    /// Waits forever, ignoring (and preserving) interrupts.
    #[inline]
    pub(crate) fn forever() -> Self {
        Wait::new(None, false)
    }

    #[inline]
    pub(crate) fn new(deadline: Option<Instant>, interruptible: bool) -> Self {
        Wait {
            deadline,
            interruptible,
            swallowed: false,
        }
    }

    /// Blocks while `b`'s value is `expected`. `Ok` means "woken, or the
    /// value changed, or spurious": the caller re-checks its condition.
    pub(crate) fn wait(&mut self, b: &Butex, expected: u32) -> Result<(), Stop> {
        loop {
            match b.wait(expected, self.deadline) {
                Ok(()) | Err(WaitError::WouldBlock) => return Ok(()),
                Err(WaitError::TimedOut) => return Err(Stop::TimedOut),
                Err(WaitError::Interrupted) if self.interruptible => return Err(Stop::Interrupted),
                // The butex cleared the flag, so waiting again blocks
                // properly; the interrupt is re-armed on drop.
                Err(WaitError::Interrupted) => self.swallowed = true,
            }
        }
    }

    /// The operation consumed an interrupt but is returning success anyway
    /// (it found what it waited for): keep the interrupt pending.
    pub(crate) fn keep_interrupt(&mut self) {
        self.swallowed = true;
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.swallowed {
            if let Some(t) = crate::task::current_task() {
                t.interrupted.store(true, Ordering::Release);
            }
        }
    }
}
