//! Scheduler counters, per worker and in total.
//!
//! Each counter has a single writer (its worker), so updates are a relaxed
//! load and store — no read-modify-write on the hot path — and readers on
//! other threads see a recent value.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters owned by one worker.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    pub(crate) switches: Counter,
    pub(crate) steals: Counter,
    pub(crate) signals: Counter,
    pub(crate) parks: Counter,
    pub(crate) idle_yields: Counter,
    pub(crate) created: Counter,
    pub(crate) exited: Counter,
    pub(crate) stacks_mapped: Counter,
    pub(crate) start_failures: Counter,
}

/// A single-writer counter.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds one. Only the owning worker calls this.
    #[inline]
    pub(crate) fn incr(&self) {
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    /// The current value, from any thread.
    pub(crate) fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds `n` from any thread (slow path: shared counters).
    pub(crate) fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A snapshot of one worker's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Context switches into fibers.
    pub switches: u64,
    /// Tasks taken from other workers' queues.
    pub steals: u64,
    /// Idle workers this worker woke.
    pub signals: u64,
    /// Times this worker went to sleep.
    pub parks: u64,
    /// Times this worker, out of work, yielded its CPU
    /// ([`Builder::idle_yield_interval`]).
    ///
    /// [`Builder::idle_yield_interval`]: crate::RuntimeBuilder::idle_yield_interval
    pub idle_yields: u64,
    /// Fibers created from this worker.
    pub created: u64,
    /// Fibers that ended on this worker.
    pub exited: u64,
    /// Stacks this worker had to map because the pools were empty.
    pub stacks_mapped: u64,
    /// Fibers that could not start on this worker (no stack could be
    /// mapped): their closures were dropped unrun.
    pub start_failures: u64,
    /// Started fibers pinned to this worker and not ended yet (a gauge, not
    /// a counter: the load that first runs are balanced by).
    pub pinned: u64,
    /// How long the fiber running on this worker has run without switching
    /// out, in milliseconds, if that is past the runtime's blocked-worker
    /// threshold ([`Builder::blocked_worker_threshold`]); 0 otherwise. In
    /// [`RuntimeStats::total`], the largest over the workers.
    ///
    /// [`Builder::blocked_worker_threshold`]: crate::RuntimeBuilder::blocked_worker_threshold
    pub blocked_ms: u64,
    /// Times a fiber was seen running on this worker for longer than the
    /// threshold (one per incident, however long it lasts).
    pub blocked_incidents: u64,
}

impl WorkerStats {
    fn add(&mut self, o: &WorkerStats) {
        self.switches += o.switches;
        self.steals += o.steals;
        self.signals += o.signals;
        self.parks += o.parks;
        self.idle_yields += o.idle_yields;
        self.created += o.created;
        self.exited += o.exited;
        self.stacks_mapped += o.stacks_mapped;
        self.start_failures += o.start_failures;
        self.pinned += o.pinned;
        self.blocked_ms = self.blocked_ms.max(o.blocked_ms);
        self.blocked_incidents += o.blocked_incidents;
    }
}

impl WorkerCounters {
    /// The owner's switch count: unchanged means it is still running the
    /// same fiber (what the LIFO slot's watchers test, see `lifo`).
    pub(crate) fn switches_now(&self) -> u64 {
        self.switches.now()
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            switches: self.switches.get(),
            steals: self.steals.get(),
            signals: self.signals.get(),
            parks: self.parks.get(),
            idle_yields: self.idle_yields.get(),
            created: self.created.get(),
            exited: self.exited.get(),
            stacks_mapped: self.stacks_mapped.get(),
            start_failures: self.start_failures.get(),
            pinned: 0,
            blocked_ms: 0,
            blocked_incidents: 0,
        }
    }
}

/// A snapshot of a runtime's counters.
#[derive(Clone, Debug, Default)]
pub struct RuntimeStats {
    /// One entry per worker, in worker order.
    pub workers: Vec<WorkerStats>,
    /// Counts charged to threads that are not workers (spawns, signals).
    pub outside: WorkerStats,
}

impl RuntimeStats {
    /// The sum over all workers and outside threads.
    pub fn total(&self) -> WorkerStats {
        let mut t = self.outside;
        for w in &self.workers {
            t.add(w);
        }
        t
    }

    /// Fibers created and not yet ended.
    pub fn alive(&self) -> u64 {
        let t = self.total();
        t.created.saturating_sub(t.exited)
    }
}
