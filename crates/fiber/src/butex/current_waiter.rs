//! How [`crate::interrupt`] reaches the waiter node of a parked fiber
//! (bRPC's `current_waiter`), and how the fiber knows it may leave its
//! wait, after which the node (on its stack) is gone.
//!
//! The fiber publishes its node before it parks and withdraws it when it
//! resumes; an interrupter registers as a visitor, then reads the node. If
//! the fiber's withdrawal and the visitor's read could each miss the
//! other, the visitor would use a dead node. Ordering them needs a fence
//! on both sides (Dekker), and a full fence on the fiber's side, right
//! after the switch that resumed it, was the single most expensive step of
//! a wait (20 of 73 ns in the same-worker ping-pong). Interrupts are rare
//! and waits are not, so the pair is asymmetric: the fiber's fence is a
//! compiler fence and the interrupter runs `membarrier(2)`
//! (`sys::membarrier`), falling back to two real fences where the kernel
//! lacks it.

use crate::loom::{AtomicPtr, AtomicU32};
use crate::sys::membarrier;
use std::sync::atomic::Ordering;

/// The node a fiber is waiting with, for interrupters.
pub(crate) struct CurrentWaiter<T> {
    node: AtomicPtr<T>,
    /// Interrupters that may be using `node` right now.
    visitors: AtomicU32,
}

impl<T> CurrentWaiter<T> {
    pub(crate) fn new() -> Self {
        CurrentWaiter {
            node: AtomicPtr::new(std::ptr::null_mut()),
            visitors: AtomicU32::new(0),
        }
    }

    /// Publishes the node of the wait the fiber is entering. It must stay
    /// alive until [`withdraw`](Self::withdraw) returns.
    pub(crate) fn publish(&self, node: *const T) {
        self.node.store(node as *mut T, Ordering::Release);
    }

    /// Whether a node is published: the fiber is in (or entering) a wait.
    /// Racy; for display.
    pub(crate) fn is_published(&self) -> bool {
        !self.node.load(Ordering::Relaxed).is_null()
    }

    /// Withdraws the published node. When this returns no visitor is
    /// using it or will reach it, so it may die.
    #[inline(always)]
    pub(crate) fn withdraw(&self) {
        self.node.store(std::ptr::null_mut(), Ordering::Relaxed);
        // Orders the store above before the load below, against `visit`'s
        // `heavy` fence: either the visitor reads null, or we see it.
        membarrier::light();
        let mut spins = 0u32;
        while self.visitors.load(Ordering::Acquire) != 0 {
            // A visitor holds the count across a `membarrier` call, which
            // can take a while: spin briefly, then give up the CPU.
            spins += 1;
            if spins < 64 {
                crate::loom::spin_loop();
            } else {
                crate::loom::thread_yield();
            }
        }
    }

    /// Calls `f` with the published node, if there is one; the node stays
    /// alive until `f` returns (its owner waits in `withdraw`).
    pub(crate) fn visit(&self, f: impl FnOnce(*const T)) {
        self.visitors.fetch_add(1, Ordering::Relaxed);
        // Orders our registration before our read of the node, against
        // `withdraw`'s `light` fence.
        membarrier::heavy();
        let node = self.node.load(Ordering::Acquire);
        if !node.is_null() {
            f(node);
        }
        // Release: our uses of the node happen before its owner leaves.
        self.visitors.fetch_sub(1, Ordering::Release);
    }
}
