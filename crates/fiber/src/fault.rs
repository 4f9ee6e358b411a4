//! Fault injection, for tests of what happens when the runtime runs out
//! of resources (a fiber that cannot start must fail its work loudly, not
//! drop it).
//!
//! Cost when unused: one relaxed load of a global per fiber start.

use std::sync::atomic::{AtomicUsize, Ordering};

static STACK_FAILURES: AtomicUsize = AtomicUsize::new(0);

/// The next `n` fibers that workers start fail as if no stack could be
/// mapped for them (their closures are dropped unrun and their join
/// handles report the error). Adds to failures still pending.
pub fn fail_next_stacks(n: usize) {
    STACK_FAILURES.fetch_add(n, Ordering::Relaxed);
}

/// Injected failures not yet used.
pub fn pending_stack_failures() -> usize {
    STACK_FAILURES.load(Ordering::Relaxed)
}

/// Takes one injected failure, if any is pending.
#[inline]
pub(crate) fn take_stack_failure() -> bool {
    STACK_FAILURES.load(Ordering::Relaxed) != 0
        && STACK_FAILURES
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
}
