//! One of the timer thread's hashed buckets: where `add` drops new tasks.
//!
//! Adders from different threads hash to different buckets, so they rarely
//! contend on a lock; the timer thread visits every bucket once per loop.

use std::sync::{Mutex, MutexGuard};

/// A scheduled task as the buckets and the heap see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// Nanoseconds since the timer thread's base instant.
    pub(crate) deadline: u64,
    /// Full slot version the task was armed with.
    pub(crate) version: u64,
    /// Slot index.
    pub(crate) index: u32,
}

// `BinaryHeap` is a max-heap: reverse the deadline order to get a min-heap.
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.deadline.cmp(&self.deadline)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Entry {}

/// What the bucket lock protects.
#[derive(Default)]
pub(crate) struct BucketState {
    /// Tasks added since the timer thread last pulled this bucket.
    pub(crate) tasks: Vec<Entry>,
    /// Earliest deadline in `tasks` (`u64::MAX` if none): an add that is not
    /// earlier than this cannot need to wake the timer thread, because the add
    /// that set it already made sure the thread wakes by then.
    pub(crate) nearest: u64,
    /// Free slot indices this bucket hands out (slots return to their home).
    pub(crate) free: Vec<u32>,
    /// Timers added through this bucket, ever.
    pub(crate) added: u64,
    /// Timers armed through this bucket and cancelled, ever.
    pub(crate) cancelled: u64,
    /// Set when the timer thread stopped: adds are refused.
    pub(crate) closed: bool,
}

/// A bucket, padded to its own cache lines so neighbours do not false-share.
#[repr(align(128))]
pub(crate) struct Bucket {
    state: Mutex<BucketState>,
}

impl Bucket {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(BucketState {
                nearest: u64::MAX,
                ..BucketState::default()
            }),
        }
    }

    /// Locks the bucket. Nothing panics while holding it (callbacks never run
    /// under it), but if something did, the state is still consistent: take
    /// it over rather than propagate the poison.
    pub(crate) fn lock(&self) -> MutexGuard<'_, BucketState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
