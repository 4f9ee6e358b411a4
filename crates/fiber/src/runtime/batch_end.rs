//! Work a fiber leaves for the end of its worker's batch: calls made when
//! the worker next runs out of ready fibers, or at its next periodic look
//! at I/O (every `GLOBAL_CHECK_INTERVAL` fiber runs), whichever is first.

use std::cell::UnsafeCell;

/// One worker's calls waiting for the end of its batch.
#[derive(Default)]
pub(crate) struct BatchEnd {
    /// Only the worker's own thread touches it (see `push`, `run`).
    calls: UnsafeCell<Vec<fn()>>,
    /// Spare capacity for the next batch: `run` swaps the list out
    /// before calling, so a call may ask for the next batch's.
    spare: UnsafeCell<Vec<fn()>>,
}

impl BatchEnd {
    /// Asks for `f` to be called at the end of this batch.
    ///
    /// Must be called on the worker's thread.
    #[inline]
    pub(crate) fn push(&self, f: fn()) {
        // SAFETY: only the worker's thread touches `calls`, and no borrow
        // of it is live: `run` holds none while it calls.
        unsafe { (*self.calls.get()).push(f) }
    }

    /// Whether no call waits.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: as `push`; a length read.
        unsafe { (*self.calls.get()).is_empty() }
    }

    /// Makes the calls asked for so far, oldest first. One asked for by a
    /// call waits for the next `run`.
    ///
    /// Must be called on the worker's thread, outside any fiber.
    pub(crate) fn run(&self) {
        if self.is_empty() {
            return;
        }
        // SAFETY: as `push`; both borrows end before the calls.
        let mut calls = unsafe {
            let spare = std::mem::take(&mut *self.spare.get());
            std::mem::replace(&mut *self.calls.get(), spare)
        };
        for f in calls.drain(..) {
            f();
        }
        // SAFETY: as `push`; the calls are done.
        unsafe { *self.spare.get() = calls }
    }
}
