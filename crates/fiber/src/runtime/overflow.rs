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
//! that fits, the rest wait. Here the same shape, entered only past
//! `SPILL_START` ready fibers (below it the queue stays FIFO: short tails
//! while the working set fits), and with the wait bounded: once the oldest
//! set-aside fiber has waited `MAX_WAIT`, the worker runs the set-aside
//! ones that old before anything fresh.
//!
//! The mean latency under a given overload is fixed (Little's law); the
//! policy chooses its shape: a FIFO gives everyone about the mean, this
//! gives most a fraction of it and a few up to `MAX_WAIT` more. TCP echo
//! at 10,000 connections (`benches/ab.sh echo`, `benches/net/run.sh`
//! against tokio in BENCHMARKS.md): ~1.3x the requests a second at ~0.75x
//! the CPU per request, the median from ~95 to ~3-15 ms, the 99th
//! percentile from ~180 to ~290 ms.

use super::task_meta::TaskRef;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Ready fibers on one worker past which the older are set aside (a
/// working set of about a thousand connections' stacks, metadata and
/// sockets still fits in a core's 2 MiB L2 cache)...
const SPILL_START: usize = 1024;
/// ...and then, while any are set aside, the most a resume queue holds
/// before its older half is (tokio's local queue size).
const RESUME_MAX: usize = 256;
/// The longest a set-aside fiber waits before it runs ahead of fresh ones
/// (plus the time to run those older than it).
const MAX_WAIT: Duration = Duration::from_millis(250);

/// Fibers set aside from a worker's resume queue, oldest first, each with
/// the time it was set aside.
#[derive(Default)]
pub(crate) struct Overflow {
    queue: VecDeque<(TaskRef, Instant)>,
    /// How many at the front have waited `MAX_WAIT`: they run before
    /// anything fresh.
    due: usize,
}

impl Overflow {
    /// Whether nothing is set aside.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Sets aside the older fibers of `resume`, keeping the
    /// `RESUME_MAX / 2` woken last, if it holds more than `SPILL_START`, or
    /// more than `RESUME_MAX` while fibers are set aside already.
    #[inline]
    pub(crate) fn spill(&mut self, resume: &mut VecDeque<TaskRef>) {
        let len = resume.len();
        if len > RESUME_MAX && (len > SPILL_START || !self.queue.is_empty()) {
            let older = len - RESUME_MAX / 2;
            let now = Instant::now();
            self.queue.extend(resume.drain(..older).map(|t| (t, now)));
        }
    }

    /// The periodic look (every `GLOBAL_CHECK_INTERVAL` runs): counts the
    /// fibers that waited `MAX_WAIT` (one clock read, only while fibers
    /// are set aside), then takes the oldest one, as tokio takes one from
    /// its shared queue.
    pub(crate) fn periodic(&mut self) -> Option<TaskRef> {
        if self.queue.is_empty() {
            return None;
        }
        self.periodic_at(Instant::now())
    }

    fn periodic_at(&mut self, now: Instant) -> Option<TaskRef> {
        if self.due == 0 {
            self.due = self
                .queue
                .iter()
                .take_while(|(_, at)| now.duration_since(*at) >= MAX_WAIT)
                .count();
        }
        self.pop()
    }

    /// The oldest fiber, if it waited `MAX_WAIT`.
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
        let mut resume = tasks(SPILL_START);
        o.spill(&mut resume);
        assert!(o.is_empty());
        assert_eq!(resume.len(), SPILL_START);
    }

    #[test]
    fn past_the_start_the_older_are_set_aside_in_order() {
        let mut o = Overflow::default();
        let mut resume = tasks(SPILL_START + 1);
        o.spill(&mut resume);
        let kept = RESUME_MAX / 2;
        assert_eq!(resume.len(), kept);
        assert_eq!(
            resume.front().unwrap().slot(),
            (SPILL_START + 1 - kept) as u32
        );
        let set_aside: Vec<u32> = std::iter::from_fn(|| o.pop()).map(|t| t.slot()).collect();
        assert_eq!(
            set_aside,
            (0..(SPILL_START + 1 - kept) as u32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn while_fibers_are_set_aside_the_resume_queue_stays_short() {
        let mut o = Overflow::default();
        let mut resume = tasks(SPILL_START + 1);
        o.spill(&mut resume);
        resume.extend(tasks(RESUME_MAX));
        o.spill(&mut resume);
        assert_eq!(resume.len(), RESUME_MAX / 2);
        assert_eq!(
            slots(&resume),
            (RESUME_MAX as u32 / 2..RESUME_MAX as u32).collect::<Vec<_>>()
        );
    }

    #[test]
    fn fibers_set_aside_for_max_wait_come_before_fresh_ones() {
        let mut o = Overflow::default();
        let mut resume = tasks(SPILL_START + 1);
        o.spill(&mut resume);
        let set_aside = o.queue.len();
        let at = o.queue[0].1;
        // Not yet due: the periodic look takes one, nothing is due after.
        assert_eq!(o.periodic_at(at).map(|t| t.slot()), Some(0));
        assert!(o.pop_due().is_none());
        // Due: every one set aside then runs ahead of fresh fibers.
        assert_eq!(o.periodic_at(at + MAX_WAIT).map(|t| t.slot()), Some(1));
        let mut n = 2;
        while let Some(t) = o.pop_due() {
            assert_eq!(t.slot(), n);
            n += 1;
        }
        assert_eq!(n as usize, set_aside);
        assert!(o.is_empty());
    }
}
