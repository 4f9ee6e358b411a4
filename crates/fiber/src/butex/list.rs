//! An intrusive doubly-linked list of waiter nodes (FIFO).

use super::Waiter;
use std::ptr;

/// Head and tail of the waiters; nodes link through their `prev`/`next`.
pub(crate) struct WaiterList {
    head: *const Waiter,
    tail: *const Waiter,
}

impl WaiterList {
    pub(crate) const fn new() -> Self {
        WaiterList {
            head: ptr::null(),
            tail: ptr::null(),
        }
    }

    /// Appends `node`.
    ///
    /// # Safety
    /// `node` is alive and unlinked; every linked node stays alive until it
    /// is removed. The caller holds the owning butex's lock.
    pub(crate) unsafe fn push_back(&mut self, node: &Waiter) {
        node.next.set(ptr::null());
        node.prev.set(self.tail);
        if self.tail.is_null() {
            self.head = node;
        } else {
            // SAFETY: linked nodes are alive (contract).
            unsafe { (*self.tail).next.set(node) };
        }
        self.tail = node;
    }

    /// Removes and returns the oldest node.
    pub(crate) fn pop_front(&mut self) -> Option<*const Waiter> {
        let n = self.head;
        if n.is_null() {
            return None;
        }
        // SAFETY: linked nodes are alive (push_back's contract).
        unsafe { self.remove(&*n) };
        Some(n)
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    /// `node` is linked in this list.
    pub(crate) unsafe fn remove(&mut self, node: &Waiter) {
        let (p, n) = (node.prev.get(), node.next.get());
        if p.is_null() {
            self.head = n;
        } else {
            // SAFETY: neighbours of a linked node are linked, hence alive.
            unsafe { (*p).next.set(n) };
        }
        if n.is_null() {
            self.tail = p;
        } else {
            // SAFETY: as above.
            unsafe { (*n).prev.set(p) };
        }
        node.prev.set(ptr::null());
        node.next.set(ptr::null());
    }
}
