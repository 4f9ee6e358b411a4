//! [`AutoConcurrencyLimiter`]: bRPC's `auto` limiter
//! (`auto_concurrency_limiter.md`).
//!
//! By Little's law a server at capacity holds `max_qps × noload_latency`
//! requests; more only queue. The limiter measures both and sets
//!
//! ```text
//! max_concurrency = min_latency × ema_max_qps × (1 + explore_ratio)
//! ```
//!
//! - **Samples.** At most one response per `sampling_interval` is
//!   sampled (the rest only count successes), into a window that closes
//!   after `sample_window_size` or `max_sample_count` samples; a window
//!   with fewer than `min_sample_count` is dropped. Errors add their
//!   latency to the window's as a punishment (`fail_punish_ratio`);
//!   `ELIMIT` rejections are not samples.
//! - **Per window.** The average latency (punishment included) lowers
//!   `min_latency` through an EMA (`alpha_factor_for_ema`); the window's
//!   qps raises `ema_max_qps` at once or lowers it through a slower EMA
//!   (a tenth of the factor). While latency stays near `min_latency` or
//!   qps is below its peak, `explore_ratio` grows (by
//!   `change_rate_of_explore_ratio`, up to `max_explore_ratio`): there is
//!   room; otherwise it shrinks to `min_explore_ratio`. A window of
//!   errors only halves the limit.
//! - **Re-measuring.** Every `noload_latency_remeasure_interval` (±50 %,
//!   randomized) the limit drops to `0.9 × min_latency × ema_max_qps`,
//!   the samples of the next two average latencies are ignored while the
//!   queue drains, and `min_latency` is measured afresh, so a service
//!   that became slower for good gets a limit that matches it.
//!
//! Admission reads one atomic. Differences from bRPC: the limit never
//! drops below 1 (bRPC's can reach 0 and then admits nothing until a
//! re-measure; with no admitted request there is no sample to raise it).

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::ConcurrencyLimiter;
use crate::errno;

/// The auto limiter's settings; the defaults are bRPC's `auto_cl_*`
/// flags.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoConcurrencyOptions {
    /// Longest a sample window lasts (`auto_cl_sample_window_size_ms`,
    /// 1 s).
    pub sample_window_size: Duration,
    /// A window closing with fewer samples is dropped
    /// (`auto_cl_min_sample_count`, 100).
    pub min_sample_count: u32,
    /// A window closes at this many samples (`auto_cl_max_sample_count`,
    /// 200).
    pub max_sample_count: u32,
    /// At most one sample per this long (`auto_cl_sampling_interval_ms`,
    /// 0.1 ms).
    pub sampling_interval: Duration,
    /// The limit before the first window (`auto_cl_initial_max_concurrency`,
    /// 40).
    pub initial_max_concurrency: usize,
    /// How often the no-load latency is measured again
    /// (`auto_cl_noload_latency_remeasure_interval_ms`, 50 s).
    pub noload_latency_remeasure_interval: Duration,
    /// EMA factor of the minimum latency; a tenth of it for the peak qps
    /// (`auto_cl_alpha_factor_for_ema`, 0.1).
    pub alpha_factor_for_ema: f64,
    /// `auto_cl_max_explore_ratio`, 0.3.
    pub max_explore_ratio: f64,
    /// `auto_cl_min_explore_ratio`, 0.06.
    pub min_explore_ratio: f64,
    /// `auto_cl_change_rate_of_explore_ratio`, 0.02.
    pub change_rate_of_explore_ratio: f64,
    /// The limit while re-measuring, as a share of the computed one
    /// (`auto_cl_reduce_ratio_while_remeasure`, 0.9).
    pub reduce_ratio_while_remeasure: f64,
    /// Latency within `min_latency × (1 + min_explore_ratio × this)`
    /// counts as "no load" (`auto_cl_latency_fluctuation_correction_factor`,
    /// 1).
    pub latency_fluctuation_correction_factor: f64,
    /// Errors count as latency (`auto_cl_enable_error_punish`, on).
    pub enable_error_punish: bool,
    /// An error's latency counts this many times
    /// (`auto_cl_fail_punish_ratio`, 1).
    pub fail_punish_ratio: f64,
}

impl Default for AutoConcurrencyOptions {
    fn default() -> Self {
        AutoConcurrencyOptions {
            sample_window_size: Duration::from_secs(1),
            min_sample_count: 100,
            max_sample_count: 200,
            sampling_interval: Duration::from_micros(100),
            initial_max_concurrency: 40,
            noload_latency_remeasure_interval: Duration::from_secs(50),
            alpha_factor_for_ema: 0.1,
            max_explore_ratio: 0.3,
            min_explore_ratio: 0.06,
            change_rate_of_explore_ratio: 0.02,
            reduce_ratio_while_remeasure: 0.9,
            latency_fluctuation_correction_factor: 1.0,
            enable_error_punish: true,
            fail_punish_ratio: 1.0,
        }
    }
}

