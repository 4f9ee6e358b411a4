//! The count of a server's requests in flight: what a stop waits to
//! reach zero, and what `max_concurrency` limits.
//!
//! Without a limit nobody needs the count on the request path, only its
//! sum when a stop waits or `/status` shows it: each thread then counts
//! in its own cell of a bvar [`Adder`] (a plain load and store, no
//! shared cache line). One shared counter was two `lock xadd`s per
//! request on a line the workers took from each other (HTTP under wrk,
//! two workers: every request moved it, often twice). With
//! `max_concurrency` set, admission reads the count each request saw on
//! entering, so there is one shared counter, as before.
//!
//! The stop's handshake: `enter` counts the request, then (`SeqCst`)
//! loads `closing`; the stop stores `closing` (`SeqCst`), then sums. The
//! adder's cells are written and read relaxed, so each side puts a
//! `fence(SeqCst)` between its write and its read: whichever fence comes
//! first in the single total order, either the sum sees the request or
//! the request sees `closing`. The same holds for `exit` and the stop's
//! `draining` flag (see `count_out`). A request may count out on another
//! thread than the one it counted in on (a `Responder` answered
//! elsewhere): one cell then goes negative and the sum is still right.

use std::sync::atomic::{fence, AtomicUsize, Ordering};

use fibrpc_bvar::Adder;
use fibrpc_fiber::butex::Butex;

/// Requests in flight (see the module docs).
pub(crate) struct InflightCount {
    /// With a `max_concurrency`: one counter, so an entering request
    /// learns the exact count before it.
    exact: Option<AtomicUsize>,
    /// Without: a cell per thread.
    cells: Adder,
    /// Bumped by every request that counts out while a stop drains: what
    /// the stop sleeps on between two sums.
    changed: Butex,
}

impl InflightCount {
    /// A count at zero; `exact` when admission needs the count each
    /// request sees (a `max_concurrency`).
    pub(crate) fn new(exact: bool) -> InflightCount {
        InflightCount {
            exact: exact.then(|| AtomicUsize::new(0)),
            cells: Adder::new(),
            changed: Butex::new(0),
        }
    }

    /// Counts a request in. Returns the requests in flight before it if
    /// the count is exact (0 otherwise). Ordered before the caller's
    /// `SeqCst` load of `closing` (see the module docs).
    #[inline]
    pub(crate) fn enter(&self) -> usize {
        match &self.exact {
            Some(count) => count.fetch_add(1, Ordering::SeqCst),
            None => {
                self.cells.add(1);
                fence(Ordering::SeqCst);
                0
            }
        }
    }

    /// Counts a request out, ordered before the caller's `SeqCst` load of
    /// whether a stop drains (see `count_out`): either that load sees the
    /// stop, which then gets a [`wake`](Self::wake), or the stop's sum,
    /// after its store, sees this.
    #[inline]
    pub(crate) fn exit(&self) {
        match &self.exact {
            Some(count) => {
                count.fetch_sub(1, Ordering::SeqCst);
            }
            None => {
                self.cells.add(-1);
                fence(Ordering::SeqCst);
            }
        }
    }

    /// The requests in flight now; ordered after the caller's `SeqCst`
    /// store of `closing` or `draining` (the stop's side of the
    /// handshake).
    pub(crate) fn sum(&self) -> usize {
        match &self.exact {
            Some(count) => count.load(Ordering::SeqCst),
            None => {
                fence(Ordering::SeqCst);
                self.cells.get_value().max(0) as usize
            }
        }
    }

    /// What [`wait_changed`](Self::wait_changed) compares with: read
    /// before the sum it follows.
    pub(crate) fn generation(&self) -> u32 {
        self.changed.value().load(Ordering::SeqCst)
    }

    /// Tells a stop waiting in [`wait_changed`](Self::wait_changed) that
    /// a request counted out.
    pub(crate) fn wake(&self) {
        self.changed.value().fetch_add(1, Ordering::SeqCst);
        self.changed.wake_all();
    }

