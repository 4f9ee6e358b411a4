//! Per-method counters (bRPC's `MethodStatus`), on bvar: a
//! [`LatencyRecorder`] (count, qps, latency average, max and percentiles
//! over the last 10 s), an error [`Adder`], an all-time latency sum and a
//! concurrency gauge. The window's figures come from samples taken once
//! a second, so a call that ended less than a second ago, or more than
//! the window ago, is not in them; the all-time mean
//! ([`MethodStats::latency_avg_us_total`]) counts every call at once. Once
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
    /// Sum of every finished call's latency, microseconds.
    latency_sum_us: Adder,
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
            latency_sum_us: Adder::new(),
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
    /// Mean handler latency over the window, microseconds (0 while the
    /// window holds no sampled call; see
    /// [`mean_latency`](Self::mean_latency)).
    pub latency_us: u64,
    /// Mean handler latency of every finished call, ever, microseconds:
    /// right even when no call ended inside the window.
    pub latency_avg_us_total: u64,
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
    /// Mean latency over the window, or the all-time mean while the
    /// window holds no sampled call (calls that ended less than a second
    /// ago, or longer ago than the window).
    pub fn mean_latency(&self) -> Duration {
        if self.latency_us > 0 {
            Duration::from_micros(self.latency_us)
        } else {
            self.lifetime_mean_latency()
        }
    }

    /// Mean latency of every finished call, ever
    /// ([`latency_avg_us_total`](Self::latency_avg_us_total)).
    pub fn lifetime_mean_latency(&self) -> Duration {
        Duration::from_micros(self.latency_avg_us_total)
    }
}

impl MethodStatus {
    /// Requests in the method now.
    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency.load(Ordering::Relaxed).max(0) as usize
    }

    pub(crate) fn on_start(&self) {
        self.concurrency.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn on_end(&self, ok: bool, latency: Duration) {
        let us = latency.as_micros().min(i64::MAX as u128) as i64;
        self.concurrency.fetch_sub(1, Ordering::Relaxed);
        self.latency.record(us);
        self.latency_sum_us.add(us);
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
        let calls = u(l.count());
        MethodStats {
            calls,
            errors: u(self.errors.get_value()),
            concurrency: u(self.concurrency.load(Ordering::Relaxed)),
            qps: u(l.qps()),
            latency_us: u(l.latency()),
            latency_avg_us_total: u(self.latency_sum_us.get_value())
                .checked_div(calls)
                .unwrap_or(0),
            latency_max_us: u(l.max_latency()),
            latency_p50_us: u(l.latency_percentile(0.5)),
            latency_p99_us: u(l.latency_percentile(0.99)),
            latency_p999_us: u(l.latency_percentile(0.999)),
        }
    }
}