/// bRPC's `AutoConcurrencyLimiter`. See the module docs.
#[derive(Debug)]
pub struct AutoConcurrencyLimiter {
    options: AutoConcurrencyOptions,
    max_concurrency: AtomicUsize,
    /// Successes since the window began (every response, not only the
    /// samples: the qps).
    total_succ_req: AtomicU64,
    /// When the last sample was taken, µs since `base` (0: never).
    last_sampling_time_us: AtomicI64,
    base: Instant,
    window: Mutex<Window>,
}

/// The sampling state, under a lock only a sampled response takes.
#[derive(Debug)]
struct Window {
    start_us: i64,
    succ_count: u32,
    failed_count: u32,
    total_succ_us: i64,
    total_failed_us: i64,
    /// When the next re-measure begins.
    remeasure_start_us: i64,
    /// While re-measuring: samples before this are ignored (0: not
    /// re-measuring).
    reset_latency_us: i64,
    /// -1 until measured.
    min_latency_us: f64,
    /// -1 until measured.
    ema_max_qps: f64,
    explore_ratio: f64,
}

impl AutoConcurrencyLimiter {
    /// A limiter with `options`, starting at their
    /// `initial_max_concurrency`.
    pub fn new(options: AutoConcurrencyOptions) -> AutoConcurrencyLimiter {
        let limiter = AutoConcurrencyLimiter {
            max_concurrency: AtomicUsize::new(options.initial_max_concurrency.max(1)),
            total_succ_req: AtomicU64::new(0),
            last_sampling_time_us: AtomicI64::new(0),
            base: Instant::now(),
            window: Mutex::new(Window {
                start_us: 0,
                succ_count: 0,
                failed_count: 0,
                total_succ_us: 0,
                total_failed_us: 0,
                remeasure_start_us: 0,
                reset_latency_us: 0,
                min_latency_us: -1.0,
                ema_max_qps: -1.0,
                explore_ratio: options.max_explore_ratio,
            }),
            options,
        };
        let first = limiter.next_reset_time(limiter.now_us());
        limiter.lock().remeasure_start_us = first;
        limiter
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Microseconds since the limiter was made (never 0, which means
    /// "never sampled").
    fn now_us(&self) -> i64 {
        (self.base.elapsed().as_micros() as i64).max(1)
    }

    /// When a re-measure starts, from `now`: the interval, ±50 %.
    fn next_reset_time(&self, now: i64) -> i64 {
        let interval = self.options.noload_latency_remeasure_interval.as_micros() as i64;
        now + interval / 2 + fastrand::i64(0..=interval.max(1))
    }

    /// Adds a sample; closes the window when it is full.
    fn add_sample(&self, w: &mut Window, error_code: i32, latency_us: i64, now: i64) {
        let o = &self.options;
        if w.reset_latency_us != 0 {
            if w.reset_latency_us > now {
                return; // Still draining after the limit was lowered.
            }
            w.min_latency_us = -1.0;
            w.reset_latency_us = 0;
            w.remeasure_start_us = self.next_reset_time(now);
            self.reset_window(w, now);
        }
        if w.start_us == 0 {
            w.start_us = now;
        }
        if error_code != 0 && o.enable_error_punish {
            w.failed_count += 1;
            w.total_failed_us += latency_us;
        } else if error_code == 0 {
            w.succ_count += 1;
            w.total_succ_us += latency_us;
        }
        let samples = w.succ_count + w.failed_count;
        let window_us = o.sample_window_size.as_micros() as i64;
        if samples < o.min_sample_count {
            if now - w.start_us >= window_us {
                self.reset_window(w, now); // Too few: drop the window.
            }
            return;
        }
        if now - w.start_us < window_us && samples < o.max_sample_count {
            return;
        }
        if w.succ_count > 0 {
            self.update_max_concurrency(w, now);
        } else {
            let halved = (self.max_concurrency.load(Relaxed) / 2).max(1);
            self.max_concurrency.store(halved, Relaxed);
        }
        self.reset_window(w, now);
    }

    fn reset_window(&self, w: &mut Window, now: i64) {
        w.start_us = now;
        w.succ_count = 0;
        w.failed_count = 0;
        w.total_succ_us = 0;
        w.total_failed_us = 0;
        self.total_succ_req.store(0, Relaxed);
    }

    /// A full window: the new limit.
    fn update_max_concurrency(&self, w: &mut Window, now: i64) {
        let o = &self.options;
        let total_succ_req = self.total_succ_req.swap(0, Relaxed);
        let punish = w.total_failed_us as f64 * o.fail_punish_ratio;
        let avg_latency = ((punish + w.total_succ_us as f64) / f64::from(w.succ_count)).ceil();
        let elapsed = (now - w.start_us).max(1) as f64;
        let qps = 1_000_000.0 * total_succ_req as f64 / elapsed;
        // The no-load latency: lowered through an EMA, never raised
        // (until a re-measure).
        if w.min_latency_us <= 0.0 {
            w.min_latency_us = avg_latency;
        } else if avg_latency < w.min_latency_us {
            let a = o.alpha_factor_for_ema;
            w.min_latency_us = avg_latency * a + w.min_latency_us * (1.0 - a);
        }
        // The peak qps: raised at once, lowered slowly.
        if qps >= w.ema_max_qps {
            w.ema_max_qps = qps;
        } else {
            let a = o.alpha_factor_for_ema / 10.0;
            w.ema_max_qps = qps * a + w.ema_max_qps * (1.0 - a);
        }
        let next = if w.remeasure_start_us <= now {
            // Lower the limit so the queue drains, then measure afresh.
            w.reset_latency_us = now + 2 * avg_latency as i64;
            (w.ema_max_qps * w.min_latency_us / 1_000_000.0 * o.reduce_ratio_while_remeasure).ceil()
        } else {
            let no_load = w.min_latency_us
                * (1.0 + o.min_explore_ratio * o.latency_fluctuation_correction_factor);
            if avg_latency <= no_load || qps <= w.ema_max_qps / (1.0 + o.min_explore_ratio) {
                w.explore_ratio =
                    (w.explore_ratio + o.change_rate_of_explore_ratio).min(o.max_explore_ratio);
            } else {
                w.explore_ratio =
                    (w.explore_ratio - o.change_rate_of_explore_ratio).max(o.min_explore_ratio);
            }
            w.min_latency_us * w.ema_max_qps / 1_000_000.0 * (1.0 + w.explore_ratio)
        };
        let next = if next.is_finite() { next as usize } else { 1 };
        self.max_concurrency.store(next.max(1), Relaxed);
    }
}

impl ConcurrencyLimiter for AutoConcurrencyLimiter {
    fn on_requested(&self, current_concurrency: usize) -> bool {
        current_concurrency <= self.max_concurrency.load(Relaxed)
    }

    fn on_responded(&self, error_code: i32, latency: Duration) {
        if error_code == 0 {
            self.total_succ_req.fetch_add(1, Relaxed);
        } else if error_code == errno::ELIMIT {
            return;
        }
        let now = self.now_us();
        let last = self.last_sampling_time_us.load(Relaxed);
        let interval = self.options.sampling_interval.as_micros() as i64;
        if last != 0 && now - last < interval {
            return;
        }
        // One sampler per interval: the one that moves the time.
        if self
            .last_sampling_time_us
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
        {
            return;
        }
        let latency_us = latency.as_micros().min(i64::MAX as u128) as i64;
        let mut w = self.lock();
        self.add_sample(&mut w, error_code, latency_us, now);
    }

    fn max_concurrency(&self) -> usize {
        self.max_concurrency.load(Relaxed)
    }

    fn kind(&self) -> &'static str {
        "auto"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options with small windows and no re-measure, for driving the
    /// limiter by hand.
    fn quick() -> AutoConcurrencyOptions {
        AutoConcurrencyOptions {
            min_sample_count: 10,
            max_sample_count: 20,
            sampling_interval: Duration::ZERO,
            noload_latency_remeasure_interval: Duration::from_secs(3600),
            ..AutoConcurrencyOptions::default()
        }
    }

    /// Feeds `windows` full windows of `latency` at `qps`, with the
    /// window's clock advanced by hand.
    fn feed(l: &AutoConcurrencyLimiter, windows: usize, latency_us: i64, qps: u64) {
        for _ in 0..windows {
            let mut w = l.lock();
            let start = w.start_us.max(1);
            // A window of 20 samples lasting 20 / qps seconds.
            let span = 20 * 1_000_000 / qps as i64;
            for i in 0..20 {
                let now = start + span * (i + 1) / 20;
                l.total_succ_req.fetch_add(1, Relaxed);
                l.add_sample(&mut w, 0, latency_us, now);
            }
        }
    }

    #[test]
    fn limit_follows_min_latency_times_peak_qps() {
        let l = AutoConcurrencyLimiter::new(quick());
        assert_eq!(l.max_concurrency(), 40);
        // 10 ms at 1000 qps: 10 in flight; explored up to 30 % above.
        feed(&l, 5, 10_000, 1000);
        let m = l.max_concurrency();
        assert!((10..=13).contains(&m), "{m}");
        assert!(l.on_requested(m) && !l.on_requested(m + 1));
    }

    #[test]
    fn a_latency_rise_at_lower_qps_shrinks_the_limit() {
        let l = AutoConcurrencyLimiter::new(AutoConcurrencyOptions {
            alpha_factor_for_ema: 1.0,
            ..quick()
        });
        feed(&l, 5, 10_000, 1000);
        let before = l.max_concurrency();
        // Ten times slower, a tenth of the qps.
        feed(&l, 30, 100_000, 100);
        let after = l.max_concurrency();
        assert!(after * 3 < before, "{before} -> {after}");
    }

    #[test]
    fn elimit_is_not_a_sample_and_errors_only_halve() {
        let l = AutoConcurrencyLimiter::new(quick());
        for _ in 0..100 {
            l.on_responded(errno::ELIMIT, Duration::from_millis(1));
        }
        {
            let w = l.lock();
            assert_eq!(w.failed_count + w.succ_count, 0);
        }
        for _ in 0..20 {
            l.on_responded(errno::EINTERNAL, Duration::from_millis(1));
        }
        assert_eq!(l.max_concurrency(), 20);
    }
}
