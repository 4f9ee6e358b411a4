//! The circuit breaker of one server (bRPC's `CircuitBreaker`): two
//! moving averages of the error rate, a short window that reacts to a
//! burst of errors and a long one that catches a steady trickle. When
//! either passes its threshold the breaker trips and the cluster isolates
//! the server for an isolation duration that doubles when the server
//! trips again soon after it came back.
//!
//! The averages weigh errors by their latency, as bRPC's do: an error
//! costs its latency (at most [`CircuitBreakerOptions::max_failed_latency_multiple`]
//! times the average latency of successes), and the window trips once the
//! moving sum of error costs exceeds `error_percent` of the moving sum of
//! latencies. So a server that fails slowly (timeouts) trips sooner than
//! one that fails fast, and a fast failure among slow successes weighs
//! little. Until a window has seen `window_size` calls (a new server, or
//! one that came back before its window filled) it counts errors
//! instead: more than `error_percent` of `window_size` trips it.
//!
//! Everything is atomics: the breaker is fed from every attempt of every
//! call on the server, concurrently, with no lock.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::errno;

/// The circuit breaker's settings (bRPC's `circuit_breaker_*` flags, and
/// their defaults). Used when
/// [`ChannelOptions::enable_circuit_breaker`](crate::ChannelOptions::enable_circuit_breaker)
/// is on.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreakerOptions {
    /// Calls the short window averages over (default 1500).
    pub short_window_size: u32,
    /// Error percentage (0-99) the short window tolerates (default 10).
    pub short_window_error_percent: u32,
    /// Calls the long window averages over (default 3000).
    pub long_window_size: u32,
    /// Error percentage (0-99) the long window tolerates (default 5).
    pub long_window_error_percent: u32,
    /// Below this, the moving error cost is taken as none (default
    /// 500 µs): a few old cheap errors do not linger forever.
    pub min_error_cost: Duration,
    /// A failed call costs at most this many times the average latency of
    /// successful ones (default 2), so one call stuck until its timeout
    /// does not trip the breaker alone.
    pub max_failed_latency_multiple: u32,
    /// The first isolation (default 100 ms).
    pub min_isolation: Duration,
    /// Isolations double, up to this (default 30 s), while the server
    /// trips again within this long of its last re-admission; after a
    /// calm period as long, the next isolation is `min_isolation` again.
    pub max_isolation: Duration,
    /// Sets how fast the averages forget: a sample's weight falls to this
    /// fraction after `window_size` samples (default 0.02).
    pub epsilon: f64,
}

impl Default for CircuitBreakerOptions {
    fn default() -> Self {
        CircuitBreakerOptions {
            short_window_size: 1500,
            short_window_error_percent: 10,
            long_window_size: 3000,
            long_window_error_percent: 5,
            min_error_cost: Duration::from_micros(500),
            max_failed_latency_multiple: 2,
            min_isolation: Duration::from_millis(100),
            max_isolation: Duration::from_secs(30),
            epsilon: 0.02,
        }
    }
}

/// One window: moving averages of latency and of error cost (bRPC's
/// `EmaErrorRecorder`).
#[derive(Debug)]
struct Window {
    size: i64,
    error_percent: i64,
    /// Weight kept by the average at each sample: `epsilon^(1/size)`.
    smooth: f64,
    epsilon: f64,
    min_error_cost_us: i64,
    max_failed_multiple: i64,
    /// Samples seen while the window fills (stops counting at `size`).
    initial_samples: AtomicI64,
    /// Errors among them.
    initial_errors: AtomicI64,
    /// Moving average of successful calls' latency, µs (0: none yet).
    ema_latency_us: AtomicI64,
    /// Moving sum of error costs, µs.
    ema_error_cost_us: AtomicI64,
}

impl Window {
    fn new(size: u32, error_percent: u32, o: &CircuitBreakerOptions) -> Window {
        let size = i64::from(size.max(1));
        let epsilon = o.epsilon.clamp(1e-6, 0.999);
        Window {
            size,
            error_percent: i64::from(error_percent.min(99)),
            smooth: epsilon.powf(1.0 / size as f64),
            epsilon,
            min_error_cost_us: o.min_error_cost.as_micros().min(i64::MAX as u128) as i64,
            max_failed_multiple: i64::from(o.max_failed_latency_multiple.max(1)),
            initial_samples: AtomicI64::new(0),
            initial_errors: AtomicI64::new(0),
            ema_latency_us: AtomicI64::new(0),
            ema_error_cost_us: AtomicI64::new(0),
        }
    }

