//! A worker's overflow queue: under overload, ready fibers set aside so
//! the recently woken run first, with a bound on how long the set-aside
//! wait.
//!
//! Why: when thousands of fibers are ready on one worker (TCP echo at
//! 10,000 connections, all of them busy), a FIFO of all of them cycles
//! through every connection, and each runs with its stack, metadata and
//! socket out of cache — and answers late enough that the kernel's
//! delayed-ACK timer fires first, an extra timer and packet per request.
//! tokio's run queue avoids this by the accident of its shape (256 local
//! slots, the older half moved to the shared queue when full, that one
//! looked at every 61 polls): most connections cycle through a working set
//! that fits, the rest wait. Here the same shape, with the wait bounded:
//! once the oldest set-aside fiber has waited the bound, the worker runs
//! the set-aside ones that old before anything fresh. The bound grows with
//! the backlog (`WAIT_PER_FIBER` for each fiber set aside, at least
//! `MIN_WAIT`): a few times what running them all in turn would take, so
//! the tail stays in proportion to the load: ~200 ms with 4,000 set aside
//! (TCP echo at 10,000 busy connections), ~20 ms with 400.
//!
//! The mean latency under a given overload is fixed (Little's law); the
//! policy chooses its shape: a FIFO gives everyone about the mean, this
//! gives most a fraction of it and a few a few times it. TCP echo at
//! 10,000 connections (`benches/ab.sh echo`, `benches/net/run.sh` against
//! tokio in BENCHMARKS.md): ~1.3x the requests a second at ~0.77x the
//! CPU per request, the median from ~95 to ~3-10 ms, the 99th percentile
//! from ~185 to ~260 ms (tokio's: ~290-410 ms).

use super::task_meta::TaskRef;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Most fibers a resume queue holds before its older half is set aside
/// (tokio's local queue size).
const RESUME_MAX: usize = 256;
/// How long a set-aside fiber may wait, per fiber set aside, before it
/// runs ahead of fresh ones: ~5 times what a request of a busy echo
/// connection costs to run.
const WAIT_PER_FIBER: Duration = Duration::from_micros(50);
/// The least that bound is.
const MIN_WAIT: Duration = Duration::from_millis(2);

/// Fibers set aside from a worker's resume queue, oldest first, each with
/// the time it was set aside.
#[derive(Default)]
pub(crate) struct Overflow {
    queue: VecDeque<(TaskRef, Instant)>,
    /// How many at the front have waited the bound: they run before
    /// anything fresh.
    due: usize,
}

impl Overflow {
    /// Whether nothing is set aside.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sets aside the older fibers of `resume` if it holds more than
    /// `RESUME_MAX`, keeping the `RESUME_MAX / 2` woken last.
    #[inline]
    pub(crate) fn spill(&mut self, resume: &mut VecDeque<TaskRef>) {
        let len = resume.len();
        if len > RESUME_MAX {
            let older = len - RESUME_MAX / 2;
            let now = Instant::now();
            self.queue.extend(resume.drain(..older).map(|t| (t, now)));
        }
    }

    /// The periodic look (every `GLOBAL_CHECK_INTERVAL` runs): counts the
    /// fibers that waited the bound (one clock read, only while fibers are
    /// set aside), then takes the oldest one, as tokio takes one from its
    /// shared queue.
    pub(crate) fn periodic(&mut self) -> Option<TaskRef> {
        if self.queue.is_empty() {
            return None;
        }
        self.periodic_at(Instant::now())
    }

    fn periodic_at(&mut self, now: Instant) -> Option<TaskRef> {
        if self.due == 0 {
            let bound = self.max_wait();
            self.due = self
                .queue
                .iter()
                .take_while(|(_, at)| now.duration_since(*at) >= bound)
                .count();
        }
        self.pop()
    }

    /// How long the set-aside may wait now (see the module docs).
    fn max_wait(&self) -> Duration {
        (WAIT_PER_FIBER * self.queue.len() as u32).max(MIN_WAIT)
    }

    /// The oldest fiber, if it waited the bound.
    #[inline]
    pub(crate) fn pop_due(&mut self) -> Option<TaskRef> {
        if self.due == 0 {
            return None;
        }
        self.pop()
    }

    /// The oldest fiber.
    pub(crate) fn pop(&mut self) -> Option<TaskRef> {
        self.due = self.due.saturating_sub(1);
        self.queue.pop_front().map(|(t, _)| t)
    }

    /// Gives back the queue's memory once it is empty and grew past
    /// `keep` slots (the worker is going to sleep).
    pub(crate) fn shrink(&mut self, keep: usize) {
        if self.queue.is_empty() && self.queue.capacity() > keep {
            self.queue.shrink_to(0);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::runtime::task_meta::TaskMeta;

    fn tasks(n: usize) -> VecDeque<TaskRef> {
        (0..n as u32)
            .map(|i| &*Box::leak(Box::new(TaskMeta::new(i))))
            .collect()
    }

    fn slots(q: &VecDeque<TaskRef>) -> Vec<u32> {
        q.iter().map(|t| t.slot()).collect()
    }

    #[test]
    fn a_queue_that_fits_stays_fifo() {
        let mut o = Overflow::default();
        let mut resume = tasks(RESUME_MAX);
        o.spill(&mut resume);
        assert!(o.is_empty());
        assert_eq!(slots(&resume), (0..RESUME_MAX as u32).collect::<Vec<_>>());
    }

    #[test]
    fn past_the_bound_the_older_are_set_aside_in_order() {
        let mut o = Overflow::default();
        let n = 4 * RESUME_MAX;
        let mut resume = tasks(n);
        o.spill(&mut resume);
        let kept = RESUME_MAX / 2;
        assert_eq!(
            slots(&resume),
            ((n - kept) as u32..n as u32).collect::<Vec<_>>()
        );
        let set_aside: Vec<u32> = std::iter::from_fn(|| o.pop()).map(|t| t.slot()).collect();
        assert_eq!(set_aside, (0..(n - kept) as u32).collect::<Vec<_>>());
    }

    #[test]
    fn the_bound_grows_with_the_backlog() {
        let mut o = Overflow::default();
        assert_eq!(o.max_wait(), MIN_WAIT);
        let mut resume = tasks(4000 + RESUME_MAX / 2);
        o.spill(&mut resume);
        assert_eq!(o.max_wait(), Duration::from_millis(200));
    }

    #[test]
    fn fibers_set_aside_for_max_wait_come_before_fresh_ones() {
        let mut o = Overflow::default();
        let mut resume = tasks(4 * RESUME_MAX);
        o.spill(&mut resume);
        let set_aside = o.queue.len();
        let at = o.queue[0].1;
        // Not yet due: the periodic look takes one, nothing is due after.
        assert_eq!(o.periodic_at(at).map(|t| t.slot()), Some(0));
        assert!(o.pop_due().is_none());
        // Due: every one set aside then runs ahead of fresh fibers.
        let bound = o.max_wait();
        assert_eq!(o.periodic_at(at + bound).map(|t| t.slot()), Some(1));
        let mut n = 2;
        while let Some(t) = o.pop_due() {
            assert_eq!(t.slot(), n);
            n += 1;
        }
        assert_eq!(n as usize, set_aside);
        assert!(o.is_empty());
    }
}
