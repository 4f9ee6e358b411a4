//! Counters of a timer thread, read through [`super::stats()`] or
//! [`super::TimerThread::stats`].

/// A snapshot of a timer thread's counters. Counters are summed from per-bucket
/// and per-thread parts that are not read atomically together, so under load
/// the fields can be off by the timers in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerStats {
    /// Timers added and neither run nor cancelled yet.
    pub scheduled: u64,
    /// Timers ever added.
    pub added: u64,
    /// Callbacks run or running (including those that panicked); counted
    /// as a callback starts.
    pub ran: u64,
    /// Timers cancelled before they ran.
    pub cancelled: u64,
    /// Callbacks that panicked (caught; the timer thread kept going).
    pub panicked: u64,
    /// Task slots allocated (the pool only grows; a steady add/cancel loop
    /// keeps reusing the same few).
    pub slots: u64,
    /// Entries queued in the buckets and the heap, including cancelled ones
    /// not yet discarded (what the memory of the queues is proportional to).
    pub queued: u64,
}
