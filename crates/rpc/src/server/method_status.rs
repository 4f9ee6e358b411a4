//! Per-method counters (bRPC's `MethodStatus`), on bvar: a
//! [`LatencyRecorder`] (count, qps, latency average, max and percentiles
//! over the last 10 s), an error [`Adder`] and a concurrency gauge. Once
//! the server runs they are exposed as bRPC names them:
//! `rpc_server_<port>_<service>_<method>_latency`, `_qps`, `_count`,
//! `_error`, `_concurrency`, ...

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_bvar::{Adder, ExposeError, LatencyRecorder, PassiveStatus};

/// Counters of one method.
pub struct MethodStatus {
    latency: LatencyRecorder,
    errors: Adder,
    concurrency: Arc<AtomicI64>,
    /// The concurrency as a bvar, while exposed.
    concurrency_var: PassiveStatus,
}

impl std::fmt::Debug for MethodStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodStatus")
            .field("stats", &self.snapshot())
            .finish()
    }
}

impl Default for MethodStatus {
    fn default() -> Self {
        let concurrency = Arc::new(AtomicI64::new(0));
        let c = concurrency.clone();
        MethodStatus {
            latency: LatencyRecorder::new(),
            errors: Adder::new(),
            concurrency,
            concurrency_var: PassiveStatus::new(move || c.load(Ordering::Relaxed)),
        }
    }
}

/// A copy of a method's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MethodStats {
    /// Calls finished (successful or not), ever.
    pub calls: u64,
    /// Calls that finished with an error, ever.
    pub errors: u64,
    /// Calls running now.
    pub concurrency: u64,
    /// Calls per second over the window.
    pub qps: u64,
    /// Mean handler latency over the window, microseconds.
    pub latency_us: u64,
    /// Largest handler latency over the window, microseconds.
    pub latency_max_us: u64,
    /// Median latency over the window, microseconds.
    pub latency_p50_us: u64,
    /// 99th percentile, microseconds.
    pub latency_p99_us: u64,
    /// 99.9th percentile, microseconds.
    pub latency_p999_us: u64,
}

impl MethodStats {
    /// Mean latency over the window.
    pub fn mean_latency(&self) -> Duration {
        Duration::from_micros(self.latency_us)
    }
}

impl MethodStatus {
    pub(crate) fn on_start(&self) {
        self.concurrency.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_end(&self, ok: bool, latency: Duration) {
        let us = latency.as_micros().min(i64::MAX as u128) as i64;
        self.concurrency.fetch_sub(1, Ordering::Relaxed);
        self.latency.record(us);
        if !ok {
            self.errors.add(1);
        }
    }

    /// Exposes the counters under `prefix`.
    pub(crate) fn expose(&self, prefix: &str) -> Result<(), ExposeError> {
        self.latency.expose(prefix)?;
        self.errors.expose(&format!("{prefix}_error"))?;
        self.concurrency_var
            .expose(&format!("{prefix}_concurrency"))
    }

    /// Hides what [`expose`](Self::expose) showed.
    pub(crate) fn hide(&self) {
        self.latency.hide();
        self.errors.hide();
        self.concurrency_var.hide();
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> MethodStats {
        let l = &self.latency;
        let u = |v: i64| v.max(0) as u64;
        MethodStats {
            calls: u(l.count()),
            errors: u(self.errors.get_value()),
            concurrency: u(self.concurrency.load(Ordering::Relaxed)),
            qps: u(l.qps()),
            latency_us: u(l.latency()),
            latency_max_us: u(l.max_latency()),
            latency_p50_us: u(l.latency_percentile(0.5)),
            latency_p99_us: u(l.latency_percentile(0.99)),
            latency_p999_us: u(l.latency_percentile(0.999)),
        }
    }
}
