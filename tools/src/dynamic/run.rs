//! The load loops. **Open loop** (`--qps`): calls start on a fixed
//! schedule whatever the server does, and a call's latency runs from the
//! time it was *meant* to start, so a stalled server shows up in the
//! percentiles instead of quietly slowing the sender (coordinated
//! omission). **Closed loop** (`--concurrency`): C callers each send the
//! next call when the previous one returns.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stats::{Stats, Summary};
use super::target::{Call, Targets};

/// How calls are started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `qps` calls a second on a schedule, at most `max_inflight`
    /// unanswered (past that the sender waits, and the wait counts in
    /// the latencies).
    Open {
        /// The target rate.
        qps: f64,
        /// Calls in flight at most.
        max_inflight: usize,
    },
    /// `concurrency` callers, each waiting for its answer.
    Closed {
        /// Callers.
        concurrency: usize,
    },
}

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Open or closed loop.
    pub mode: Mode,
    /// Calls before this are not measured.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Stop after this many calls (warm-up included), if set.
    pub count: Option<u64>,
    /// How long to wait for calls still in flight when sending stops.
    pub drain: Duration,
    /// Show the live line (only where stderr is a terminal).
    pub progress: bool,
}

/// Runs `calls` (in turn, round and round) against `targets` and
/// returns what was measured and the stats (for the first error).
pub fn run(
    targets: Arc<Targets>,
    calls: Arc<Vec<Call>>,
    cfg: &LoadConfig,
) -> (Summary, Arc<Stats>) {
    assert!(!calls.is_empty(), "a run needs at least one call");
    let stats = Arc::new(Stats::default());
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_start = start + cfg.warmup;
    let end = measure_start + cfg.duration;
    let driver = {
        let (stats, done, cfg) = (stats.clone(), done.clone(), cfg.clone());
        std::thread::Builder::new()
            .name("press-driver".into())
            .spawn(move || {
                let stop_at = match cfg.mode {
                    Mode::Open { qps, max_inflight } => open_loop(
                        &targets,
                        &calls,
                        &stats,
                        &cfg,
                        (start, measure_start, end),
                        qps,
                        max_inflight,
                    ),
                    Mode::Closed { concurrency } => closed_loop(
                        &targets,
                        &calls,
                        &stats,
                        &cfg,
                        (measure_start, end),
                        concurrency,
                    ),
                };
                done.store(true, Ordering::Release);
                stop_at
            })
            .expect("spawning the press driver")
    };
    progress(
        &stats,
        &done,
        cfg.progress && std::io::stderr().is_terminal(),
    );
    let stop_at = driver.join().expect("the press driver panicked");
    let elapsed = stop_at.saturating_duration_since(measure_start);
    (stats.summary(elapsed), stats)
}

/// Sends on schedule; returns when the measured window ended (for the
/// rate), after waiting (at most `cfg.drain`) for the calls in flight.
fn open_loop(
    targets: &Arc<Targets>,
    calls: &Arc<Vec<Call>>,
    stats: &Arc<Stats>,
    cfg: &LoadConfig,
    (start, measure_start, end): (Instant, Instant, Instant),
    qps: f64,
    max_inflight: usize,
) -> Instant {
    let interval = Duration::from_secs_f64(1.0 / qps.max(1e-3));
    let inflight = Arc::new(AtomicUsize::new(0));
    let limit = cfg.count.unwrap_or(u64::MAX);
    let mut i = 0u64;
    let mut intended = start;
    while i < limit {
        intended = start + interval.mul_f64(i as f64);
        if intended >= end {
            break;
        }
        let now = Instant::now();
        if intended > now {
            std::thread::sleep(intended - now);
        }
        // Past the in-flight bound the sender waits; the intended time
        // stays, so the wait is in the latencies.
        while inflight.load(Ordering::Acquire) >= max_inflight.max(1) && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(100));
        }
        let measured = intended >= measure_start;
        let call = &calls[(i % calls.len() as u64) as usize];
        inflight.fetch_add(1, Ordering::AcqRel);
        let (stats, inflight) = (stats.clone(), inflight.clone());
        targets.call_async(i as usize, call, move |r| {
            stats.record(measured, intended.elapsed(), r);
            inflight.fetch_sub(1, Ordering::AcqRel);
        });
        i += 1;
        intended = start + interval.mul_f64(i as f64);
    }
    // The window ends at the next call's slot, or now if the sender fell
    // behind its schedule.
    let stop_at = intended.min(end).max(Instant::now().min(end));
    let deadline = Instant::now() + cfg.drain;
    while inflight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop_at
}

/// C caller fibers; returns when the measured window ended.
fn closed_loop(
    targets: &Arc<Targets>,
    calls: &Arc<Vec<Call>>,
    stats: &Arc<Stats>,
    cfg: &LoadConfig,
    (measure_start, end): (Instant, Instant),
    concurrency: usize,
) -> Instant {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let limit = cfg.count.unwrap_or(u64::MAX);
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|c| {
            let (targets, calls, stats) = (targets.clone(), calls.clone(), stats.clone());
            let (next, stop) = (next.clone(), stop.clone());
            fibrpc::fiber::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= limit {
                        break;
                    }
                    let call = &calls[(i % calls.len() as u64) as usize];
                    let t = Instant::now();
                    let r = targets.call(c, call);
                    let failed = r.is_err();
                    stats.record(t >= measure_start, t.elapsed(), r);
                    if failed {
                        // Do not spin on a dead server.
                        let _ = fibrpc::fiber::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for c in callers {
        // Each caller ends by itself at the count; the clock stops the
        // rest at the end of the window.
        if let Err(c) = c.join_deadline(end) {
            stop.store(true, Ordering::Relaxed);
            let _ = c.join();
        }
    }
    // All callers ended before the window did: the count was reached.
    Instant::now().min(end)
}

/// The live line on stderr (a terminal only): rate, p50, p99 and errors
/// of the last half second, until the driver is done.
fn progress(stats: &Stats, done: &AtomicBool, show: bool) {
    let bar = show.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar
    });
    let mut last = Instant::now();
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < Duration::from_millis(500) {
            continue;
        }
        let (n, p50, p99) = stats.tick();
        let qps = n as f64 / last.elapsed().as_secs_f64();
        last = Instant::now();
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "qps={qps:.0} p50={p50}us p99={p99}us errors={}",
                stats.errors()
            ));
            bar.tick();
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
