//! The butex's lock: its critical sections are a few pointer writes.

use crate::loom::AtomicBool;
use std::sync::atomic::Ordering;

/// A test-and-test-and-set lock for the tiny critical sections of a butex.
/// Yields the thread after a short spin: on 2 vCPUs the holder may be
/// descheduled, and burning the other core would only delay it.
pub(crate) struct SpinLock(AtomicBool);

impl SpinLock {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        SpinLock(AtomicBool::new(false))
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        SpinLock(AtomicBool::new(false))
    }

    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        loop {
            while self.0.load(Ordering::Relaxed) {
                if spins < 100 {
                    crate::loom::spin_loop();
                    spins += 1;
                } else {
                    crate::loom::thread_yield();
                }
            }
            if self
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}
