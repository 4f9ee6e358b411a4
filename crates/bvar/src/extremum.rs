//! [`Maxer`] and [`Miner`]: the largest / smallest `i64` seen (bRPC's
//! `bvar::Maxer` / `bvar::Miner`). Same per-thread scheme as `Adder`: an
//! update is a relaxed load, a compare and (only when it changes) a
//! relaxed store.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

use crate::combiner::{kind_storage, Combiner, Kind};
use crate::handle::expose_methods;
use crate::registry::Exposure;
use crate::value::{Value, Variable};
use crate::window::Windowable;

macro_rules! extremum {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $kind:ident, $identity:expr, $better:ident, $verb:literal) => {
        pub(crate) struct $kind;

        impl Kind for $kind {
            type Cell = AtomicI64;
            type Acc = i64;
            fn new_cell() -> AtomicI64 {
                AtomicI64::new($identity)
            }
            fn identity() -> i64 {
                $identity
            }
            fn fold(acc: &mut i64, cell: &AtomicI64) {
                *acc = (*acc).$better(cell.load(Relaxed));
            }
            kind_storage!($kind);
        }

        $(#[$doc])*
        ///
        /// Wrapped in a [`Window`](crate::Window), the sampler *resets* it
        /// every second (an extremum cannot be subtracted out of a window
        /// the way a sum can), so read the window, not the variable itself.
        /// An update racing with that reset may be counted in the next
        /// second instead.
        #[derive(Clone, Default)]
        pub struct $name {
            inner: Arc<$inner>,
        }

        #[derive(Default)]
        struct $inner {
            cells: Combiner<$kind>,
            exposure: Exposure,
        }

        impl $name {
            #[doc = concat!("A new variable with no sample (reads as 0).")]
            pub fn new() -> Self {
                Self::default()
            }

            #[doc = concat!("Records `v` if it is ", $verb, " than every value so far.")]
            #[inline]
            pub fn update(&self, v: i64) {
                self.inner.cells.with_cell(|c| {
                    if v.$better(c.load(Relaxed)) == v {
                        c.store(v, Relaxed);
                    }
                });
            }

            /// The extremum over all threads; 0 if nothing was recorded.
            pub fn get_value(&self) -> i64 {
                self.inner.get()
            }

            /// Returns the extremum and starts over (what a window does
            /// each second).
            pub(crate) fn reset(&self) -> i64 {
                let v = self.inner.cells.with_all(|state| {
                    let mut acc = std::mem::replace(&mut state.global, $identity);
                    for agent in &state.agents {
                        acc = acc.$better(agent.cell().swap($identity, Relaxed));
                    }
                    acc
                });
                if v == $identity { 0 } else { v }
            }

            expose_methods!();
        }

        impl $inner {
            fn get(&self) -> i64 {
                let v = self.cells.combine();
                if v == $identity { 0 } else { v }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.get_value()).finish()
            }
        }

        impl Variable for $inner {
            fn value(&self) -> Value {
                Value::Int(self.get())
            }
        }

        impl Windowable for $name {
            /// The extremum of one second (the variable is reset).
            type Sample = i64;
            type Output = i64;

            fn take_sample(&self) -> i64 {
                self.reset()
            }

            /// The extremum of the seconds in the window (the first sample,
            /// taken when the window started, is before it).
            fn window_value(samples: &[i64]) -> i64 {
                samples.iter().skip(1).copied().reduce(|a, b| a.$better(b)).unwrap_or(0)
            }
        }
    };
}

extremum!(
    /// The largest `i64` recorded, from any thread.
    Maxer, MaxerInner, MaxKind, i64::MIN, max, "larger"
);
extremum!(
    /// The smallest `i64` recorded, from any thread.
    Miner, MinerInner, MinKind, i64::MAX, min, "smaller"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_min_across_threads() {
        let (mx, mn) = (Maxer::new(), Miner::new());
        assert_eq!((mx.get_value(), mn.get_value()), (0, 0));
        let threads: Vec<_> = (0..4i64)
            .map(|t| {
                let (mx, mn) = (mx.clone(), mn.clone());
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        mx.update(t * 1000 + i);
                        mn.update(-(t * 1000 + i) + 5);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(mx.get_value(), 3999);
        assert_eq!(mn.get_value(), -3994);
        mx.update(-5);
        assert_eq!(mx.get_value(), 3999);
    }

    #[test]
    fn reset_starts_over() {
        let m = Maxer::new();
        m.update(-3);
        assert_eq!(m.get_value(), -3);
        assert_eq!(m.reset(), -3);
        assert_eq!(m.get_value(), 0);
        m.update(9);
        assert_eq!(m.get_value(), 9);
    }
}
