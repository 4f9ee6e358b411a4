//! A worker that runs out of fibers gives its CPU away, at most once per
//! interval: the preemption the kernel would make anyway then lands where
//! none of the worker's fibers waits.
//!
//! When the machine has more runnable threads than cores (a load
//! generator on the same host, other services, a second runtime), the
//! kernel preempts a worker that has run for its share, typically on its
//! next scheduler tick or when it wakes a peer (a `send` that wakes the
//! receiving thread returns into `schedule()`). A worker preempted in the
//! middle of a batch of ready fibers leaves them waiting until it runs
//! again: they are pinned to it, and another worker cannot take them. The
//! wait is one or two ticks (4 or 8 ms at 250 Hz): TCP echo at 50
//! connections with the load generator on the same two cores had its
//! 99th percentile at 4.0–4.8 ms and its 99.9th at 7.7–8.5 ms, tokio's
//! 2.7–4.1 and 4.7–5.4 ms (`perf sched timehist`: the workers waited
//! runnable over 3 ms 50 times in 2 s, tokio's 20). The io_uring driver,
//! whose sends leave in one submission per batch, did not have that tail,
//! nor did workers with a dedicated poller thread, which sleep more often.
//!
//! Yielding (`sched_yield(2)`) when the worker has nothing to run strands
//! no fiber: the peers that were due run now, and the worker is less
//! often due in the middle of its next batch. With no other thread
//! waiting for the core, the call returns at once. Once per interval
//! bounds the system calls (and the context switches when others do
//! wait): yielding at every idle moment (~13,000 a second per worker in
//! that benchmark) cut the tail furthest (p99 0.58 ms) but cost 8 % of
//! the requests per second and quadrupled the median.
//!
//! Off unless configured (`Builder::idle_yield_interval`,
//! `FIBRPC_IDLE_YIELD_US`): where the peer shares the cores the time
//! handed to it is also throughput lost (HTTP under wrk: 8 %).

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable that sets the default interval, in
/// microseconds (unset or 0: never yield).
const ENV_EVERY: &str = "FIBRPC_IDLE_YIELD_US";

/// The default interval in microseconds, 0 for never: [`ENV_EVERY`], or
/// never. Off by default because the tail it cuts costs throughput where
/// the peer shares the cores: HTTP under wrk on 2 cores lost 8 % of its
/// requests per second at 2.5 ms (see the builder's option).
pub(crate) fn default_every_us() -> u64 {
    static FROM_ENV: OnceLock<u64> = OnceLock::new();
    *FROM_ENV.get_or_init(|| {
        std::env::var(ENV_EVERY)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// One worker's record of when it last yielded.
pub(crate) struct IdleYield {
    /// `None`: never yield.
    every: Option<Duration>,
    last: Cell<Instant>,
}

impl IdleYield {
    /// Yields at most once per `every` (`None`: never).
    pub(crate) fn new(every: Option<Duration>) -> IdleYield {
        IdleYield {
            every,
            last: Cell::new(Instant::now()),
        }
    }

    /// The worker found nothing to run: yields its CPU if it has not
    /// yielded for an interval. Returns whether it did.
    #[inline]
    pub(crate) fn at_idle(&self) -> bool {
        let Some(every) = self.every else {
            return false;
        };
        let now = Instant::now();
        if now.duration_since(self.last.get()) < every {
            return false;
        }
        std::thread::yield_now();
        self.last.set(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_at_most_once_per_interval() {
        let y = IdleYield::new(Some(Duration::from_millis(20)));
        assert!(!y.at_idle(), "not an interval yet: no yield");
        std::thread::sleep(Duration::from_millis(25));
        assert!(y.at_idle(), "an interval passed: yielded");
        assert!(!y.at_idle(), "just yielded: not again");
    }

    #[test]
    fn never_without_an_interval() {
        let y = IdleYield::new(None);
        std::thread::sleep(Duration::from_millis(2));
        assert!(!y.at_idle());
    }
}
