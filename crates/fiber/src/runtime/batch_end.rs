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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u32> = const { Cell::new(0) };
        static LIST: Cell<*const BatchEnd> = const { Cell::new(std::ptr::null()) };
    }

    fn add_one() {
        COUNT.with(|c| c.set(c.get() + 1));
    }

    fn add_ten_and_ask_again() {
        COUNT.with(|c| c.set(c.get() + 10));
        // SAFETY: the test keeps the list alive while it runs.
        let list = unsafe { &*LIST.with(|l| l.get()) };
        list.push(add_one);
    }

    #[test]
    fn calls_run_once_and_one_asked_for_meanwhile_waits_for_the_next_run() {
        let b = BatchEnd::default();
        LIST.with(|l| l.set(&b));
        b.run();
        assert_eq!(COUNT.with(|c| c.get()), 0);
        b.push(add_one);
        b.push(add_ten_and_ask_again);
        b.run();
        assert_eq!(COUNT.with(|c| c.get()), 11);
        assert!(!b.is_empty(), "the call asked for during the run waits");
        b.run();
        assert_eq!(COUNT.with(|c| c.get()), 12);
        b.run();
        assert_eq!(COUNT.with(|c| c.get()), 12);
        LIST.with(|l| l.set(std::ptr::null()));
    }
}
