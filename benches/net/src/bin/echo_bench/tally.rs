//! What one generator thread counted, merged across threads at the end.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Latencies are recorded in nanoseconds, up to a minute, to 3 significant
/// digits (0.1 %): loopback round trips start around 10 µs.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Requests and latencies inside the measured window, errors at any time.
pub struct Tally {
    pub latency_ns: Histogram<u64>,
    /// The server closed a connection or it failed (ECONNRESET, EPIPE, ...).
    pub resets: u64,
    /// The server closed a connection in the middle of an echo.
    pub short_echoes: u64,
}

impl Tally {
    pub fn new() -> Self {
        Self {
            latency_ns: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant bounds are valid"),
            resets: 0,
            short_echoes: 0,
        }
    }

    /// One request completed inside the window after `latency`.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_ns.saturating_record(ns.max(1));
    }

    /// Requests completed inside the window.
    pub fn requests(&self) -> u64 {
        self.latency_ns.len()
    }

    /// Latency at `quantile` (0.5, 0.99, ...) in microseconds.
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        self.latency_ns.value_at_quantile(quantile) as f64 / 1e3
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("histograms share bounds");
        self.resets += other.resets;
        self.short_echoes += other.short_echoes;
    }
}
