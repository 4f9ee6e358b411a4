//! The LIFO slot of each worker (see `task_group`'s module docs) and what
//! keeps a task in it from being stranded.
//!
//! The slot is not stealable like the deque: its task waits for its owner's
//! next switch, which in the patterns it exists for (spawn then join, spawn
//! then wait) comes within nanoseconds. The danger is a spawner that then
//! runs for long without switching (a computation, a blocking call): the
//! task would wait for all of it while other workers idle. A task counts as
//! stranded once its owner has stayed in the same fiber run (its switch
//! count has not moved) for [`LIFO_GRACE`], and then another worker takes
//! it:
//! - a worker looking for work (its idle search, its park, and the periodic
//!   look at the shared queues of a busy one) records, for each other worker
//!   with a task in its slot, the switch count it saw and when it first saw
//!   it, and takes the task when a later look finds the same count at least
//!   `LIFO_GRACE` later (`TaskGroup::take_stranded`);
//! - a worker that goes to sleep while another is awake sleeps with a
//!   timeout (`PEER_CHECK` in `task_group`), shorter ([`LIFO_RECHECK`]) if
//!   it saw a task in a slot, so it looks again;
//! - only when every other worker sleeps without a timeout (each slept
//!   once already, unsignalled, and went to sleep again while every worker
//!   slept: nobody will look) does the spawn arm a timer
//!   ([`arm_watchdog`]); if the owner has moved on when it fires, it wakes
//!   one of them to watch instead of arming again. `untimed_sleepers` in
//!   `TaskControl` counts those sleepers; a sleeper registers there before
//!   its last look at the slots and a spawner reads it after filling its
//!   slot, both sequentially consistent, so one of them always sees the
//!   other.
//!
//! Why not a timer per spawn (the first design: a `LIFO_GRACE` timer
//! armed whenever none was pending): under load a spawn comes every few
//! microseconds, so the timer was re-armed as soon as it fired. Under
//! `h2load -c1 -m16` against the gRPC echo server the timer thread woke
//! ~10,000 times a second (15 % of the server's CPU, plus 6 % in the workers
//! to arm it, with a futex wake each time), and on a 2-core machine each of
//! its wakeups preempted a worker or the load generator; now it wakes ~20
//! times a second, and the server answers 1.14× the calls at 0.72× the CPU
//! per call (BENCHMARKS.md). The looks above cost one load per other worker
//! where no slot is full, and a clock read where one is. tokio's LIFO slot
//! has no such guard (its task waits until the current one yields; the
//! runtime's `disable_lifo_slot` option is the stop-gap); bRPC has no LIFO
//! slot (every spawn signals a worker).
//!
//! How long a stranded task waits, at most: about `LIFO_GRACE` with another
//! worker searching; `LIFO_GRACE` plus the timer's delay when the others
//! sleep without a timeout; `PEER_CHECK` plus `LIFO_RECHECK` when they
//! sleep with one (they went to sleep while the spawner was awake); with
//! every other worker busy, until one of them makes its periodic look
//! (every 61 fiber runs) past `LIFO_GRACE`.

use super::task_control::{GroupShared, TaskControl};
use super::task_meta::{TaskMeta, TaskRef};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long a task may wait in the LIFO slot behind the same running fiber
/// before another worker that sees it takes it (about what waking an idle
/// worker costs here, so holding it back never loses much more than that).
pub(crate) const LIFO_GRACE: Duration = Duration::from_micros(50);

/// The longest a worker sleeps after it saw a task in another worker's
/// slot that was not stranded yet, before it looks again. Not `LIFO_GRACE`:
/// under load a busy worker's slot is full much of the time, and an idle
/// worker would then wake every 50 µs, what the timer per spawn cost; 1 ms
/// bounds that to 1000 wakeups a second.
pub(crate) const LIFO_RECHECK: Duration = Duration::from_millis(1);

impl GroupShared {
    /// Puts `task` in the LIFO slot; returns the previous occupant.
    ///
    /// SeqCst (the same `xchg` on x86): pairs with a sleeper's registration
    /// in `untimed_sleepers` (see the module docs).
    pub(crate) fn lifo_put(&self, task: TaskRef) -> Option<TaskRef> {
        let prev = self
            .lifo
            .swap(task as *const TaskMeta as *mut TaskMeta, Ordering::SeqCst);
        // SAFETY: the slot only ever holds null or a `TaskRef` ('static).
        unsafe { prev.as_ref() }
    }

