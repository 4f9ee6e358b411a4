//! Detection of blocked workers: a fiber that runs for long without
//! switching out (a `std::thread::sleep`, a `std::sync` lock held long,
//! blocking I/O, a long computation) keeps every other fiber of its worker
//! waiting, and nothing in the scheduler can take the worker back.
//!
//! A monitor thread (one per process, started with the first runtime)
//! samples every worker of every runtime every [`PERIOD`] (less if a
//! threshold is shorter): a worker whose switch count has not moved since
//! an earlier sample, with a fiber running, has been running that fiber
//! since at least then. Past the runtime's threshold, the incident is
//! counted and reported once as a `tracing` warning (worker, fiber id,
//! name, spawn site, how long), and [`crate::stats`] shows it (`blocked_ms`,
//! `blocked_incidents`).
//!
//! The monitor also keeps a stuck worker's I/O moving: nobody polls its
//! dispatcher while it is stuck, and a worker that went to sleep while all
//! were asleep sleeps without a timeout (an idle process makes no
//! wakeups). At the first sample that finds a worker stuck, the monitor
//! wakes one sleeping worker, which polls the stuck dispatcher and, while
//! another worker is awake, sleeps in short steps that poll it again. So
//! input on the stuck worker's connections waits one period, not until the
//! fiber lets go.
//!
//! Hot-path cost: no new store. The switch counter already existed (the
//! LIFO slot's watchers read it), and the worker's "fiber running now"
//! pointer, which the scheduler always kept, moved from a `Cell` in the
//! worker to a relaxed `AtomicPtr` in `GroupShared` (`running`): the same
//! plain store per switch, now readable by the monitor, plus a load of the
//! `GroupShared` pointer where the scheduler did not have it at hand.
//! Callgrind counts 360 instructions per ping-pong round trip
//! (`examples/spawn_loop.rs pingpong`) against 355 before, 1.4 %. No clock
//! is read per switch: time is measured by the monitor, so a duration is
//! short by at most one sampling period. The monitor reads two words per
//! worker per period.

use super::task_control::GroupShared;
use super::task_meta::{TaskMeta, TaskRef};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The default blocked-worker threshold, in milliseconds.
pub(crate) const DEFAULT_THRESHOLD_MS: u64 = 100;

/// How often the monitor samples the workers, at most.
const PERIOD: Duration = Duration::from_millis(50);

/// The environment variable that sets the default threshold (milliseconds;
/// 0 turns detection off).
pub(crate) const ENV_THRESHOLD: &str = "FIBRPC_BLOCKED_WORKER_MS";

/// The threshold a runtime gets unless its builder sets one: the
/// environment's, or [`DEFAULT_THRESHOLD_MS`].
pub(crate) fn default_threshold_ms() -> u64 {
    static FROM_ENV: OnceLock<u64> = OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        std::env::var(ENV_THRESHOLD)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_THRESHOLD_MS)
    })
}

/// Nanoseconds since the first call (a process-wide monotonic clock that
/// fits an atomic).
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// [`now_ns`] in milliseconds as of the monitor's last sample: a clock a
/// hot path can read for the price of a load (fiber waits stamp their
/// start with it for the console's "suspended for"). Coarse: behind by up
/// to one monitor period (50 ms).
static COARSE_MS: AtomicU64 = AtomicU64::new(0);

/// A millisecond clock for stamps on hot paths: one relaxed load, no
/// clock read. Milliseconds since the first fiber runtime started, as of
/// the runtime's monitor thread's last sample, so behind by up to its
/// period (50 ms); 0 before any runtime started. Compare two readings of
/// it, not a reading with another clock.
#[inline(always)]
pub fn coarse_ms() -> u64 {
    COARSE_MS.load(Ordering::Relaxed)
}

/// The monitor's view of one worker. Written by the monitor thread only;
/// read by `stats`.
pub(crate) struct Watch {
    /// The worker's switch count when the monitor last saw it change.
    stamp: AtomicU64,
    /// When that was (`now_ns`).
    since_ns: AtomicU64,
    /// Whether the current incident was reported already.
    reported: AtomicBool,
    /// Whether a sleeping worker was woken for the current run already.
    nudged: AtomicBool,
    /// Incidents so far.
    incidents: AtomicU64,
}

impl Watch {
    pub(crate) fn new() -> Self {
        Watch {
            stamp: AtomicU64::new(u64::MAX),
            since_ns: AtomicU64::new(0),
            reported: AtomicBool::new(false),
            nudged: AtomicBool::new(false),
            incidents: AtomicU64::new(0),
        }
    }

    /// Incidents counted on this worker.
    pub(crate) fn incidents(&self) -> u64 {
        self.incidents.load(Ordering::Relaxed)
    }
}

impl GroupShared {
    /// Records the fiber the worker switches into, or `None` when it
    /// switches back to the scheduler (owner only).
    #[inline(always)]
    pub(crate) fn set_running(&self, task: Option<TaskRef>) {
        let p = task.map_or(std::ptr::null_mut(), |t| {
            t as *const TaskMeta as *mut TaskMeta
        });
        // Release (a plain store on x86, as relaxed): a tracer that reads
        // the fiber that switched out gone from here also sees what it
        // stored before switching out (`trace`).
        self.running.store(p, Ordering::Release);
    }

    /// Whether the worker runs `task` now, read with acquire ordering:
    /// if not, what the fiber stored before it last switched out here is
    /// visible (`trace`).
    pub(crate) fn runs(&self, task: TaskRef) -> bool {
        std::ptr::eq(self.running.load(Ordering::Acquire).cast_const(), task)
    }

