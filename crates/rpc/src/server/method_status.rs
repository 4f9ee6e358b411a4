//! Per-method counters (bRPC's `MethodStatus`): plain atomics now; the
//! bvar issue exposes them on the console.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one method.
#[derive(Debug, Default)]
pub struct MethodStatus {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    latency_max_us: AtomicU64,
    concurrency: AtomicU64,
}

/// A copy of a method's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodStats {
    /// Calls finished (successful or not).
    pub calls: u64,
    /// Calls that finished with an error.
    pub errors: u64,
    /// Sum of handler latencies, microseconds.
    pub latency_sum_us: u64,
    /// Largest handler latency, microseconds.
    pub latency_max_us: u64,
    /// Calls running now.
    pub concurrency: u64,
}

impl MethodStats {
    /// Mean latency of the finished calls.
    pub fn mean_latency(&self) -> Duration {
        Duration::from_micros(self.latency_sum_us.checked_div(self.calls).unwrap_or(0))
    }
}

impl MethodStatus {
    pub(crate) fn on_start(&self) {
        self.concurrency.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_end(&self, ok: bool, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.concurrency.fetch_sub(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> MethodStats {
        MethodStats {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_sum_us: self.latency_sum_us.load(Ordering::Relaxed),
            latency_max_us: self.latency_max_us.load(Ordering::Relaxed),
            concurrency: self.concurrency.load(Ordering::Relaxed),
        }
    }
}
