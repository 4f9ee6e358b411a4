//! bRPC's `bthread::CountdownEvent`: wait until a counter reaches zero.
//!
//! The butex value is the counter. `signal` decrements it (saturating at
//! zero, where bRPC lets it go negative and logs) and wakes every waiter
//! when it reaches zero; `wait` waits while the counter is the non-zero
//! value it last saw. Intermediate signals change the value without waking
//! anyone; a waiter that raced one of them gets `WouldBlock` from the
//! butex and simply re-reads.

use super::{deadline_after, Stop, Wait};
use crate::butex::Butex;
use crate::Interrupted;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Waits for a number of events (bRPC's `CountdownEvent`): create it with
/// the count, have each participant [`signal`](Self::signal), and
/// [`wait`](Self::wait) returns once the count reached zero.
///
/// ```
/// use fibrpc_fiber::sync::CountdownEvent;
/// use std::sync::Arc;
///
/// let ev = Arc::new(CountdownEvent::new(3));
/// for _ in 0..3 {
///     let ev = ev.clone();
///     fibrpc_fiber::spawn(move || ev.signal(1));
/// }
/// ev.wait();
/// assert_eq!(ev.count(), 0);
/// ```
pub struct CountdownEvent {
    count: Butex,
}

impl CountdownEvent {
    crate::loom::const_fn_unless_loom! {
        /// An event that completes after `initial` signals (0: already
        /// complete).
        pub const fn new(initial: u32) -> Self {
            CountdownEvent {
                count: Butex::new(initial),
            }
        }
    }

    /// The current count (a snapshot).
    pub fn count(&self) -> u32 {
        self.count.value().load(Ordering::Acquire)
    }

    /// Decrements the count by `k` (not below zero); wakes all waiters if
    /// it reaches zero. Signalling a completed event does nothing.
    pub fn signal(&self, k: u32) {
        let v = self.count.value();
        // AcqRel: the signaller's earlier writes are seen by the waiters
        // (Release), and the one who completes the count sees everybody's.
        let prev = v
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c > 0).then(|| c.saturating_sub(k))
            })
            .unwrap_or(0);
        if prev > 0 && prev <= k {
            self.count.wake_all();
        }
    }

    /// Increments the count by `k` (bRPC's `add_count`), e.g. for work
    /// discovered after the event was created.
    ///
    /// # Panics
    /// On overflow of the `u32` count.
    pub fn add_count(&self, k: u32) {
        self.count
            .value()
            .fetch_update(Ordering::Release, Ordering::Relaxed, |c| c.checked_add(k))
            .expect("CountdownEvent count overflow");
    }

    /// Sets the count to `n` (bRPC's `reset`), for reuse. Waiters of the
    /// previous round that have not yet observed zero will wait for the
    /// new round; if `n` is 0 they are released.
    pub fn reset(&self, n: u32) {
        self.count.value().store(n, Ordering::Release);
        if n == 0 {
            self.count.wake_all();
        }
    }

    /// Waits until the count is zero. Not interruptible.
    pub fn wait(&self) {
        let _ = self.wait_with(&mut Wait::forever());
    }

    /// Waits until the count is zero or `deadline` passes (bRPC's
    /// `timed_wait`). True if the count reached zero.
    pub fn timed_wait(&self, deadline: Instant) -> bool {
        self.wait_with(&mut Wait::new(Some(deadline), false))
            .is_ok()
    }

    /// Waits until the count is zero, for at most `timeout`. True if the
    /// count reached zero.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_with(&mut Wait::new(deadline_after(timeout), false))
            .is_ok()
    }

    /// Waits until the count is zero unless the calling fiber is
    /// interrupted first.
    pub fn wait_interruptible(&self) -> Result<(), Interrupted> {
        self.wait_with(&mut Wait::new(None, true))
            .map_err(|_| Interrupted)
    }

    fn wait_with(&self, w: &mut Wait) -> Result<(), Stop> {
        loop {
            let seen = self.count.value().load(Ordering::Acquire);
            if seen == 0 {
                return Ok(());
            }
            if let Err(e) = w.wait(&self.count, seen) {
                if self.count() == 0 {
                    // Completed as we gave up: report success, and keep an
                    // interrupt that lost the race pending.
                    if e == Stop::Interrupted {
                        w.keep_interrupt();
                    }
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
}

impl fmt::Debug for CountdownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountdownEvent")
            .field("count", &self.count())
            .finish()
    }
}
