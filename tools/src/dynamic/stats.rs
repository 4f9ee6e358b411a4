//! What a run measured: latencies in an HDR histogram (µs, up to 60 s, 3
//! significant digits), the errors, the first error's text, and the
//! final JSON summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Shared by the callers (or completion callbacks) and the reporter.
pub struct Stats {
    /// (since the last progress tick, the whole measured window)
    hist: Mutex<(Histogram<u64>, Histogram<u64>)>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            hist: Mutex::new((histogram(), histogram())),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }
}

impl Stats {
    /// Records one finished call, if it counts (`measured`): its latency
    /// when it succeeded, an error otherwise.
    pub fn record(&self, measured: bool, latency: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) if measured => {
                let us = (latency.as_micros() as u64).clamp(1, 60_000_000);
                let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
                let _ = h.0.record(us);
                let _ = h.1.record(us);
            }
            Ok(()) => {}
            Err(e) => {
                if measured {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                }
                let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(e);
            }
        }
    }

    /// The calls since the last tick (then forgotten): count, p50, p99.
    pub fn tick(&self) -> (u64, u64, u64) {
        let mut h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        let r = (
            h.0.len(),
            h.0.value_at_quantile(0.5),
            h.0.value_at_quantile(0.99),
        );
        h.0.reset();
        r
    }

    /// Errors counted so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The first failed call's error, warm-up included.
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The summary of a measured window of `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let h = self.hist.lock().unwrap_or_else(|e| e.into_inner());
        let total = &h.1;
        let secs = elapsed.as_secs_f64();
        Summary {
            count: total.len(),
            errors: self.errors(),
            qps: if secs > 0.0 {
                total.len() as f64 / secs
            } else {
                0.0
            },
            duration_s: secs,
            p50_us: total.value_at_quantile(0.5),
            p90_us: total.value_at_quantile(0.9),
            p99_us: total.value_at_quantile(0.99),
            p999_us: total.value_at_quantile(0.999),
            max_us: total.max(),
            mean_us: total.mean(),
        }
    }
}

/// The numbers of a run (successful calls only in the latencies).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Successful calls in the measured window.
    pub count: u64,
    /// Failed calls in the measured window.
    pub errors: u64,
    /// `count` per second of the window: the achieved rate.
    pub qps: f64,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// Latency percentiles and maximum, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Maximum, µs.
    pub max_us: u64,
    /// Mean, µs.
    pub mean_us: f64,
}

impl Summary {
    /// The JSON object printed on stdout; `extra` adds keys (the mode,
    /// the target rate, ...).
    pub fn to_json(&self, extra: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
        let mut v = serde_json::json!({
            "qps": (self.qps * 10.0).round() / 10.0,
            "count": self.count,
            "errors": self.errors,
            "duration_s": (self.duration_s * 1000.0).round() / 1000.0,
            "latency_us": {
                "p50": self.p50_us,
                "p90": self.p90_us,
                "p99": self.p99_us,
                "p999": self.p999_us,
                "max": self.max_us,
                "mean": (self.mean_us * 10.0).round() / 10.0,
            },
        });
        if let serde_json::Value::Object(m) = &mut v {
            m.extend(extra);
        }
        v
    }
}
