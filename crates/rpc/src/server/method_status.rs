//! Per-method counters (bRPC's `MethodStatus`), on bvar: a
//! [`LatencyRecorder`] (count, qps, latency average, max and percentiles
//! over the last 10 s), an error [`Adder`], an all-time latency sum and a
//! concurrency gauge. The window's figures come from samples taken once
//! a second, so a call that ended less than a second ago, or more than
//! the window ago, is not in them; the all-time mean
//! ([`MethodStats::latency_avg_us_total`]) counts every call at once.
//!
//! Once the server runs they are exposed as labeled families
//! ([`MVariable`], bRPC's mbvar), one combination per method:
//! `rpc_server_method_latency{port="8000",service="example.EchoService",method="Echo"}`,
//! `rpc_server_method_qps{...}`, `_count`, `_max_latency`, `_latency_99`,
//! `rpc_server_method_error{...}` and `rpc_server_method_concurrency{...}`.
//! The families adopt the method's own handles, so a call updates them
//! with no lookup. `port` keeps two servers in one process apart.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fibrpc_bvar::{Adder, LatencyRecorder, MVariable, PassiveStatus};

use super::limiter::ConcurrencyLimiter;
use crate::{errno, RpcError};

/// The label names of the per-method families.
pub(crate) const METHOD_LABELS: [&str; 3] = ["port", "service", "method"];

/// The process-wide per-method families.
struct Families {
    latency: MVariable<LatencyRecorder>,
    errors: MVariable<Adder>,
    concurrency: MVariable<PassiveStatus>,
}

fn families() -> &'static Families {
    static FAMILIES: OnceLock<Families> = OnceLock::new();
    FAMILIES.get_or_init(|| Families {
        latency: MVariable::new("rpc_server_method", &METHOD_LABELS),
        errors: MVariable::new("rpc_server_method_error", &METHOD_LABELS),
        concurrency: MVariable::new("rpc_server_method_concurrency", &METHOD_LABELS),
    })
}

/// Counters of one method.
pub struct MethodStatus {
    latency: LatencyRecorder,
    errors: Adder,
    /// Sum of every finished call's latency, microseconds.
    latency_sum_us: Adder,
    concurrency: Arc<AtomicI64>,
    /// The concurrency as a bvar, while exposed.
    concurrency_var: PassiveStatus,
    /// The label values the counters are exposed with, while exposed.
    labels: Mutex<Option<[String; 3]>>,
    /// The method's concurrency limiter (`None`: unlimited).
    limiter: Option<Box<dyn ConcurrencyLimiter>>,
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
            labels: Mutex::new(None),
            limiter: None,
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
    /// The method's concurrency limit now (0: unlimited); an `auto`
    /// limiter's moves.
    pub max_concurrency: u64,
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

    /// Counters of a method limited by `limiter` (`None`: unlimited).
    pub(crate) fn with_limiter(limiter: Option<Box<dyn ConcurrencyLimiter>>) -> MethodStatus {
        MethodStatus {
            limiter,
            ..MethodStatus::default()
        }
    }

    /// Replaces the method's limiter.
    pub(crate) fn set_limiter(&mut self, limiter: Option<Box<dyn ConcurrencyLimiter>>) {
        self.limiter = limiter;
    }

    /// The kind of the method's concurrency limiter (`"unlimited"`
    /// without one).
    pub(crate) fn limiter_kind(&self) -> &'static str {
        self.limiter.as_ref().map_or("unlimited", |l| l.kind())
    }

    /// The method's concurrency limit now (0: unlimited).
    pub(crate) fn max_concurrency(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.max_concurrency())
    }

    /// A request enters the method: counted, or refused with `ELIMIT`
    /// (counted as a finished error) when its limiter says the method is
    /// full (bRPC's `MethodStatus::OnRequested`).
    pub(crate) fn on_requested(&self) -> Result<(), RpcError> {
        let cc = self.concurrency.fetch_add(1, Ordering::Relaxed) + 1;
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        if l.on_requested(cc.max(0) as usize) {
            return Ok(());
        }
        self.concurrency.fetch_sub(1, Ordering::Relaxed);
        self.latency.record(0);
        self.errors.add(1);
        Err(RpcError::new(
            errno::ELIMIT,
            format!(
                "rejected by the method's concurrency limiter (concurrency={cc}, max_concurrency={})",
                l.max_concurrency()
            ),
        ))
    }

    /// An admitted request ended with `error_code` (0: success) after
    /// `latency`.
    pub(crate) fn on_end(&self, error_code: i32, latency: Duration) {
        let us = latency.as_micros().min(i64::MAX as u128) as i64;
        self.concurrency.fetch_sub(1, Ordering::Relaxed);
        self.latency.record(us);
        self.latency_sum_us.add(us);
        if error_code != 0 {
            self.errors.add(1);
        }
        if let Some(l) = &self.limiter {
            l.on_responded(error_code, latency);
        }
    }

    /// Exposes the counters as the combination (`port`, `service`,
    /// `method`) of the per-method families. Fails if a family is full or
    /// already holds the combination with other counters.
    pub(crate) fn expose(&self, port: u16, service: &str, method: &str) -> Result<(), String> {
        self.hide();
        let port = port.to_string();
        let values = [port.as_str(), service, method];
        let f = families();
        let adopted = [
            f.latency
                .get_stats_with(&values, || self.latency.clone())
                .is_some_and(|l| l.same_as(&self.latency)),
            f.errors
                .get_stats_with(&values, || self.errors.clone())
                .is_some_and(|e| e.same_as(&self.errors)),
            f.concurrency
                .get_stats_with(&values, || self.concurrency_var.clone())
                .is_some_and(|c| c.same_as(&self.concurrency_var)),
        ];
        if !adopted.iter().all(|&a| a) {
            // Only remove what is ours: another server's counters stay.
            self.remove(&values, adopted);
            return Err(format!(
                "per-method families full or already holding {values:?}"
            ));
        }
        *self.labels.lock().unwrap_or_else(|e| e.into_inner()) =
            Some([port.clone(), service.to_owned(), method.to_owned()]);
        Ok(())
    }

    fn remove(&self, values: &[&str], ours: [bool; 3]) {
        let f = families();
        if ours[0] {
            f.latency.delete_stats(values);
        }
        if ours[1] {
            f.errors.delete_stats(values);
        }
        if ours[2] {
            f.concurrency.delete_stats(values);
        }
    }

    /// Hides what [`expose`](Self::expose) showed.
    pub(crate) fn hide(&self) {
        let labels = self.labels.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(labels) = labels {
            let values: Vec<&str> = labels.iter().map(String::as_str).collect();
            self.remove(&values, [true; 3]);
        }
    }

    /// The `/vars` name of this method's variable `family` (such as
    /// `rpc_server_method_qps`) while the counters are exposed.
    pub fn var_name(&self, family: &str) -> Option<String> {
        let labels = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        let l = labels.as_ref()?;
        let pairs: Vec<(&str, &str)> = METHOD_LABELS
            .iter()
            .copied()
            .zip(l.iter().map(String::as_str))
            .collect();
        Some(fibrpc_bvar::registry::labeled_name(family, &pairs))
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
            max_concurrency: self.max_concurrency() as u64,
        }
    }
}
