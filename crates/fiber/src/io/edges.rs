//! A readiness edge counter: the butex a descriptor's waiters block on,
//! with a bit that says whether anyone may be waiting.
//!
//! Why the bit: an edge-triggered socket reports every event with all its
//! ready bits, so each input edge bumps the write counter too, which
//! almost nobody waits on (a writer waits only when the socket's buffer is
//! full). A plain butex bump is an atomic add and then the waiter list's
//! lock, taken and released to find the list empty: two locked
//! instructions per event on the dispatcher, one of them wasted. With the
//! bit, an edge nobody waits for costs one.
//!
//! Layout: bit 0 is `WAITED`, the edge count is in the bits above it. A
//! waiter sets `WAITED` before it links, and links only while the value
//! still has it; a bump clears it in the same atomic instruction that
//! advances the count, and takes the lock to wake only if it was set. So a
//! waiter is either seen by the bump that clears its bit (which then wakes
//! it under the lock, or makes its link fail because the value moved), or
//! it sets the bit after that bump and finds the count moved past its
//! ticket. A waiter that timed out leaves the bit set: the next bump takes
//! the lock once for nothing.

use crate::butex::{Butex, WaitError};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Someone may be linked on the butex (or about to link).
const WAITED: u32 = 1;
/// One edge.
const EDGE: u32 = 2;

/// Counts a descriptor's readiness edges of one kind (read or write).
///
/// All-zero bytes are a valid counter (see `entry`'s module docs).
pub(crate) struct Edges(Butex);

impl Edges {
    /// A counter at zero (the slab's entries are zeroed memory instead).
    pub(crate) fn new() -> Self {
        Edges(Butex::new(0))
    }

    /// The current edge count, as a ticket for [`wait`](Self::wait).
    pub(crate) fn ticket(&self) -> u32 {
        self.0.value().load(Ordering::Acquire) & !WAITED
    }

    /// Counts an edge and wakes whoever waits for one.
    pub(crate) fn bump(&self) {
        // One locked instruction: count the edge and clear `WAITED`.
        let old = self
            .0
            .value()
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                Some((v & !WAITED).wrapping_add(EDGE))
            })
            .expect("the update always succeeds");
        if old & WAITED != 0 {
            self.0.wake_all();
        }
    }

    /// Blocks until an edge was counted after `ticket` was taken, or
    /// `deadline` passes, or the fiber is interrupted. May return `Ok`
    /// spuriously: callers retry their I/O.
    pub(crate) fn wait(&self, ticket: u32, deadline: Option<Instant>) -> Result<(), WaitError> {
        let v = self.0.value().fetch_or(WAITED, Ordering::AcqRel);
        if v & !WAITED != ticket {
            return Ok(());
        }
        match self.0.wait(ticket | WAITED, deadline) {
            // The value moved before we slept: only a bump changes it
            // after our `fetch_or`, and a bump counts an edge.
            Err(WaitError::WouldBlock) => Ok(()),
            r => r,
        }
    }
}

/// The ticket one edge after `ticket` (for the tests).
#[cfg(test)]
pub(crate) fn next(ticket: u32) -> u32 {
    ticket.wrapping_add(EDGE)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_bump_nobody_waits_for_moves_the_ticket_and_leaves_no_bit() {
        let e = Edges::new();
        let t = e.ticket();
        e.bump();
        assert_eq!(e.ticket(), next(t));
        assert_eq!(e.0.value().load(Ordering::Relaxed) & WAITED, 0);
        // The edge is seen at once.
        assert_eq!(e.wait(t, None), Ok(()));
    }

    #[test]
    fn a_timed_out_waiter_leaves_the_bit_and_the_next_bump_clears_it() {
        let e = Edges::new();
        let t = e.ticket();
        let r = e.wait(t, Some(Instant::now() + Duration::from_millis(5)));
        assert_eq!(r, Err(WaitError::TimedOut));
        assert_eq!(e.ticket(), t, "the bit is not part of the ticket");
        e.bump();
        assert_eq!(e.ticket(), next(t));
        assert_eq!(e.0.value().load(Ordering::Relaxed) & WAITED, 0);
    }

    #[test]
    fn a_thread_waiter_is_woken_by_one_bump() {
        let e = Arc::new(Edges::new());
        let t = e.ticket();
        let e2 = e.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(e2.wait(t, None)));
        // Most likely linked by now; either way one bump must end the wait.
        std::thread::sleep(Duration::from_millis(20));
        e.bump();
        let r = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(r, Ok(Ok(())), "the waiter slept through the edge");
    }

    #[test]
    fn the_count_wraps() {
        let e = Edges::new();
        e.0.value().store(u32::MAX, Ordering::Relaxed);
        e.bump();
        assert_eq!(e.ticket(), 0);
    }
}
