//! How a plain thread (not a fiber) blocks in a butex wait: an OS futex.

use crate::loom::AtomicU32;
use crate::sys::futex;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A per-thread token: `unpark` sets it, `park` consumes it or sleeps.
pub(crate) struct Parker {
    state: AtomicU32,
}

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;

impl Parker {
    /// This thread's parker (shared with wakers through the `Arc`, so an
    /// `unpark` never touches freed memory).
    pub(crate) fn current() -> Arc<Parker> {
        #[cfg(not(loom))]
        thread_local! {
            static PARKER: Arc<Parker> = Arc::new(Parker { state: AtomicU32::new(EMPTY) });
        }
        #[cfg(loom)]
        loom::thread_local! {
            static PARKER: Arc<Parker> = Arc::new(Parker { state: AtomicU32::new(EMPTY) });
        }
        PARKER.with(|p| p.clone())
    }

    /// Sleeps until notified or `deadline`. Returns true on timeout.
    /// Spurious returns are allowed; callers re-check.
    pub(crate) fn park(&self, deadline: Option<Instant>) -> bool {
        if self.state.swap(EMPTY, Ordering::Acquire) == NOTIFIED {
            return false;
        }
        let timeout = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return true;
                }
                Some(d - now)
            }
            None => None,
        };
        futex::wait(&self.state, EMPTY, timeout);
        self.state.swap(EMPTY, Ordering::Acquire);
        deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Wakes the thread (or makes its next `park` return at once).
    pub(crate) fn unpark(&self) {
        if self.state.swap(NOTIFIED, Ordering::Release) == EMPTY {
            futex::wake(&self.state, 1);
        }
    }
}
