//! A counting semaphore for fibers and threads.
//!
//! The butex value is the number of available permits. `acquire` takes one
//! with a CAS when the count is positive, else waits while it is zero.
//! `release(n)` adds `n` and wakes up to `n` waiters — but only if the
//! separate `waiters` count says someone is in the slow path, so an
//! uncontended release is one RMW and one load. `waiters` is incremented
//! before a waiter's last look at the count, and read after the release's
//! add; both sides are `SeqCst`, so (Dekker) either the waiter sees the new
//! permits or the releaser sees the waiter. The butex re-checks the value
//! under its lock, so a wake can never fall between "saw zero" and "asleep".

use super::{deadline_after, Stop, Wait};
use crate::butex::Butex;
use crate::Interrupted;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A counting semaphore: [`acquire`](Self::acquire) takes a permit (waiting
/// while none is left), dropping the returned [`SemaphorePermit`] or calling
/// [`release`](Self::release) gives permits back.
///
/// ```
/// use fibrpc_fiber::sync::Semaphore;
///
/// let s = Semaphore::new(2);
/// let a = s.acquire();
/// let _b = s.acquire();
/// assert!(s.try_acquire().is_none());
/// drop(a);
/// assert!(s.try_acquire().is_some());
/// ```
pub struct Semaphore {
    permits: Butex,
    /// Callers inside the slow path of an acquire.
    waiters: AtomicU32,
}

/// One permit of a [`Semaphore`], given back when dropped (or kept for good
/// with [`forget`](Self::forget)).
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

/// Most permits a semaphore can hold.
const MAX_PERMITS: u32 = u32::MAX >> 1;

impl Semaphore {
    crate::loom::const_fn_unless_loom! {
        /// A semaphore with `permits` permits (at most `u32::MAX / 2`).
        pub const fn new(permits: u32) -> Self {
            assert!(permits <= MAX_PERMITS, "too many permits");
            Semaphore {
                permits: Butex::new(permits),
                waiters: AtomicU32::new(0),
            }
        }
    }

    /// Permits available right now (a snapshot).
    pub fn available_permits(&self) -> u32 {
        self.permits.value().load(Ordering::Relaxed)
    }

    #[inline]
    fn try_take(&self) -> bool {
        let v = self.permits.value();
        let mut cur = v.load(Ordering::Relaxed);
        while cur > 0 {
            match v.compare_exchange_weak(cur, cur - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(e) => cur = e,
            }
        }
        false
    }

    /// Takes a permit if one is available now.
    #[inline]
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_take().then(|| SemaphorePermit { sem: self })
    }

    /// Takes a permit, waiting while there is none. Not interruptible.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        let _ = self.acquire_with(&mut Wait::forever());
        SemaphorePermit { sem: self }
    }

    /// Takes a permit, waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_opt(deadline_after(timeout))
    }

    /// Takes a permit, waiting until `deadline` at most.
    pub fn acquire_deadline(&self, deadline: Instant) -> Option<SemaphorePermit<'_>> {
        self.acquire_opt(Some(deadline))
    }

    fn acquire_opt(&self, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        let r = self.acquire_with(&mut Wait::new(deadline, false));
        r.ok().map(|()| SemaphorePermit { sem: self })
    }

    /// Takes a permit unless the calling fiber is interrupted first.
    pub fn acquire_interruptible(&self) -> Result<SemaphorePermit<'_>, Interrupted> {
        match self.acquire_with(&mut Wait::new(None, true)) {
            Ok(()) => Ok(SemaphorePermit { sem: self }),
            Err(_) => Err(Interrupted),
        }
    }

    fn acquire_with(&self, w: &mut Wait) -> Result<(), Stop> {
        if self.try_take() {
            return Ok(());
        }
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let r = loop {
            // SeqCst: ordered after our `waiters` increment (see module doc).
            if self.permits.value().load(Ordering::SeqCst) > 0 {
                if self.try_take() {
                    break Ok(());
                }
                continue;
            }
            if let Err(e) = w.wait(&self.permits, 0) {
                // A last try: permits that arrived as we gave up are ours
                // (and an interrupt that lost that race stays pending).
                if self.try_take() {
                    if e == Stop::Interrupted {
                        w.keep_interrupt();
                    }
                    break Ok(());
                }
                break Err(e);
            }
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        r
    }

    /// Adds `n` permits, waking up to `n` waiters.
    ///
    /// # Panics
    /// If the count would exceed `u32::MAX / 2`.
    pub fn release(&self, n: u32) {
        if n == 0 {
            return;
        }
        let v = self.permits.value();
        let mut cur = v.load(Ordering::Relaxed);
        loop {
            let new = cur
                .checked_add(n)
                .filter(|&x| x <= MAX_PERMITS)
                .expect("semaphore permit count overflow");
            // SeqCst: ordered before our read of `waiters` (module doc).
            match v.compare_exchange_weak(cur, new, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => break,
                Err(e) => cur = e,
            }
        }
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.permits.wake_n(n as usize);
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .finish()
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken: it is not given back on drop.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.release(1);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
