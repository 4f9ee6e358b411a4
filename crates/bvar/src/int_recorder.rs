//! [`IntRecorder`]: the average of `i64` samples (bRPC's
//! `bvar::IntRecorder`).
//!
//! Each thread keeps a sum and a count in two relaxed cells. bRPC packs
//! both into one 64-bit word (44-bit sum, 20-bit count, with overflow
//! handling) so a reader never sees them apart; here they are two words:
//! the owner stores the sum, then the count, and a reader loads them
//! without ordering, so a read racing an update may count that one sample
//! in the sum but not the count (or the reverse). The average is off by
//! at most one sample for that one read, and nothing is lost: the next
//! read sees both. In exchange sums and counts have the full 64 bits.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

use crate::combiner::{kind_storage, Combiner, Kind};
use crate::handle::expose_methods;
use crate::registry::Exposure;
use crate::value::{Value, Variable};
use crate::window::Windowable;

/// One thread's sum and count.
pub(crate) struct SumCount {
    sum: AtomicI64,
    count: AtomicI64,
}

pub(crate) struct RecorderKind;

impl Kind for RecorderKind {
    type Cell = SumCount;
    /// (sum, count)
    type Acc = (i64, i64);
    fn new_cell() -> SumCount {
        SumCount {
            sum: AtomicI64::new(0),
            count: AtomicI64::new(0),
        }
    }
    fn identity() -> (i64, i64) {
        (0, 0)
    }
    fn fold(acc: &mut (i64, i64), cell: &SumCount) {
        acc.0 = acc.0.wrapping_add(cell.sum.load(Relaxed));
        acc.1 = acc.1.wrapping_add(cell.count.load(Relaxed));
    }
    kind_storage!(RecorderKind);
}

/// The average of recorded `i64`s, from any thread.
#[derive(Clone, Default)]
pub struct IntRecorder {
    inner: Arc<RecorderInner>,
}

#[derive(Default)]
struct RecorderInner {
    cells: Combiner<RecorderKind>,
    exposure: Exposure,
}

fn average((sum, count): (i64, i64)) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}

impl IntRecorder {
    /// A new recorder with no sample (average 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample.
    #[inline]
    pub fn record(&self, v: i64) {
        self.inner.cells.with_cell(|c| {
            c.sum.store(c.sum.load(Relaxed).wrapping_add(v), Relaxed);
            c.count.store(c.count.load(Relaxed) + 1, Relaxed);
        });
    }

    /// The average of every sample so far; 0 when there is none.
    pub fn average(&self) -> f64 {
        average(self.inner.cells.combine())
    }

    /// `(sum, count)` of every sample so far.
    pub fn sum_count(&self) -> (i64, i64) {
        self.inner.cells.combine()
    }

    expose_methods!();
}

impl fmt::Debug for IntRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sum, count) = self.sum_count();
        f.debug_struct("IntRecorder")
            .field("sum", &sum)
            .field("count", &count)
            .finish()
    }
}

impl Variable for RecorderInner {
    fn value(&self) -> Value {
        Value::Float(average(self.cells.combine()))
    }
}

impl Windowable for IntRecorder {
    /// The running (sum, count).
    type Sample = (i64, i64);
    type Output = f64;

    fn take_sample(&self) -> (i64, i64) {
        self.sum_count()
    }

    /// The average of the samples recorded during the window.
    fn window_value(samples: &[(i64, i64)]) -> f64 {
        match (samples.first(), samples.last()) {
            (Some(a), Some(b)) => average((b.0.wrapping_sub(a.0), b.1 - a.1)),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_across_threads() {
        let r = IntRecorder::new();
        assert_eq!(r.average(), 0.0);
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || (1..=100).for_each(|i| r.record(i + t * 100)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(r.sum_count(), ((1..=200).sum(), 200));
        assert_eq!(r.average(), 100.5);
    }
}
