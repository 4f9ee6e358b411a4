//! Measurement: calibrate a repetition count, repeat, take the median.
//!
//! Every case is a closure `run(n) -> Sample` that does `n` units of work
//! *inside* the runtime under test and times itself there (so entering and
//! leaving the runtime is not part of the figure). The harness first grows
//! `n` until one run takes a noticeable time, scales it to the per-run time
//! target, then runs `reps` times and keeps the median: on a shared 2-core
//! machine single runs are hit by other processes, and the median ignores
//! the few that were.

use std::time::Duration;

/// One timed run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Time taken by the measured part.
    pub elapsed: Duration,
    /// How many operations that was (the figure is `elapsed / ops`).
    pub ops: u64,
    /// Something worth reporting about this run (e.g. where fibers ran).
    pub note: Option<String>,
}

impl Sample {
    /// A sample without a note.
    pub fn new(elapsed: Duration, ops: u64) -> Self {
        Sample {
            elapsed,
            ops,
            note: None,
        }
    }

    /// Attaches a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    fn ns_per_op(&self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.ops.max(1) as f64
    }
}

/// The result of one (case, runtime) measurement.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Median of the per-run `ns / op`.
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Slowest run.
    pub max: f64,
    /// Repetition count used per run.
    pub n: u64,
    /// Number of runs.
    pub reps: usize,
    /// Note of the median run, if any.
    pub note: Option<String>,
}

impl Stats {
    /// Spread of the runs around the median, in percent: (max - min) / median.
    pub fn spread_pct(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median * 100.0
        } else {
            0.0
        }
    }
}

/// How long runs should take and how many to do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Target duration of one run.
    pub target: Duration,
    /// Runs per measurement (the median of these is reported).
    pub reps: usize,
}

/// How a case picks its `n`.
#[derive(Debug, Clone, Copy)]
pub enum Sizing {
    /// Grow from `start` until a run takes about the target time, never
    /// above `max`.
    Calibrate {
        /// First `n` tried.
        start: u64,
        /// Upper bound on `n`.
        max: u64,
    },
    /// Always this `n` (cases whose work is fixed, like the imbalanced load).
    Fixed(u64),
}

/// Measures `run` under `budget`. `None` if the runtime does not support the
/// case (the closure returned `None`).
pub fn measure(
    run: &mut dyn FnMut(u64) -> Option<Sample>,
    sizing: Sizing,
    budget: Budget,
) -> Option<Stats> {
    let mut runs: [&mut dyn FnMut(u64) -> Option<Sample>; 1] = [run];
    measure_interleaved(&mut runs, sizing, budget)
        .pop()
        .flatten()
}

/// Measures several runtimes on one case with their runs interleaved (run
/// 1 of each, then run 2 of each, ...), so a burst of load from other
/// processes hits all of them alike and the ratios stay meaningful.
pub fn measure_interleaved(
    runs: &mut [&mut dyn FnMut(u64) -> Option<Sample>],
    sizing: Sizing,
    budget: Budget,
) -> Vec<Option<Stats>> {
    let ns: Vec<Option<u64>> = runs
        .iter_mut()
        .map(|run| match sizing {
            Sizing::Fixed(n) => {
                // One untimed warm-up run (stack pools, thread wake-ups).
                run(n).map(|_| n)
            }
            Sizing::Calibrate { start, max } => calibrate(&mut **run, start, max, budget.target),
        })
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); runs.len()];
    for _ in 0..budget.reps {
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(n) = ns[i] {
                if let Some(s) = run(n) {
                    samples[i].push(s);
                }
            }
        }
    }
    samples
        .into_iter()
        .zip(ns)
        .map(|(s, n)| stats_of(s, n?))
        .collect()
}

/// Median, min and max of the runs.
fn stats_of(mut samples: Vec<Sample>, n: u64) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(|a, b| a.ns_per_op().total_cmp(&b.ns_per_op()));
    let mid = &samples[samples.len() / 2];
    Some(Stats {
        median: mid.ns_per_op(),
        min: samples[0].ns_per_op(),
        max: samples[samples.len() - 1].ns_per_op(),
        n,
        reps: samples.len(),
        note: mid.note.clone(),
    })
}

/// Finds `n` such that one run takes about `target`. The runs made here
/// double as warm-up.
fn calibrate(
    run: &mut dyn FnMut(u64) -> Option<Sample>,
    start: u64,
    max: u64,
    target: Duration,
) -> Option<u64> {
    let mut n = start.clamp(1, max);
    loop {
        let s = run(n)?;
        let enough = s.elapsed >= target / 8;
        if enough || n >= max {
            let secs = s.elapsed.as_secs_f64().max(1e-9);
            let scaled = (n as f64 * target.as_secs_f64() / secs) as u64;
            return Some(scaled.clamp(1, max));
        }
        n = n.saturating_mul(4).min(max);
    }
}

/// Formats nanoseconds for the table: `ns` below 1 µs, else `µs` / `ms`.
pub fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}
