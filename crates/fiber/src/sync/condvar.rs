//! A condition variable for [`Mutex`](super::Mutex), after bRPC's
//! `bthread_cond_t`: a butex holding a sequence number.
//!
//! A waiter reads the sequence while it still holds the mutex, unlocks, and
//! waits while the sequence is unchanged; a notifier bumps the sequence and
//! wakes. A notify that lands between the unlock and the wait changes the
//! value, so the wait returns at once: no lost wake-ups. Spurious wake-ups
//! are possible, as with every condition variable: re-check the condition
//! (or use [`Condvar::wait_while`]).

use super::mutex::MutexGuard;
use super::{deadline_after, Stop, Wait};
use crate::butex::Butex;
use crate::Interrupted;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A condition variable: lets fibers and threads wait, with a
/// [`MutexGuard`] released meanwhile, until another notifies them.
///
/// ```
/// use fibrpc_fiber::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = pair.clone();
/// let h = fibrpc_fiber::spawn(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let (m, cv) = &*pair;
/// let ready = cv.wait_while(m.lock(), |ready| !*ready);
/// assert!(*ready);
/// # drop(ready);
/// # h.join().unwrap();
/// ```
pub struct Condvar {
    seq: Butex,
}

/// Whether a timed [`Condvar`] wait returned because its time was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout elapsed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    crate::loom::const_fn_unless_loom! {
        /// A condition variable with no waiters.
        pub const fn new() -> Self {
            Condvar { seq: Butex::new(0) }
        }
    }

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        self.seq.value().fetch_add(1, Ordering::Relaxed);
        self.seq.wake_one_queued();
    }

    /// Wakes every waiter. (They then contend for the mutex one by one;
    /// bRPC requeues them onto the mutex's butex instead, which our butex
    /// does not offer yet.)
    pub fn notify_all(&self) {
        self.seq.value().fetch_add(1, Ordering::Relaxed);
        self.seq.wake_all();
    }

    /// Unlocks `guard`'s mutex, waits for a notification, relocks and gives
    /// the guard back. May return spuriously. Not interruptible: an
    /// interrupt stays pending (see [`wait_interruptible`](Self::wait_interruptible)).
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_with(guard, &mut Wait::forever()).0
    }

    /// Waits while `condition` returns true for the protected data, and
    /// returns with the lock held and the condition false.
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        let mut w = Wait::forever();
        while condition(&mut *guard) {
            guard = self.wait_with(guard, &mut w).0;
        }
        guard
    }

    /// Like [`wait`](Self::wait), for at most `timeout`.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_deadline_opt(guard, deadline_after(timeout))
    }

    /// Like [`wait`](Self::wait), until `deadline` at most.
    pub fn wait_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_deadline_opt(guard, Some(deadline))
    }

    fn wait_deadline_opt<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let (g, r) = self.wait_with(guard, &mut Wait::new(deadline, false));
        (g, WaitTimeoutResult(r == Err(Stop::TimedOut)))
    }

    /// Like [`wait_while`](Self::wait_while), for at most `timeout`. On
    /// timeout the condition may still be true; the result says so.
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let mut w = Wait::new(deadline_after(timeout), false);
        while condition(&mut *guard) {
            let (g, r) = self.wait_with(guard, &mut w);
            guard = g;
            if r.is_err() {
                let still = condition(&mut *guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Like [`wait`](Self::wait), but an [interrupt](crate::interrupt) of
    /// the calling fiber ends the wait with `Err(Interrupted)` (the lock is
    /// held again in both cases).
    pub fn wait_interruptible<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
    ) -> (MutexGuard<'a, T>, Result<(), Interrupted>) {
        let (g, r) = self.wait_with(guard, &mut Wait::new(None, true));
        (g, r.map_err(|_| Interrupted))
    }

    fn wait_with<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        w: &mut Wait,
    ) -> (MutexGuard<'a, T>, Result<(), Stop>) {
        // Read under the mutex: a notifier that changed the state under the
        // same mutex after we unlock bumps it past this value.
        let seq = self.seq.value().load(Ordering::Relaxed);
        let mutex = guard.unlock_into_mutex();
        let r = w.wait(&self.seq, seq);
        // Relock without a deadline or interrupt: the guard must come back
        // (std does the same); the lock is held only briefly by others.
        mutex.raw().lock();
        (MutexGuard::relocked(mutex), r)
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
