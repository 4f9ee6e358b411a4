//! The pin word of one slab segment: readers that touch a slot beyond
//! its atomics pin its segment, and the trim releases a segment's pages
//! only while nobody pins it (see `task_slab`).
//!
//! One word per segment: the count of pins in the low bits and
//! [`RELEASED`] on top. A pin is a `fetch_add` that backs out if the
//! segment is released; a release is a CAS from 0 (no pins, not released),
//! so it and a pin exclude each other. The orderings: a reader's accesses
//! happen before its `unpin` (Release), which the release's CAS acquires
//! (through the release sequence of later pins and unpins), so the trim's
//! writes to the segment race with no read; and `reopen` (Release) is
//! acquired by every later successful pin, so readers see the revived
//! contents.

use crate::loom::AtomicU32;
use std::sync::atomic::Ordering;

/// In the word: the segment's pages are released (pins are refused).
const RELEASED: u32 = 1 << 31;

/// Pins of one segment, and whether it is released.
pub(crate) struct SegmentGate(AtomicU32);

impl SegmentGate {
    /// An open segment with no pins: a zero word, which is how the slab
    /// makes its table of gates (`zeroed_table`) outside loom models.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        SegmentGate(AtomicU32::new(0))
    }

    /// Takes a pin unless the segment is released.
    pub(crate) fn try_pin(&self) -> bool {
        // Acquire: sees what the `reopen` this pin follows published.
        if self.0.fetch_add(1, Ordering::Acquire) & RELEASED != 0 {
            self.0.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Drops a pin taken by [`try_pin`](Self::try_pin).
    pub(crate) fn unpin(&self) {
        // Release: the holder's reads happen before a later release.
        self.0.fetch_sub(1, Ordering::Release);
    }

    /// Marks the segment released if nobody pins it (and it is not
    /// released already); from then on pins are refused until
    /// [`reopen`](Self::reopen). A pin that is backing out makes this
    /// fail too: the trim tries again next time.
    pub(crate) fn try_release(&self) -> bool {
        self.0
            .compare_exchange(0, RELEASED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Lets pins in again, once the released segment's contents are whole.
    pub(crate) fn reopen(&self) {
        self.0.fetch_and(!RELEASED, Ordering::Release);
    }

    /// The raw word (for the model checks).
    #[cfg(all(test, loom))]
    pub(crate) fn word(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}