    /// Sleeps until a request counts out after `generation` was read (at
    /// once if one did), or until `deadline`.
    pub(crate) fn wait_changed(&self, generation: u32, deadline: Option<std::time::Instant>) {
        let _ = self.changed.wait(generation, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Requests counted in and out on many threads, some out on another
    /// thread than the one they came in on, sum to what is in flight.
    #[test]
    fn the_sum_is_what_is_in_flight_across_threads() {
        let count = Arc::new(InflightCount::new(false));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let c = count.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        c.enter();
                    }
                    for _ in 0..60 {
                        c.exit();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(count.sum(), 20 * 40);
        // Out on this thread, whose cell never counted them in.
        for _ in 0..20 * 40 {
            count.exit();
        }
        assert_eq!(count.sum(), 0);
    }

    /// With a limit, each request learns how many came in before it.
    #[test]
    fn an_exact_count_tells_each_request_what_came_before() {
        let count = InflightCount::new(true);
        assert_eq!(count.enter(), 0);
        assert_eq!(count.enter(), 1);
        count.exit();
        assert_eq!(count.enter(), 1);
        assert_eq!(count.sum(), 2);
    }

    /// A request that counts out after the generation was read ends the
    /// wait at once.
    #[test]
    fn a_count_out_after_the_generation_ends_the_wait() {
        let count = InflightCount::new(false);
        count.enter();
        let g = count.generation();
        count.exit();
        count.wake();
        // Returns without a deadline: the generation moved.
        count.wait_changed(g, None);
        assert_eq!(count.sum(), 0);
    }
}

/// The stop's handshake with requests, modelled with loom's atomics (the
/// accesses of `InflightGuard::enter`/`admit`, `count_out` and
/// `stop::wait_handlers`, with the adder's per-thread cells as two
/// atomics written and read relaxed and the same `fence(SeqCst)`s; the
/// generation butex's wait is a spin on its value): a stop that finds no
/// request in flight never leaves one admitted and still running, and it
/// ends. Without the fences loom reports the store-buffering outcome.
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::atomic::{
        fence, AtomicBool, AtomicIsize, AtomicU32, Ordering::Relaxed, Ordering::SeqCst,
    };
    use loom::sync::Arc;

    struct Model {
        cells: [AtomicIsize; 2],
        closing: AtomicBool,
        draining: AtomicBool,
        generation: AtomicU32,
        /// Admitted requests not yet counted out (the property's witness).
        running: AtomicIsize,
    }

    #[test]
    fn loom_stop_waits_for_every_admitted_request() {
        loom::model(|| {
            let m = Arc::new(Model {
                cells: [AtomicIsize::new(0), AtomicIsize::new(0)],
                closing: AtomicBool::new(false),
                draining: AtomicBool::new(false),
                generation: AtomicU32::new(0),
                running: AtomicIsize::new(0),
            });
            // A request on its own cell, counted out on the other one
            // (a responder answering elsewhere).
            let r = m.clone();
            let request = loom::thread::spawn(move || {
                // An adder cell: its thread's plain load and store.
                let add =
                    |cell: &AtomicIsize, v: isize| cell.store(cell.load(Relaxed) + v, Relaxed);
                add(&r.cells[1], 1);
                fence(SeqCst);
                let admitted = !r.closing.load(SeqCst);
                if admitted {
                    r.running.fetch_add(1, SeqCst);
                    r.running.fetch_sub(1, SeqCst);
                }
                add(&r.cells[0], -1);
                fence(SeqCst);
                if r.draining.load(SeqCst) {
                    r.generation.fetch_add(1, SeqCst);
                }
            });
            // `InflightCount::sum`: a fence, then the cells read relaxed.
            let sum = |m: &Model| {
                fence(SeqCst);
                m.cells.iter().map(|c| c.load(Relaxed)).sum::<isize>()
            };
            m.draining.store(true, SeqCst);
            loop {
                let g = m.generation.load(SeqCst);
                if sum(&m) == 0 {
                    m.closing.store(true, SeqCst);
                    if sum(&m) == 0 {
                        break;
                    }
                    continue;
                }
                while m.generation.load(SeqCst) == g {
                    loom::thread::yield_now();
                }
            }
            // Stopped: nothing admitted is still running.
            assert_eq!(m.running.load(SeqCst), 0);
            request.join().unwrap();
        });
    }
}