    /// Folds a call in; false if the window's error rate is now too high.
    fn on_call_end(&self, failed: bool, latency_us: i64) -> bool {
        let healthy = if failed {
            self.add_error(latency_us)
        } else {
            self.add_success(latency_us);
            true
        };
        // While the window fills, the averages are not yet meaningful:
        // count errors instead.
        if self.initial_samples.load(Relaxed) < self.size
            && self.initial_samples.fetch_add(1, Relaxed) < self.size
        {
            if failed {
                let errors = self.initial_errors.fetch_add(1, Relaxed) + 1;
                return errors * 100 <= self.size * self.error_percent;
            }
            return true;
        }
        healthy
    }

    fn add_success(&self, latency_us: i64) {
        let smooth = self.smooth;
        let _ = self
            .ema_latency_us
            .fetch_update(Relaxed, Relaxed, |avg| match avg {
                0 => Some(latency_us.max(1)),
                avg => Some(((avg as f64) * smooth + (latency_us as f64) * (1.0 - smooth)) as i64),
            });
        let min = self.min_error_cost_us;
        let _ = self
            .ema_error_cost_us
            .fetch_update(Relaxed, Relaxed, |cost| match cost {
                0 => None,
                c if c < min => Some(0),
                c => Some((c as f64 * smooth) as i64),
            });
    }

    /// Adds an error's cost; false if the moving error cost now exceeds
    /// the window's share of the moving latency.
    fn add_error(&self, latency_us: i64) -> bool {
        let avg = self.ema_latency_us.load(Relaxed);
        let cost = match avg {
            0 => latency_us,
            avg => latency_us.min(avg.saturating_mul(self.max_failed_multiple)),
        }
        .max(1);
        let total = self.ema_error_cost_us.fetch_add(cost, Relaxed) + cost;
        total as f64 <= self.max_error_cost(avg)
    }

    fn max_error_cost(&self, avg_latency_us: i64) -> f64 {
        avg_latency_us as f64
            * self.size as f64
            * (self.error_percent as f64 / 100.0)
            * (1.0 + self.epsilon)
    }

    /// A re-admitted server starts over: the error cost is forgotten, and
    /// a window that had not filled fills again.
    fn reset(&self) {
        if self.initial_samples.load(Relaxed) < self.size {
            self.initial_samples.store(0, Relaxed);
            self.initial_errors.store(0, Relaxed);
            self.ema_latency_us.store(0, Relaxed);
        }
        self.ema_error_cost_us.store(0, Relaxed);
    }

    /// The error rate as the window sees it, in percent: errors over
    /// samples while it fills, then error cost over latency.
    fn error_percent_now(&self) -> f64 {
        let samples = self.initial_samples.load(Relaxed);
        if samples < self.size {
            return match samples {
                0 => 0.0,
                n => self.initial_errors.load(Relaxed) as f64 * 100.0 / n as f64,
            };
        }
        let avg = self.ema_latency_us.load(Relaxed);
        match avg {
            0 => 0.0,
            avg => {
                self.ema_error_cost_us.load(Relaxed) as f64 * 100.0
                    / (avg as f64 * self.size as f64)
            }
        }
    }
}

/// What the `/cluster` page and
/// [`ClusterSelector::servers`](super::ClusterSelector::servers) show of a
/// breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerStats {
    /// The short window's error rate, percent (see the module docs).
    pub short_error_percent: f64,
    /// The short window's threshold, percent.
    pub short_threshold_percent: u32,
    /// The long window's error rate, percent.
    pub long_error_percent: f64,
    /// The long window's threshold, percent.
    pub long_threshold_percent: u32,
    /// How many times the breaker tripped.
    pub trips: u32,
    /// The isolation of the current (or next) trip.
    pub isolation: Duration,
}

/// A server's circuit breaker. See the module docs.
#[derive(Debug)]
pub(super) struct CircuitBreaker {
    short: Window,
    long: Window,
    min_isolation_ms: u64,
    max_isolation_ms: u64,
    /// Tripped and not yet re-admitted.
    broken: AtomicBool,
    trips: AtomicU32,
    isolation_ms: AtomicU64,
    /// When the server was last re-admitted, ms since [`epoch`]; 0: never.
    last_reset_ms: AtomicU64,
}

/// The clock the breaker's times count from.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    // +1: 0 means "never".
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

impl CircuitBreaker {
    pub(super) fn new(o: &CircuitBreakerOptions) -> CircuitBreaker {
        let min = o.min_isolation.as_millis().clamp(1, u64::MAX as u128) as u64;
        CircuitBreaker {
            short: Window::new(o.short_window_size, o.short_window_error_percent, o),
            long: Window::new(o.long_window_size, o.long_window_error_percent, o),
            min_isolation_ms: min,
            max_isolation_ms: (o.max_isolation.as_millis().min(u64::MAX as u128) as u64).max(min),
            broken: AtomicBool::new(false),
            trips: AtomicU32::new(0),
            isolation_ms: AtomicU64::new(min),
            last_reset_ms: AtomicU64::new(0),
        }
    }