    /// The fiber running on the worker (exact on the worker's own thread;
    /// a recent value elsewhere).
    #[inline(always)]
    pub(crate) fn running(&self) -> Option<TaskRef> {
        let p = self.running.load(Ordering::Relaxed);
        // SAFETY: `running` is only ever null or a `TaskRef` (metas live in
        // a slab that is never freed).
        unsafe { p.cast_const().as_ref() }
    }
}

/// How long worker `g` has run its current fiber, in milliseconds, if at
/// least `threshold_ms` (and that is not 0); else 0.
pub(crate) fn blocked_ms(g: &GroupShared, threshold_ms: u64) -> u64 {
    if threshold_ms == 0 || g.running().is_none() {
        return 0;
    }
    if g.counters.switches_now() != g.watch.stamp.load(Ordering::Relaxed) {
        return 0;
    }
    let ms = now_ns().saturating_sub(g.watch.since_ns.load(Ordering::Relaxed)) / 1_000_000;
    if ms >= threshold_ms {
        ms
    } else {
        0
    }
}

/// Starts the monitor thread, once per process.
pub(crate) fn start_monitor() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        now_ns();
        let spawned = std::thread::Builder::new()
            .name("fiber-monitor".into())
            .stack_size(256 << 10)
            .spawn(monitor_loop);
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the blocked-worker monitor");
        }
    });
}

/// One incident to report, gathered under the runtime list's lock and
/// printed after it.
struct Report {
    worker: usize,
    task: TaskRef,
    stamp: u64,
    group: &'static GroupShared,
    ms: u64,
}

fn monitor_loop() {
    let mut reports = Vec::new();
    loop {
        let mut period = PERIOD;
        {
            let controls = super::CONTROLS.lock().unwrap_or_else(|e| e.into_inner());
            let now = now_ns();
            COARSE_MS.store(now / 1_000_000, Ordering::Relaxed);
            for control in controls.iter() {
                if control.stopping.load(Ordering::Relaxed) {
                    continue;
                }
                // Threshold 0 turns reports off; stuck workers are still
                // looked for (see below).
                let threshold = match control.blocked_threshold_ms.load(Ordering::Relaxed) {
                    0 => u64::MAX,
                    t => t,
                };
                period = period.min(Duration::from_millis((threshold / 2).max(1)));
                for i in 0..control.nworkers() {
                    let g = control.group(i);
                    let (stuck, report) = sample(g, now, threshold);
                    if stuck {
                        // Nobody polls a stuck worker's dispatcher. Idle
                        // workers look at it only when they wake, and one
                        // that went to sleep while every worker was asleep
                        // sleeps without a timeout: wake one, so that it
                        // looks now and keeps looking while this lasts.
                        control.signal_task(1, None);
                    }
                    reports.extend(report);
                }
            }
        }
        for r in reports.drain(..) {
            report(&r);
        }
        std::thread::sleep(period);
    }
}

/// Looks at worker `g` once. Returns whether it has newly been seen stuck
/// in one fiber (since an earlier sample: at least one period), and a new
/// incident to report.
fn sample(g: &'static GroupShared, now: u64, threshold_ms: u64) -> (bool, Option<Report>) {
    let w = &g.watch;
    let switches = g.counters.switches_now();
    let running = g.running();
    if running.is_none() || switches != w.stamp.load(Ordering::Relaxed) {
        // Switched (or idle) since the last look: a new run starts now.
        w.since_ns.store(now, Ordering::Relaxed);
        w.stamp.store(switches, Ordering::Relaxed);
        w.reported.store(false, Ordering::Relaxed);
        w.nudged.store(false, Ordering::Relaxed);
        return (false, None);
    }
    let stuck = !w.nudged.swap(true, Ordering::Relaxed);
    let ms = now.saturating_sub(w.since_ns.load(Ordering::Relaxed)) / 1_000_000;
    if ms < threshold_ms || w.reported.load(Ordering::Relaxed) {
        return (stuck, None);
    }
    w.reported.store(true, Ordering::Relaxed);
    w.incidents
        .store(w.incidents.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    // What the meta says may be stale (its fiber ended and the slot was
    // reused): `report` checks.
    let report = running.map(|task| Report {
        worker: g.index,
        task,
        stamp: switches,
        group: g,
        ms,
    });
    (stuck, report)
}

/// Reports one incident as a `warn!` event (target
/// `fibrpc_fiber::runtime::blocked`).
fn report(r: &Report) {
    const ADVICE: &str = "the worker's other fibers wait meanwhile; use fibrpc_fiber::sleep, \
                          the fiber sync primitives and net types, or spawn_blocking";
    // The slot may have been reused since the sample: only name the fiber
    // if the worker is still on the same run.
    if r.group.counters.switches_now() != r.stamp {
        tracing::warn!(
            worker = r.worker,
            blocked_ms = r.ms,
            "worker blocked: one fiber has run without switching out; {ADVICE}"
        );
        return;
    }
    let name = r.task.name();
    let at = r.task.diag.spawned_at();
    tracing::warn!(
        worker = r.worker,
        blocked_ms = r.ms,
        fiber = ?r.task.id(),
        fiber_name = name.as_deref(),
        spawned_at = at.map(tracing::field::display),
        "worker blocked: one fiber has run without switching out; {ADVICE}"
    );
}