    /// Takes the LIFO task, if any (no locked instruction when empty).
    pub(crate) fn lifo_take(&self) -> Option<TaskRef> {
        if self.lifo_is_empty() {
            return None;
        }
        let p = self.lifo.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `lifo_put`.
        unsafe { p.as_ref() }
    }

    /// Takes the LIFO task only if it is `task`.
    pub(crate) fn lifo_take_if(&self, task: TaskRef) -> Option<TaskRef> {
        let p = task as *const TaskMeta as *mut TaskMeta;
        if self.lifo.load(Ordering::Relaxed) != p {
            return None;
        }
        self.lifo
            .compare_exchange(p, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| task)
    }

    /// Whether the LIFO slot looks empty.
    pub(crate) fn lifo_is_empty(&self) -> bool {
        self.lifo.load(Ordering::Relaxed).is_null()
    }

    /// Whether the slot is full, read after a sleeper's registration in
    /// `untimed_sleepers` (see the module docs).
    pub(crate) fn lifo_full_seqcst(&self) -> bool {
        !self.lifo.load(Ordering::SeqCst).is_null()
    }
}

/// What a worker saw of another worker's LIFO slot: the owner's switch
/// count and when it first saw that count with a task in the slot.
#[derive(Clone, Copy)]
pub(crate) struct Sighting {
    switches: u64,
    since_ns: u64,
}

impl Sighting {
    /// Nothing seen yet.
    pub(crate) const NONE: Sighting = Sighting {
        switches: u64::MAX,
        since_ns: 0,
    };
}

/// One look at worker `g`'s slot, with `seen` what the looking worker saw
/// there before and `now` a lazily read clock: takes the task if its owner
/// has been in the same fiber run for `LIFO_GRACE` since that sighting,
/// else updates the sighting. Costs one load when the slot is empty.
pub(crate) fn look(
    g: &GroupShared,
    seen: &std::cell::Cell<Sighting>,
    now: &mut Option<u64>,
) -> Option<TaskRef> {
    // A worker in its scheduler (running nothing) takes its slot itself
    // before anything else.
    if g.lifo_is_empty() || g.running().is_none() {
        return None;
    }
    let switches = g.counters.switches_now();
    let now = *now.get_or_insert_with(super::blocked::now_ns);
    let s = seen.get();
    if s.switches != switches {
        seen.set(Sighting {
            switches,
            since_ns: now,
        });
        return None;
    }
    if now.saturating_sub(s.since_ns) < LIFO_GRACE.as_nanos() as u64 {
        return None;
    }
    // The owner is still inside the fiber that spawned it. The task never
    // ran, so any worker may take it.
    g.lifo_take()
}

/// Arms the LIFO timer of worker `g` (only when nobody else will look, see
/// the module docs): after `LIFO_GRACE`, if the task in its LIFO slot is
/// still waiting behind the same running fiber (the worker's switch count
/// has not moved), it is handed to the runtime's shared queues and a
/// worker is woken.
pub(crate) fn arm_watchdog(control: &'static TaskControl, g: &'static GroupShared) {
    let stamp = g.counters.switches_now();
    crate::timer::add_after(LIFO_GRACE, move || {
        g.lifo_watched.store(false, Ordering::Relaxed);
        if !g.lifo_is_empty() && g.counters.switches_now() == stamp {
            if let Some(t) = g.lifo_take() {
                control.push_remote(t);
            }
            return;
        }
        if g.running().is_some() && control.others_sleep_untimed() {
            // The owner moved on and is still running fibers, and every
            // other worker still sleeps untimed. Arming again at its next
            // spawn would repeat every `LIFO_GRACE` for as long as that
            // lasts (what the timer per spawn cost under load): wake one
            // instead. Signalled, it sleeps with a timeout next (see
            // `TaskGroup::sleep`), so it watches the slot from then on.
            control.signal_task(1, None);
        }
    });
}