    /// Folds in a call that ended with `error_code` (0: success) after
    /// `latency`. Returns the isolation to apply if this call tripped the
    /// breaker (only the call that trips it gets `Some`).
    pub(super) fn on_call_end(&self, error_code: i32, latency: Duration) -> Option<Duration> {
        // The server's "too many concurrent requests" says the cluster is
        // overloaded, not that this server is broken: isolating it would
        // load the others more (bRPC ignores it too).
        if error_code == errno::ELIMIT || self.broken.load(Relaxed) {
            return None;
        }
        let failed = error_code != 0;
        let us = latency.as_micros().min(i64::MAX as u128) as i64;
        // Both windows see every call (no short-circuit).
        let long_ok = self.long.on_call_end(failed, us);
        let short_ok = self.short.on_call_end(failed, us);
        if long_ok && short_ok {
            return None;
        }
        self.trip()
    }

    /// Marks the breaker tripped; the isolation if it was not already.
    fn trip(&self) -> Option<Duration> {
        if self.broken.swap(true, Relaxed) {
            return None;
        }
        self.trips.fetch_add(1, Relaxed);
        let last = self.last_reset_ms.load(Relaxed);
        let ms = if last != 0 && now_ms() - last < self.max_isolation_ms {
            (self.isolation_ms.load(Relaxed) * 2).min(self.max_isolation_ms)
        } else {
            self.min_isolation_ms
        };
        self.isolation_ms.store(ms, Relaxed);
        Some(Duration::from_millis(ms))
    }

    /// The server is back (its health check passed after the isolation).
    pub(super) fn reset(&self) {
        self.long.reset();
        self.short.reset();
        self.last_reset_ms.store(now_ms(), Relaxed);
        self.broken.store(false, Relaxed);
    }

    pub(super) fn stats(&self) -> BreakerStats {
        BreakerStats {
            short_error_percent: self.short.error_percent_now(),
            short_threshold_percent: self.short.error_percent as u32,
            long_error_percent: self.long.error_percent_now(),
            long_threshold_percent: self.long.error_percent as u32,
            trips: self.trips.load(Relaxed),
            isolation: Duration::from_millis(self.isolation_ms.load(Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `n` calls, every `every`-th failing; the call index that
    /// tripped the breaker, if any.
    fn feed(b: &CircuitBreaker, n: usize, every: usize) -> Option<usize> {
        (0..n).find(|i| {
            let code = if every > 0 && i % every == 0 { 1001 } else { 0 };
            b.on_call_end(code, MS).is_some()
        })
    }

    #[test]
    fn a_new_server_trips_after_its_windows_error_budget() {
        let b = CircuitBreaker::new(&CircuitBreakerOptions::default());
        // Half the calls fail: 150 errors (5% of 3000, 10% of 1500) are
        // tolerated, the 151st trips.
        assert_eq!(feed(&b, 10_000, 2), Some(300));
        // Tripped: further calls change nothing and trip nothing.
        assert_eq!(feed(&b, 100, 1), None);
        assert_eq!(b.stats().trips, 1);
    }

    #[test]
    fn few_errors_never_trip() {
        let b = CircuitBreaker::new(&CircuitBreakerOptions::default());
        // 2% errors: under both thresholds, in the filling phase and after.
        assert_eq!(feed(&b, 20_000, 50), None);
        let s = b.stats();
        assert!(s.long_error_percent < 5.0, "{s:?}");
    }

    #[test]
    fn a_burst_after_the_windows_filled_trips_the_short_window() {
        let b = CircuitBreaker::new(&CircuitBreakerOptions::default());
        assert_eq!(feed(&b, 5_000, 0), None);
        // Errors as slow as successes: the short window allows about
        // 10% × 1500 of them in a row.
        let tripped = feed(&b, 1_000, 1).expect("a burst trips");
        assert!((60..200).contains(&tripped), "{tripped}");
    }

    #[test]
    fn elimit_is_ignored() {
        let b = CircuitBreaker::new(&CircuitBreakerOptions::default());
        for _ in 0..5_000 {
            assert!(b.on_call_end(errno::ELIMIT, MS).is_none());
        }
    }

    #[test]
    fn isolation_doubles_on_a_quick_second_trip_and_is_capped() {
        let o = CircuitBreakerOptions {
            max_isolation: Duration::from_millis(350),
            ..CircuitBreakerOptions::default()
        };
        let b = CircuitBreaker::new(&o);
        let mut isolations = Vec::new();
        for _ in 0..4 {
            feed(&b, 10_000, 1);
            isolations.push(b.stats().isolation.as_millis());
            b.reset();
        }
        assert_eq!(isolations, vec![100, 200, 350, 350]);
    }
}
