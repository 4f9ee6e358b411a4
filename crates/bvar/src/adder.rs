//! [`Adder`]: a sum of `i64`s (bRPC's `bvar::Adder<int64_t>`).

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

use crate::combiner::{kind_storage, Combiner, Kind};
use crate::handle::expose_methods;
use crate::registry::{ExposeError, Exposure};
use crate::value::{Value, Variable};
use crate::window::{Rate, Windowable};

pub(crate) struct AddKind;

impl Kind for AddKind {
    type Cell = AtomicI64;
    type Acc = i64;
    fn new_cell() -> AtomicI64 {
        AtomicI64::new(0)
    }
    fn identity() -> i64 {
        0
    }
    fn fold(acc: &mut i64, cell: &AtomicI64) {
        *acc = acc.wrapping_add(cell.load(Relaxed));
    }
    kind_storage!(AddKind);
}

/// A sum of `i64`s, updated per thread and combined on read.
///
/// `add` costs a thread-local lookup plus a relaxed load and store (no
/// atomic read-modify-write, no shared cache line). `get_value` locks and
/// walks every thread's cell: reads are for monitoring, not hot paths.
/// Exposed, it is a Prometheus counter (so add only non-negative amounts to
/// an exposed adder if you scrape it).
#[derive(Clone, Default)]
pub struct Adder {
    inner: Arc<AdderInner>,
}

#[derive(Default)]
struct AdderInner {
    sum: Combiner<AddKind>,
    exposure: Exposure,
}

impl Adder {
    /// A new adder at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new adder, exposed as `name`.
    pub fn new_exposed(name: &str) -> Result<Self, ExposeError> {
        let a = Self::new();
        a.expose(name)?;
        Ok(a)
    }

    /// Adds `v` (wrapping on overflow).
    #[inline]
    pub fn add(&self, v: i64) {
        self.inner
            .sum
            .with_cell(|c| c.store(c.load(Relaxed).wrapping_add(v), Relaxed));
    }

    /// The sum over all threads, including threads that have exited.
    pub fn get_value(&self) -> i64 {
        self.inner.sum.combine()
    }

    expose_methods!();
}

impl fmt::Debug for Adder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Adder").field(&self.get_value()).finish()
    }
}

impl Variable for AdderInner {
    fn value(&self) -> Value {
        Value::Int(self.sum.combine())
    }

    fn dump_prometheus(&self, name: &str, out: &mut String) {
        let v = self.sum.combine() as f64;
        crate::prometheus::write_sample(out, name, "counter", "running total (bvar Adder)", v);
    }
}

impl Windowable for Adder {
    /// The running sum.
    type Sample = i64;
    type Output = i64;

    fn take_sample(&self) -> i64 {
        self.get_value()
    }

    /// The growth over the window.
    fn window_value(samples: &[i64]) -> i64 {
        match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => b.wrapping_sub(*a),
            _ => 0,
        }
    }
}

impl Rate for Adder {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_across_threads_and_keeps_exited_contributions() {
        let a = Adder::new();
        a.add(7);
        let threads: Vec<_> = (0..3)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        a.add(i % 3 + t);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let per_thread: i64 = (0..10_000).map(|i| i % 3).sum();
        assert_eq!(a.get_value(), 7 + 3 * per_thread + 10_000 * 3);
        a.add(-7);
        assert_eq!(a.get_value(), 3 * per_thread + 30_000);
    }

    #[test]
    fn concurrent_reads_see_monotonic_progress() {
        let a = Adder::new();
        let writer = {
            let a = a.clone();
            std::thread::spawn(move || (0..100_000).for_each(|_| a.add(1)))
        };
        let mut last = 0;
        while !writer.is_finished() {
            let v = a.get_value();
            assert!(v >= last && v <= 100_000);
            last = v;
        }
        writer.join().unwrap();
        assert_eq!(a.get_value(), 100_000);
    }

    #[test]
    fn describe_and_expose() {
        let a = Adder::new_exposed("adder_test_describe").unwrap();
        a.add(41);
        a.add(1);
        assert_eq!(
            crate::registry::describe("adder_test_describe").as_deref(),
            Some("42")
        );
        assert_eq!(format!("{a:?}"), "Adder(42)");
    }
}
