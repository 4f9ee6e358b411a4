//! [`LatencyRecorder`]: count, qps, average, max and percentiles of
//! latencies over a window (bRPC's `bvar::LatencyRecorder`).
//!
//! Each thread records into its own cell: sum, count, max and a
//! [`histogram`](crate::histogram) of bucket counters, all relaxed
//! load + store like `Adder`. Every sampler tick folds all cells into
//! cumulative totals (resetting the max), and keeps the difference from
//! the previous tick as one second of the window, with the histogram
//! stored sparsely (only non-empty buckets). Window queries add those
//! seconds up, so percentiles are exact merges of per-second histograms.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crate::combiner::{kind_storage, Combiner, Kind};
use crate::histogram::{self, BUCKETS};
use crate::registry::{ExposeError, Exposure};
use crate::sampler::{self, Tick};
use crate::value::{Value, Variable};

/// The window `LatencyRecorder::new` uses (bRPC's default too).
pub const DEFAULT_WINDOW_SECS: u64 = 10;

/// One thread's latencies.
pub(crate) struct LatencyCell {
    sum: AtomicI64,
    count: AtomicI64,
    max: AtomicI64,
    buckets: Box<[AtomicU64]>,
}

/// Totals since the start (max: since the last tick).
#[derive(Clone)]
pub(crate) struct Totals {
    sum: i64,
    count: i64,
    max: i64,
    buckets: Vec<u64>,
}

pub(crate) struct LatencyKind;

