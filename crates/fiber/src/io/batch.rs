//! A dispatcher's batch counter: odd while its poller handles a batch of
//! events (looks entries up by token and touches them), even otherwise.
//! The entry slab's trim waits on it before releasing a segment's pages.
//!
//! The handshake is store buffering with a `SeqCst` fence on each side:
//! the poller makes the count odd, fences, then reads an entry's version;
//! the trim bumps the versions of the slots it takes (when they were
//! released), fences, then reads the count. So either the trim sees the
//! batch running and waits for it to end, or the batch sees the bumped
//! versions and touches none of those entries.

use crate::loom::{fence, AtomicU64};
use std::sync::atomic::Ordering;

/// Counts a poller's batches (see the module docs).
pub(crate) struct BatchCounter(AtomicU64);

/// Ends the batch (makes the count even) when dropped, so a reader hook
/// that panics out of a batch does not leave it odd: an odd count left
/// behind would stall every later trim.
pub(crate) struct BatchEnd<'a>(&'a AtomicU64);

impl BatchCounter {
    /// No batch so far.
    pub(crate) fn new() -> Self {
        BatchCounter(AtomicU64::new(0))
    }

    /// Begins a batch, before the poller looks any entry up.
    pub(crate) fn begin(&self) -> BatchEnd<'_> {
        self.0.fetch_add(1, Ordering::SeqCst);
        // Pairs with the trim's fence (module docs).
        fence(Ordering::SeqCst);
        BatchEnd(&self.0)
    }

    /// Waits until no batch that began before the call is running; the
    /// caller fenced (`SeqCst`) after bumping the versions it cares
    /// about. `give_up` runs between looks (it may sleep) and ends the
    /// wait, returning false, when it returns true.
    pub(crate) fn wait_done(&self, mut give_up: impl FnMut() -> bool) -> bool {
        let b = self.0.load(Ordering::SeqCst);
        if b & 1 == 0 {
            return true;
        }
        // Acquire: the batch's touches of entries happen before what the
        // caller does next (releasing their pages).
        while self.0.load(Ordering::Acquire) == b {
            if give_up() {
                return false;
            }
        }
        true
    }
}

impl Drop for BatchEnd<'_> {
    fn drop(&mut self) {
        // Release: pairs with `wait_done`'s Acquire.
        self.0.fetch_add(1, Ordering::Release);
    }
}