impl Kind for LatencyKind {
    type Cell = LatencyCell;
    type Acc = Totals;
    fn new_cell() -> LatencyCell {
        LatencyCell {
            sum: AtomicI64::new(0),
            count: AtomicI64::new(0),
            max: AtomicI64::new(i64::MIN),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
    fn identity() -> Totals {
        Totals {
            sum: 0,
            count: 0,
            max: i64::MIN,
            buckets: vec![0; BUCKETS],
        }
    }
    fn fold(acc: &mut Totals, cell: &LatencyCell) {
        acc.sum = acc.sum.wrapping_add(cell.sum.load(Relaxed));
        acc.count += cell.count.load(Relaxed);
        acc.max = acc.max.max(cell.max.load(Relaxed));
        for (a, b) in acc.buckets.iter_mut().zip(cell.buckets.iter()) {
            *a += b.load(Relaxed);
        }
    }
    kind_storage!(LatencyKind);
}

/// One second of the window.
struct Second {
    sum: i64,
    count: i64,
    /// `i64::MIN` when there was no sample.
    max: i64,
    /// (bucket, count) of non-empty buckets.
    hist: Vec<(u16, u64)>,
}

struct WindowState {
    /// Cumulative totals at the last tick.
    last: Totals,
    seconds: VecDeque<Second>,
}

struct LatencyInner {
    cells: Combiner<LatencyKind>,
    secs: usize,
    window: Mutex<WindowState>,
    exposure: Exposure,
    /// The sub-variables exposed in the registry (it holds `Weak`s).
    subs: Mutex<Vec<Arc<Sub>>>,
}

/// Latencies (µs, or any unit: values are plain `i64`s) with their count,
/// qps, average, max and percentiles over the last N seconds.
///
/// Window figures change once per sampler tick; `count` is live. Exposed
/// under a prefix it shows as bRPC's sub-variables: `<prefix>_latency`,
/// `_max_latency`, `_qps`, `_count`, `_latency_50`, `_90`, `_99`, `_999`
/// and `_9999`. Percentiles have a relative error of at most 1/64 and
/// latencies above 2^32 - 1 are clamped there (see `histogram`).
#[derive(Clone)]
pub struct LatencyRecorder {
    inner: Arc<LatencyInner>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// A recorder with a [`DEFAULT_WINDOW_SECS`] window.
    pub fn new() -> Self {
        Self::with_window(DEFAULT_WINDOW_SECS)
    }

    /// A recorder whose window is `secs` seconds (1 to
    /// [`MAX_WINDOW_SECS`](crate::MAX_WINDOW_SECS)).
    pub fn with_window(secs: u64) -> Self {
        let secs = secs.clamp(1, crate::MAX_WINDOW_SECS) as usize;
        let window = WindowState {
            last: LatencyKind::identity(),
            seconds: VecDeque::with_capacity(secs),
        };
        let inner = Arc::new(LatencyInner {
            cells: Combiner::new(),
            secs,
            window: Mutex::new(window),
            exposure: Exposure::default(),
            subs: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&inner);
        let weak: Weak<dyn Tick> = weak;
        sampler::register(weak);
        LatencyRecorder { inner }
    }

    /// Records one latency. Negative values count as 0.
    #[inline]
    pub fn record(&self, latency_us: i64) {
        let v = latency_us.max(0);
        let bucket = histogram::bucket_of(v);
        self.inner.cells.with_cell(|c| {
            c.sum.store(c.sum.load(Relaxed).wrapping_add(v), Relaxed);
            c.count.store(c.count.load(Relaxed) + 1, Relaxed);
            if v > c.max.load(Relaxed) {
                c.max.store(v, Relaxed);
            }
            let b = &c.buckets[bucket];
            b.store(b.load(Relaxed) + 1, Relaxed);
        });
    }

    /// How many latencies were recorded, ever (live, not windowed).
    pub fn count(&self) -> i64 {
        self.inner.cells.with_all(|s| {
            s.global.count
                + s.agents
                    .iter()
                    .map(|a| a.cell().count.load(Relaxed))
                    .sum::<i64>()
        })
    }

    /// Records per second over the window (rounded).
    pub fn qps(&self) -> i64 {
        self.inner.read(|w| {
            if w.seconds.is_empty() {
                0
            } else {
                (w.count() as f64 / w.seconds.len() as f64).round() as i64
            }
        })
    }

    /// The average latency over the window; 0 without samples.
    pub fn latency(&self) -> i64 {
        self.inner.read(|w| {
            let n = w.count();
            if n == 0 {
                0
            } else {
                w.seconds
                    .iter()
                    .map(|s| s.sum)
                    .fold(0i64, i64::wrapping_add)
                    / n
            }
        })
    }

    /// The largest latency in the window; 0 without samples.
    pub fn max_latency(&self) -> i64 {
        self.inner.read(|w| {
            w.seconds
                .iter()
                .map(|s| s.max)
                .max()
                .filter(|&m| m != i64::MIN)
                .unwrap_or(0)
        })
    }

    /// The latency at quantile `q` (`0.99` for p99) over the window; 0
    /// without samples.
    pub fn latency_percentile(&self, q: f64) -> i64 {
        self.inner.read(|w| histogram::percentile(&w.merged(), q))
    }

    /// The window's length in seconds.
    pub fn window_size(&self) -> u64 {
        self.inner.secs as u64
    }

    /// Exposes the sub-variables under `prefix` (normalized): on any
    /// duplicate name none of them stays exposed.
    pub fn expose(&self, prefix: &str) -> Result<(), ExposeError> {
        self.expose_subs(prefix, None)
    }

    /// Exposes the sub-variables as one label combination of the families
    /// `<prefix>_latency`, `<prefix>_qps`, ... (see
    /// [`Adder::expose_labeled`](crate::Adder::expose_labeled)): `/metrics`
    /// writes one `<prefix>_latency` summary family with a sample set per
    /// combination. On any duplicate name none stays exposed.
    pub fn expose_labeled(&self, prefix: &str, labels: &[(&str, &str)]) -> Result<(), ExposeError> {
        self.expose_subs(prefix, Some(labels))
    }

    fn expose_subs(
        &self,
        prefix: &str,
        labels: Option<&[(&str, &str)]>,
    ) -> Result<(), ExposeError> {
        let prefix = crate::name::normalize(prefix);
        if prefix.is_empty() {
            return Err(ExposeError::EmptyName);
        }
        let before = self.inner.exposure.len();
        for what in What::ALL {
            let sub = Arc::new(Sub {
                rec: Arc::downgrade(&self.inner),
                what,
            });
            let weak = Arc::downgrade(&sub);
            let weak: Weak<dyn Variable> = weak;
            let name = format!("{prefix}_{}", what.suffix());
            let exposed = match labels {
                None => self.inner.exposure.expose(&name, weak),
                Some(labels) => self.inner.exposure.expose_labeled(&name, labels, weak),
            };
            if let Err(e) = exposed {
                self.inner.exposure.hide_from(before);
                return Err(e);
            }
            self.inner
                .subs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sub);
        }
        Ok(())
    }

    /// Whether `other` is a clone of this handle (the same recorder).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Hides every sub-variable.
    pub fn hide(&self) {
        self.inner.exposure.hide();
    }

    #[cfg(test)]
    pub(crate) fn tick(&self) {
        self.inner.tick();
    }
}

impl LatencyInner {
    fn read<R>(&self, f: impl FnOnce(&WindowState) -> R) -> R {
        f(&self.window.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Cumulative totals, resetting every max.
    fn take_totals(&self) -> Totals {
        self.cells.with_all(|s| {
            let mut t = s.global.clone();
            s.global.max = i64::MIN;
            for agent in &s.agents {
                LatencyKind::fold(&mut t, agent.cell());
                agent.cell().max.store(i64::MIN, Relaxed);
            }
            t
        })
    }
}

impl WindowState {
    fn count(&self) -> i64 {
        self.seconds.iter().map(|s| s.count).sum()
    }

    fn merged(&self) -> Vec<u64> {
        let mut counts = vec![0u64; BUCKETS];
        for (i, c) in self.seconds.iter().flat_map(|s| s.hist.iter()) {
            counts[usize::from(*i)] += c;
        }
        counts
    }
}

impl Tick for LatencyInner {
    fn tick(&self) {
        let now = self.take_totals();
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let hist = (now.buckets.iter().zip(&w.last.buckets).enumerate())
            .filter(|(_, (n, l))| n > l)
            .map(|(i, (n, l))| (i as u16, n - l))
            .collect();
        let second = Second {
            sum: now.sum.wrapping_sub(w.last.sum),
            count: now.count - w.last.count,
            max: now.max,
            hist,
        };
        if w.seconds.len() == self.secs {
            w.seconds.pop_front();
        }
        w.seconds.push_back(second);
        w.last = now;
    }
}

impl fmt::Debug for LatencyRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyRecorder")
            .field("count", &self.count())
            .field("qps", &self.qps())
            .field("latency", &self.latency())
            .field("max_latency", &self.max_latency())
            .field("p99", &self.latency_percentile(0.99))
            .finish()
    }
}

/// Which figure a sub-variable shows.
#[derive(Clone, Copy, Debug)]
enum What {
    Latency,
    MaxLatency,
    Qps,
    Count,
    /// The quantile's digits after `0.` (`"99"` is p99), as in bRPC's
    /// names: `_latency_99`.
    Percentile(&'static str),
}

impl What {
    const ALL: [What; 9] = [
        What::Latency,
        What::MaxLatency,
        What::Qps,
        What::Count,
        What::Percentile("50"),
        What::Percentile("90"),
        What::Percentile("99"),
        What::Percentile("999"),
        What::Percentile("9999"),
    ];

    fn suffix(self) -> String {
        match self {
            What::Latency => "latency".into(),
            What::MaxLatency => "max_latency".into(),
            What::Qps => "qps".into(),
            What::Count => "count".into(),
            What::Percentile(p) => format!("latency_{p}"),
        }
    }

    /// `"99"` → 0.99.
    fn quantile(digits: &str) -> f64 {
        format!("0.{digits}").parse().expect("digits")
    }
}

/// A sub-variable of an exposed recorder.
struct Sub {
    rec: Weak<LatencyInner>,
    what: What,
}

impl Sub {
    fn get(&self) -> i64 {
        let Some(inner) = self.rec.upgrade() else {
            return 0;
        };
        let rec = LatencyRecorder { inner };
        match self.what {
            What::Latency => rec.latency(),
            What::MaxLatency => rec.max_latency(),
            What::Qps => rec.qps(),
            What::Count => rec.count(),
            What::Percentile(p) => rec.latency_percentile(What::quantile(p)),
        }
    }
}

impl Variable for Sub {
    fn value(&self) -> Value {
        Value::Int(self.get())
    }

    /// `_count` is a counter (written `_count_total`), `_qps` and
    /// `_max_latency` gauges; the average and the percentiles are not
    /// dumped one by one but as one summary under the `_latency` name, with
    /// `quantile` labels (window figures) and cumulative `_sum` and
    /// `_count` (the average is `_sum / _count`), as bRPC's dumper does.
    fn dump_prometheus(&self, name: &str, out: &mut String) {
        use crate::prometheus::write_sample;
        match self.what {
            What::Percentile(_) => {}
            What::Count => write_sample(out, name, "counter", "calls recorded", self.get() as f64),
            What::Qps => write_sample(out, name, "gauge", "calls per second", self.get() as f64),
            What::MaxLatency => {
                let help = "largest latency in the window (microseconds)";
                write_sample(out, name, "gauge", help, self.get() as f64)
            }
            What::Latency => {
                let Some(inner) = self.rec.upgrade() else {
                    return;
                };
                let rec = LatencyRecorder { inner };
                let (sum, count) = rec.inner.cells.with_all(|s| {
                    let cells = s.agents.iter().map(|a| a.cell());
                    cells.fold((s.global.sum, s.global.count), |(sum, n), c| {
                        (
                            sum.wrapping_add(c.sum.load(Relaxed)),
                            n + c.count.load(Relaxed),
                        )
                    })
                });
                let quantiles: Vec<(f64, f64)> = What::ALL[4..]
                    .iter()
                    .map(|w| match w {
                        What::Percentile(p) => {
                            let q = What::quantile(p);
                            (q, rec.latency_percentile(q) as f64)
                        }
                        _ => unreachable!("ALL[4..] are percentiles"),
                    })
                    .collect();
                crate::prometheus::write_summary(
                    out,
                    name,
                    "latency in microseconds: percentiles over the window, sum and count since start",
                    &quantiles,
                    sum as f64,
                    count as f64,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_figures() {
        let r = LatencyRecorder::with_window(2);
        assert_eq!(
            (
                r.qps(),
                r.latency(),
                r.max_latency(),
                r.latency_percentile(0.5)
            ),
            (0, 0, 0, 0)
        );
        for v in 1..=10 {
            r.record(v * 10); // 10..100
        }
        r.tick();
        assert_eq!(r.count(), 10);
        assert_eq!(r.qps(), 10);
        assert_eq!(r.latency(), 55);
        assert_eq!(r.max_latency(), 100);
        assert_eq!(r.latency_percentile(0.5), 50);
        assert_eq!(r.latency_percentile(0.9), 90);
        assert_eq!(r.latency_percentile(0.99), 100);

        r.record(1000);
        r.tick();
        assert_eq!(r.qps(), 6, "11 samples over 2 seconds");
        assert_eq!(r.max_latency(), 1000);
        r.tick();
        // Only the second with the single 1000 µs sample is left.
        assert_eq!((r.qps(), r.latency(), r.max_latency()), (1, 1000, 1000));
        assert!((r.latency_percentile(0.5) - 1000).abs() <= 1000 / 64);
        r.tick();
        assert_eq!((r.qps(), r.latency(), r.max_latency()), (0, 0, 0));
        assert_eq!(r.count(), 11);
    }

    #[test]
    fn threads_that_exit_are_counted() {
        let r = LatencyRecorder::with_window(10);
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || (0..1000).for_each(|i| r.record(t * 1000 + i)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        r.tick();
        assert_eq!(r.count(), 2000);
        assert_eq!(r.max_latency(), 1999);
        let p99 = r.latency_percentile(0.99);
        assert!((p99 - 1979).abs() <= 1979 / 64, "p99 {p99}");
    }

    #[test]
    fn exposes_brpc_sub_variables() {
        let r = LatencyRecorder::with_window(1);
        r.expose("LatencyTest").unwrap();
        r.record(70);
        r.tick();
        let names = crate::registry::list();
        for s in [
            "latency",
            "max_latency",
            "qps",
            "count",
            "latency_50",
            "latency_90",
            "latency_99",
            "latency_999",
            "latency_9999",
        ] {
            assert!(
                names.contains(&format!("latency_test_{s}")),
                "{s} in {names:?}"
            );
        }
        assert_eq!(
            crate::registry::describe("latency_test_latency_99").as_deref(),
            Some("70")
        );
        assert_eq!(
            crate::registry::describe("latency_test_count").as_deref(),
            Some("1")
        );
        drop(r);
        assert!(crate::registry::list()
            .iter()
            .all(|n| !n.starts_with("latency_test_")));

        // A clash on the third name rolls back the first two.
        let taken = crate::Adder::new_exposed("latency_test_qps").unwrap();
        let other = LatencyRecorder::new();
        let err = other.expose("latency_test").unwrap_err();
        assert_eq!(err, ExposeError::Duplicate("latency_test_qps".into()));
        assert!(crate::registry::describe("latency_test_latency").is_none());
        drop(taken);
        other.expose("latency_test").unwrap();
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// End to end (two threads, a tick, the window merge): every
        /// percentile within 1/64 of the exact sample of that rank.
        #[test]
        fn window_percentiles_match_exact(
            samples in proptest::collection::vec(0i64..10_000_000, 1..3000),
        ) {
            let r = LatencyRecorder::with_window(5);
            let (a, b) = samples.split_at(samples.len() / 2);
            std::thread::scope(|s| {
                s.spawn(|| a.iter().for_each(|&v| r.record(v)));
                s.spawn(|| b.iter().for_each(|&v| r.record(v)));
            });
            r.tick();
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            for q in [0.5, 0.9, 0.99, 0.999, 0.9999] {
                let exact = sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
                let est = r.latency_percentile(q);
                proptest::prop_assert!((est - exact).abs() as f64 <= exact as f64 / 64.0,
                    "q={} est={} exact={}", q, est, exact);
            }
            proptest::prop_assert_eq!(r.max_latency(), sorted[n - 1]);
            proptest::prop_assert_eq!(r.count(), n as i64);
        }
    }
}
