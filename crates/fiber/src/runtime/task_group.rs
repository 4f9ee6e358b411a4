//! bRPC's TaskGroup: one worker thread and its scheduling loop.
//!
//! Queues, in the order a worker looks at them:
//! - `resume`: started fibers of this worker that are ready again (yielded,
//!   or woken by this worker). Not stealable: a started fiber is pinned.
//! - the inbox: the same, woken by other threads.
//! - `overflow`: under overload (more than 256 in `resume`), all but the
//!   128 woken last are set aside here; taken one per periodic check, when
//!   nothing fresh is left, and before anything else once set aside for
//!   longer than a bound that grows with their number (see `overflow`).
//! - `local`: the Chase-Lev deque of fibers that never ran (and migratable
//!   ones). Thieves steal from its other end.
//! - its remote queue, the runtime's injector, then other workers (steal).
//!
//! Before all of these comes the LIFO slot (tokio's idea): the fiber most
//! recently spawned by a fiber of this worker. It is not stealable and its
//! spawn wakes nobody, because in the common patterns — spawn then join,
//! spawn then wait for I/O, a chain of spawns — this worker reaches it at
//! its very next switch, sooner than a woken worker could (~20 µs to wake a
//! vCPU here). A second spawn pushes the previous occupant to the deque and
//! signals, so at most one task is held back, and only until the spawning
//! fiber blocks, yields or ends — or until it has waited `LIFO_GRACE` behind
//! the same running fiber as seen by another worker looking for work, which
//! then takes it (see `lifo`), so a spawner that computes for long cannot
//! starve it. At most `MAX_LIFO_RUNS` LIFO picks in a row while other work
//! waits, so two fibers that keep spawning each other cannot starve the
//! queues.
//!
//! `resume` and `local` are taken alternately so neither a yielding fiber
//! nor a spawning one can starve the other.

use super::batch_end::BatchEnd;
use super::context::{StackClass, Switch, YielderPtr};
use super::idle_yield::IdleYield;
use super::lifo::{Sighting, LIFO_RECHECK};
use super::overflow::Overflow;
use super::stack_pool::StackPool;
use super::task_control::{GroupShared, TaskControl, MAX_WORKERS};
use super::task_meta::{Slab, TaskRef, NO_HOME};
use crossbeam_deque::Worker;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Spins over the queues before sleeping: waking a sleeping vCPU costs
/// ~20 µs here, a short spin catches work another thread queues right
/// away (a cross-worker ping-pong needs ~48 rounds). Adaptive: a worker
/// whose spins keep finding nothing and whose sleeps end with I/O (which
/// the spin never sees) backs off towards `MIN_SEARCH_ROUNDS`, so an
/// I/O-driven server does not burn a spin per request (RPC and TCP echo
/// at one connection: -12 % and -15 % server CPU per request).
const SEARCH_ROUNDS: usize = 64;
/// The fewest rounds a worker spins when its recent spins found nothing.
const MIN_SEARCH_ROUNDS: usize = 4;
/// While searching, try to steal every this many rounds.
const STEAL_EVERY: usize = 8;
/// Every this many picks, look at the shared queues first (fairness for
/// submissions from outside the runtime).
const GLOBAL_CHECK_INTERVAL: u32 = 61;
/// Freed fiber slots a worker keeps (LIFO) before it hands half of them
/// back to the global free list.
const SLOT_CACHE: usize = 256;
/// Freed slots a worker keeps when it goes to sleep; the rest go back to
/// the global free list, so a burst of fibers does not stay cached on an
/// idle worker.
const SLOT_KEEP: usize = 16;
/// Most fibers queued in a worker's deque; past this a spawn goes to the
/// shared injector. Bounded as bRPC's run queue is (4096), for memory: a
/// Chase-Lev buffer grows to the longest queue it ever held and shrinks
/// only as its owner pops, so a burst that thieves drained would leave
/// 8 bytes per fiber of it allocated for good. The injector's blocks are
/// freed as they are consumed.
const LOCAL_QUEUE_MAX: usize = 4096;
/// A resume queue whose capacity grew past this is shrunk when the
/// worker goes to sleep with it empty.
const RESUME_KEEP: usize = 1024;
/// Consecutive picks from the LIFO slot before the queues get a turn.
const MAX_LIFO_RUNS: u32 = 3;
/// Fibers woken and run on the spot by a fiber that was itself run that
/// way, at most (see `run_woken`); past this, a wake goes through the
/// scheduler. Each level is a frame on one more fiber's stack, so this is
/// a bound on how long a chain of such wakes defers the queues.
const MAX_NESTED_RUNS: u32 = 16;
/// How long a worker sleeps while another worker is awake before it looks
/// at what that worker may be holding up if it is stuck in one fiber: its
/// dispatcher, which nobody else polls (worker-poller I/O), and the task in
/// its LIFO slot (see `lifo`). See `sleep`.
const PEER_CHECK: Duration = Duration::from_millis(4);

/// How long a worker sleeps on its futex while another worker sleeps in
/// the dispatcher they share, before it looks at the dispatcher again.
const SHARED_DISPATCHER_CHECK: Duration = Duration::from_millis(10);

/// Spins (each a `PAUSE`, ~40 ns on current x86) a worker waits for an
/// idle helper's non-blocking look into its dispatcher to end before it
/// yields its core: the look is one `epoll_wait(0)` and the wakes of what
/// it found, a few microseconds.
const HELPER_SPINS: u32 = 256;

/// Below this many pinned fibers a worker never hands a first run away.
const BALANCE_MIN: usize = 8;
/// A first run goes to the least loaded worker when it has this many
/// pinned fibers fewer than we do (or an eighth of ours, if more).
const BALANCE_SLACK: usize = 2;

/// One worker. Lives on its thread's stack for the thread's lifetime and is
/// reached by fibers through a thread-local pointer, so every field uses
/// interior mutability and no borrow is held across a fiber switch.
pub(crate) struct TaskGroup {
    pub(crate) control: &'static TaskControl,
    pub(crate) shared: &'static GroupShared,
    pub(crate) local: Worker<TaskRef>,
    lifo_runs: Cell<u32>,
    /// What this worker last saw of each other worker's LIFO slot (see
    /// `take_stranded`).
    lifo_seen: Box<[Cell<Sighting>]>,
    /// Sleeps since this worker last found work or was signalled: only a
    /// worker that already slept once without either sleeps untimed (see
    /// `sleep`).
    idle_sleeps: Cell<u32>,
    /// Rounds the next idle search spins: back to `SEARCH_ROUNDS` when a
    /// spin finds work, a quarter less each time one finds nothing.
    search_rounds: Cell<usize>,
    /// When this worker last gave its CPU away at an idle moment.
    idle_yield: IdleYield,
    /// Calls fibers of this worker asked for at the end of its batch.
    pub(crate) batch_end: BatchEnd,
    resume: UnsafeCell<VecDeque<TaskRef>>,
    /// Ready fibers set aside from `resume` (see `overflow`).
    overflow: UnsafeCell<Overflow>,
    pool: UnsafeCell<StackPool>,
    pub(crate) free_slots: UnsafeCell<Vec<TaskRef>>,
    /// Fibers run so far (wrapping): the clock of the periodic checks.
    tick: Cell<u32>,
    /// The tick at which the shared queues and I/O were last looked at.
    last_global: Cell<u32>,
    /// Fibers being run from another fiber's stack right now (`run_woken`).
    nested_runs: Cell<u32>,
    /// A switch of a fiber run nested that only the scheduler loop may
    /// handle (see `run_woken`).
    deferred: Cell<Option<(TaskRef, Switch)>>,
    /// Tasks queued with NOSIGNAL since the last `flush`.
    pub(crate) unsignalled: Cell<usize>,
    /// Whether this worker is out of work (in `wait_for_task`): the
    /// fibers a dispatcher poll it makes then starts are the next it runs
    /// (see `flush_after_poll`).
    pub(crate) idle: Cell<bool>,
    /// `tick` when the kept contexts' deep pages were last released.
    released_at: Cell<u32>,
    /// The trim epoch of that release.
    released_epoch: Cell<u64>,
    /// Asked the trimmer for a wakeup at the next epoch.
    nudge_asked: Cell<bool>,
}

thread_local! {
    static CURRENT_GROUP: Cell<*const TaskGroup> = const { Cell::new(std::ptr::null()) };
}

/// The worker running this thread, if it is one.
///
/// `inline(never)`: a migratable fiber may resume on another thread, and a
/// thread-local address cached across a switch would then name the old
/// thread's worker (the bug class the no-migration rule exists for).
/// Reading it through an opaque call after every switch is what keeps
/// runtime code correct there.
#[inline(never)]
pub(crate) fn current_group() -> Option<&'static TaskGroup> {
    let p = CURRENT_GROUP.with(|c| c.get());
    // SAFETY: the pointer is set by `TaskGroup::run` for the duration of the
    // worker loop and cleared before the group is dropped; all code that can
    // observe it (fibers, the scheduler) runs inside that loop on this
    // thread. The 'static lifetime never escapes the crate and no caller
    // keeps it past a switch.
    unsafe { p.as_ref() }
}

impl TaskGroup {
    /// Creates worker `index`'s state and registers its shared half.
    pub(crate) fn new(control: &'static TaskControl) -> TaskGroup {
        let local = Worker::new_fifo();
        let stealer = local.stealer();
        let index = control.add_group(|i| GroupShared::new(i, stealer));
        TaskGroup {
            control,
            shared: control.group(index),
            local,
            lifo_runs: Cell::new(0),
            lifo_seen: (0..MAX_WORKERS)
                .map(|_| Cell::new(Sighting::NONE))
                .collect(),
            idle_sleeps: Cell::new(0),
            search_rounds: Cell::new(SEARCH_ROUNDS),
            idle_yield: IdleYield::new(control.idle_yield_every()),
            batch_end: BatchEnd::default(),
            resume: UnsafeCell::new(VecDeque::with_capacity(64)),
            overflow: UnsafeCell::new(Overflow::default()),
            pool: UnsafeCell::new(StackPool::new()),
            free_slots: UnsafeCell::new(Vec::new()),
            tick: Cell::new(0),
            last_global: Cell::new(0),
            nested_runs: Cell::new(0),
            deferred: Cell::new(None),
            unsignalled: Cell::new(0),
            idle: Cell::new(false),
            released_at: Cell::new(0),
            released_epoch: Cell::new(super::trim::epoch()),
            nudge_asked: Cell::new(false),
        }
    }

    /// The worker's index in its runtime.
    pub(crate) fn index(&self) -> usize {
        self.shared.index
    }

    /// The fiber running on this worker right now.
    #[inline(always)]
    pub(crate) fn current_task(&self) -> Option<TaskRef> {
        self.shared.running()
    }

    /// The worker loop: runs until the runtime stops.
    pub(crate) fn run(&self) {
        crate::sys::signal::install(fault_info);
        crate::sys::signal::ensure_altstack();
        CURRENT_GROUP.with(|c| c.set(self));
        while let Some(task) = self.next_task().or_else(|| self.wait_for_task()) {
            self.run_task(task);
        }
        self.batch_end.run();
        CURRENT_GROUP.with(|c| c.set(std::ptr::null()));
    }

    /// Queues a started fiber of this worker to run again.
    pub(crate) fn push_resume(&self, task: TaskRef) {
        // SAFETY: only this worker's thread touches `resume`, and no borrow
        // of it lives across a switch (we are not inside `next_task`).
        unsafe { (*self.resume.get()).push_back(task) }
    }

    /// Queues a fiber just spawned by a fiber of this worker: into the LIFO
    /// slot (no wakeup), moving the previous occupant to the deque.
    pub(crate) fn push_spawned(&self, task: TaskRef, signal: bool) {
        if let Some(prev) = self.shared.lifo_put(task) {
            self.push_local(prev, signal);
        }
        // Other workers look at the slot when they look for work or wake
        // from a timed sleep; only if none will (all sleep untimed) does it
        // need a timer. Under load: two loads, no timer (see `lifo`).
        if self.control.others_sleep_untimed()
            && !self.shared.lifo_watched.load(Ordering::Relaxed)
            && !self.shared.lifo_watched.swap(true, Ordering::Relaxed)
        {
            super::lifo::arm_watchdog(self.control, self.shared);
        }
    }

    /// Takes a task stranded in another worker's LIFO slot: one whose owner
    /// has stayed in the same fiber run for `LIFO_GRACE` since this worker
    /// first saw it so (see `lifo`). One load per other worker when their
    /// slots are empty.
    fn take_stranded(&self) -> Option<TaskRef> {
        let n = self.control.nworkers();
        let mut now = None;
        for i in 0..n {
            if i == self.index() {
                continue;
            }
            let g = self.control.group(i);
            if let Some(t) = super::lifo::look(g, &self.lifo_seen[i], &mut now) {
                self.shared.counters.steals.incr();
                // Counted as a LIFO pick, so `run_task` starts it here
                // rather than handing it on for balance, maybe back to the
                // worker it was stranded on.
                self.lifo_runs.set(1);
                return Some(t);
            }
        }
        None
    }

    /// Whether another worker's LIFO slot holds a task, read after this
    /// worker's registration as an untimed sleeper (see `lifo`).
    fn peer_lifo_full(&self) -> bool {
        (0..self.control.nworkers())
            .any(|i| i != self.index() && self.control.group(i).lifo_full_seqcst())
    }

    /// Queues a new (or migratable) fiber where thieves can take it.
    pub(crate) fn push_local(&self, task: TaskRef, signal: bool) {
        self.enqueue_local(task);
        if signal {
            self.control.signal_task(1, Some(self.shared));
        } else {
            self.unsignalled.set(self.unsignalled.get() + 1);
        }
    }

    /// Queues a new fiber where thieves can take it, waking a worker for it
    /// only if every other one sleeps untimed (none would look for it
    /// otherwise); see `Builder::quiet`. A worker that registers as an
    /// untimed sleeper just after the check is not woken: the fiber then
    /// waits for this worker, which is awake and runs it once the fibers
    /// ahead of it ran (a spawner that blocks its thread right then holds
    /// it until it unblocks).
    pub(crate) fn push_local_quiet(&self, task: TaskRef) {
        self.enqueue_local(task);
        if self.control.others_sleep_untimed() {
            self.control.signal_task(1, Some(self.shared));
        }
    }

    /// Queues `task` on this worker's deque, or on the shared injector
    /// once the deque holds [`LOCAL_QUEUE_MAX`] fibers.
    fn enqueue_local(&self, task: TaskRef) {
        if self.local.len() < LOCAL_QUEUE_MAX {
            self.local.push(task);
        } else {
            self.control.push_overflow(task);
        }
    }

    /// If `task` is the one waiting in this worker's LIFO slot, takes it
    /// (for a joiner that wants to run it right away).
    pub(crate) fn take_lifo_if(&self, task: TaskRef) -> Option<TaskRef> {
        self.shared.lifo_take_if(task)
    }

    /// Whether this worker's own queues are empty (LIFO slot aside).
    fn queues_empty(&self) -> bool {
        // SAFETY: see `push_resume`; a length read.
        let started_empty =
            unsafe { (*self.resume.get()).is_empty() && (*self.overflow.get()).is_empty() };
        started_empty && self.local.is_empty() && self.shared.inbox_is_empty()
    }

    /// Whether nothing else is runnable here: no other fiber of this worker
    /// is ready and its shared queues look empty (racy: a hint for
    /// `yield_now`, which then has nobody to give way to).
    pub(crate) fn nothing_else_ready(&self) -> bool {
        self.queues_empty()
            && self.shared.lifo_is_empty()
            && self.shared.remote.is_empty()
            && self.control.injector_is_empty()
    }

    /// Whether other fibers wait to run on this worker (its own queues or
    /// the LIFO slot; racy, a hint).
    pub(crate) fn others_queued(&self) -> bool {
        !self.queues_empty() || !self.shared.lifo_is_empty()
    }

    fn next_task(&self) -> Option<TaskRef> {
        if let Some(t) = self.shared.lifo_take() {
            let runs = self.lifo_runs.get();
            if runs < MAX_LIFO_RUNS || self.queues_empty() {
                self.lifo_runs.set(runs + 1);
                return Some(t);
            }
            // Enough LIFO picks in a row while other work waits: give the
            // queues a turn.
            self.lifo_runs.set(0);
            self.push_local(t, true);
        } else {
            self.lifo_runs.set(0);
        }
        // The tick advances per fiber run, not per look: an idle worker's
        // search loop must not turn the periodic check (a syscall when I/O
        // is polled) into one per spin round.
        let tick = self.tick.get();
        if self.global_check_due() {
            self.last_global.set(tick);
            self.batch_end.run();
            self.poll_io();
            if let Some(t) = self.pop_shared().or_else(|| self.take_stranded()) {
                return Some(t);
            }
            // SAFETY: as `push_resume` (only this thread touches
            // `overflow`); the borrow ends here.
            if let Some(t) = unsafe { (*self.overflow.get()).periodic() } {
                return Some(t);
            }
        }
        // SAFETY: see `push_resume`; the borrows end before we return.
        let (resume, overflow) = unsafe { (&mut *self.resume.get(), &mut *self.overflow.get()) };
        self.shared.drain_inbox(resume);
        overflow.spill(resume);
        if let Some(t) = overflow.pop_due() {
            return Some(t);
        }
        if tick & 1 == 0 {
            if let Some(t) = resume.pop_front() {
                return Some(t);
            }
        }
        if let Some(t) = self.local.pop() {
            return Some(t);
        }
        if let Some(t) = resume.pop_front().or_else(|| overflow.pop()) {
            return Some(t);
        }
        self.pop_shared()
    }

    /// Whether the scheduler's periodic look at the shared queues and I/O
    /// is due (`GLOBAL_CHECK_INTERVAL` fiber runs since the last one).
    fn global_check_due(&self) -> bool {
        self.tick.get().wrapping_sub(self.last_global.get()) >= GLOBAL_CHECK_INTERVAL
    }

    /// Whether the running fiber `me`, which just woke `task` (a started
    /// fiber pinned to this worker, whose token we hold), may run it right
    /// here instead of switching through the scheduler (see `run_woken`).
    #[inline(always)]
    pub(crate) fn may_run_woken(&self) -> bool {
        self.nested_runs.get() < MAX_NESTED_RUNS
    }

    /// Runs `task`, a started fiber of this worker that the running fiber
    /// `me` just woke, on the spot: resumed from `me`'s stack (corosensei
    /// coroutines nest) until it switches out, then `me` goes on. Returns
    /// whether `me` should yield now: other work is queued here, the
    /// periodic look at the shared queues and I/O is due (only the
    /// scheduler loop makes it), or `task` left something for the
    /// scheduler to do.
    ///
    /// This is bRPC's `butex_wake` hand-over without the trips through the
    /// scheduler: there the waker switches to the scheduler, which queues
    /// it and switches to the woken fiber, which later switches back to
    /// the scheduler, which picks the waker. Here the woken fiber's switch
    /// out returns straight into the waker, two context switches instead
    /// of four. While `task` runs, `me` is on the nesting chain: it is
    /// running (not in any queue or waiter list), so nothing can resume it
    /// elsewhere.
    ///
    /// Only a park or a yield of `task` is handled here. Anything else
    /// (exit: dropping its result; a park callback; an urgent switch to a
    /// fiber that may never have run) is scheduler work that must not run
    /// on `me`'s stack, which may be a small one: it is left in
    /// `deferred` for the scheduler loop, and `me` yields to it.
    #[inline(always)]
    pub(crate) fn run_woken(&self, me: TaskRef, task: TaskRef) -> bool {
        self.nested_runs.set(self.nested_runs.get() + 1);
        let why = self.resume(task);
        self.nested_runs.set(self.nested_runs.get() - 1);
        self.shared.set_running(Some(me));
        match why {
            Switch::Parked => {}
            Switch::Yield => self.make_ready_again(task),
            other => {
                // A fiber that defers something yields at once (its
                // waker, below, or `ready_to_run`), so the chain unwinds to
                // the scheduler before anything else can be deferred.
                let previous = self.deferred.replace(Some((task, other)));
                debug_assert!(previous.is_none(), "two deferred switches");
                return true;
            }
        }
        self.global_check_due() || self.others_queued()
    }

    /// A busy worker's look at its I/O dispatcher (worker-poller mode):
    /// without it, a worker that never idles would never see I/O.
    fn poll_io(&self) {
        if let Some(driver) = crate::io::driver::worker_driver() {
            crate::io::driver::poll_home(driver, self.index());
        }
    }

    /// An idle worker's look at other workers' dispatchers nobody polls,
    /// after submitting the ring operations its own fibers queued.
    fn poll_io_foreign(&self) {
        if let Some(driver) = crate::io::driver::worker_driver() {
            crate::io::driver::flush_home(driver, self.index());
            crate::io::driver::poll_foreign(driver, self.index());
        }
    }

    fn pop_shared(&self) -> Option<TaskRef> {
        self.shared
            .remote
            .pop()
            .or_else(|| self.control.pop_injector())
    }

    fn find_any(&self) -> Option<TaskRef> {
        self.next_task().or_else(|| {
            let t = self.control.steal(self.index(), &self.local);
            if t.is_some() {
                self.shared.counters.steals.incr();
                return t;
            }
            self.take_stranded()
        })
    }

    /// Searches, then sleeps on the parking lot; `None` once stopping.
    fn wait_for_task(&self) -> Option<TaskRef> {
        self.idle.set(true);
        let found = self.search_or_sleep();
        self.idle.set(false);
        found
    }

    /// [`wait_for_task`](Self::wait_for_task)'s search and sleep.
    fn search_or_sleep(&self) -> Option<TaskRef> {
        self.batch_end.run();
        if self.idle_yield.at_idle() {
            self.shared.counters.idle_yields.incr();
        }
        // Out of work: help with the I/O of busy workers first.
        self.poll_io_foreign();
        self.idle_sleeps.set(0);
        let budget = self.search_rounds.get();
        for round in 0..budget {
            // Mostly poll our own queues (a pinned fiber woken elsewhere
            // lands in our inbox); reach into other workers' queues only
            // every few rounds, since each look pulls their cache lines
            // away from them.
            let found = if round % STEAL_EVERY == 0 {
                self.find_any()
            } else {
                self.next_task()
            };
            if found.is_some() {
                self.search_rounds.set(SEARCH_ROUNDS);
                return found;
            }
            std::hint::spin_loop();
        }
        // Spinning only finds work that other threads queue (the spin does
        // not poll I/O). It found none: spin less next time, unless work
        // from another thread shows up right after it (the last look
        // before sleeping finds it, or a signal ends the sleep), which a
        // longer spin would have caught. A sleep ended by I/O or by its
        // timeout leaves the budget lowered.
        self.search_rounds
            .set((budget - budget / 4).max(MIN_SEARCH_ROUNDS));
        let lot = &self.shared.lot;
        let woke_unsignalled = Cell::new(false);
        let found = lot.park_until(
            self.control.parked(),
            || self.find_any(),
            || {
                self.shared.counters.parks.incr();
                self.shed_idle_memory();
            },
            |state| {
                self.sleep(state);
                woke_unsignalled.set(lot.state() == state);
            },
        );
        if !woke_unsignalled.get() {
            self.search_rounds.set(SEARCH_ROUNDS);
        }
        found
    }

    /// Sleeps on the parking lot: in `epoll_wait` if I/O is polled by
    /// workers and no other worker is in it, else on the futex.
    ///
    /// With another worker awake, at most `PEER_CHECK`: if it is stuck in
    /// one fiber (a handler blocking its thread, a long computation),
    /// nobody polls its dispatcher and nobody takes the task in its LIFO
    /// slot; at most `LIFO_RECHECK` if a slot holds a task now. With every
    /// worker asleep, until signalled (an idle process makes no wakeups),
    /// but only from the second sleep in a row that no signal ended: the
    /// first is `PEER_CHECK` long all the same. A worker that woke a moment
    /// ago (and another that sleeps between two requests) then keeps
    /// looking at its peers' slots, and a spawner finds a watcher instead
    /// of arming a timer (see `lifo`): under RPC load at one connection the
    /// workers take turns sleeping, and each spawn found the other worker
    /// asleep untimed about every 50 µs.
    fn sleep(&self, state: super::parking_lot::State) {
        let others_awake = self.control.parked().load(Ordering::Relaxed) < self.control.nworkers();
        let first = self.idle_sleeps.get() == 0;
        self.idle_sleeps
            .set(self.idle_sleeps.get().saturating_add(1));
        let mut bound = (others_awake || first).then_some(PEER_CHECK);
        let untimed = bound.is_none();
        if untimed {
            self.control.set_untimed_sleeper(true);
        }
        if self.peer_lifo_full() {
            bound = Some(LIFO_RECHECK);
        }
        if untimed && bound.is_some() {
            self.control.set_untimed_sleeper(false);
        }
        self.sleep_at_most(state, bound);
        if untimed && bound.is_none() {
            self.control.set_untimed_sleeper(false);
        }
        if self.shared.lot.state() != state {
            // Signalled: a new start (see above).
            self.idle_sleeps.set(0);
        }
    }

    /// Sleeps until signalled or, if `bound` is set, that long at most.
    fn sleep_at_most(&self, state: super::parking_lot::State, bound: Option<Duration>) {
        let lot = &self.shared.lot;
        if let Some(driver) = crate::io::driver::worker_driver() {
            let d = driver.home_of(self.index());
            let mut spun = 0;
            loop {
                if let Some(guard) = d.try_lock() {
                    let mut timed_out = false;
                    lot.wait_in_epoll(state, d.waker_fd(), || {
                        timed_out = guard.poll(bound) == 0 && bound.is_some();
                    });
                    drop(guard);
                    if timed_out {
                        self.poll_io_foreign();
                    }
                    return;
                }
                // Someone else sleeps in our dispatcher (a worker sharing
                // it, maybe of another runtime): it collects our events
                // and wakes us. But it may leave without handing over (its
                // runtime stops, or it goes on to a long task), and then
                // nobody would watch our descriptors: sleep on the futex
                // in steps, and look at the dispatcher again after each.
                // (Only where workers share a dispatcher; by default each
                // has its own.)
                if d.has_blocking_poller() {
                    let step =
                        bound.map_or(SHARED_DISPATCHER_CHECK, |b| b.min(SHARED_DISPATCHER_CHECK));
                    lot.wait_for(state, step);
                    return;
                }
                // A worker is polling it without blocking (an idle helper's
                // look): it lets go within microseconds. Sleeping on the
                // futex now would leave our descriptors unwatched. Spin
                // first: a `sched_yield` here hands the core to whatever
                // else is runnable on it (under wrk, wrk), a context switch
                // each way, and it happened hundreds of times a second.
                // Yield only if the helper was preempted while holding it.
                if spun < HELPER_SPINS {
                    spun += 1;
                    std::hint::spin_loop();
                } else {
                    spun = 0;
                    std::thread::yield_now();
                }
            }
        }
        match bound {
            Some(b) => lot.wait_for(state, b),
            None => lot.wait(state),
        }
    }

    /// Always inlined into the worker loop: after the switch back from a
    /// fiber the return stack buffer is stale, so a return out of an
    /// out-of-line `run_task` would be mispredicted on every switch
    /// (spawn+join: 84 -> 97 ns when it was outlined).
    #[inline(always)]
    fn run_task(&self, first: TaskRef) {
        let mut task = first;
        // A task from the LIFO slot was just spawned by a fiber of ours
        // (which likely joins it soon), an urgent one must run here: only
        // tasks from the queues may start elsewhere for balance.
        let mut may_move = self.lifo_runs.get() == 0;
        loop {
            if task.home.load(Ordering::Relaxed) == NO_HOME {
                // SAFETY: we popped `task` from a queue, so we hold its run
                // token; the borrow is a copy-out.
                let (class, migratable) = unsafe {
                    let a = &task.run_state().attrs;
                    (a.stack, a.migratable)
                };
                let pins = class != StackClass::Worker && !migratable;
                if pins && may_move {
                    if let Some(to) = self.less_loaded_worker() {
                        // Once started it stays where it starts: start it
                        // where there is room (see `less_loaded_worker`).
                        self.control.push_inbox(to, task);
                        return;
                    }
                }
                if !self.first_run(task, class, pins) {
                    return;
                }
            }
            let mut why = self.resume(task);
            let mut from = task;
            loop {
                match why {
                    // The context goes back on top of the pool: the next
                    // fiber to start here runs on it (see `first_run`).
                    Switch::Exit => self.finish(from),
                    Switch::Yield => self.make_ready_again(from),
                    Switch::Park(f) => {
                        // SAFETY: the callback lives on the suspended
                        // fiber's stack (alive until the fiber resumes) and
                        // takes over the token; we must not touch `from`
                        // afterwards.
                        unsafe { (**f.0)(from) };
                    }
                    Switch::Parked => {}
                    Switch::Urgent(next) => {
                        self.make_ready_again(from);
                        // Nothing is deferred here: a fiber that defers
                        // yields (see `run_woken`).
                        task = next;
                        may_move = false;
                        break;
                    }
                }
                // What a fiber run nested by the one that just switched out
                // left for us (see `run_woken`).
                match self.deferred.take() {
                    Some((t, w)) => (from, why) = (t, w),
                    None => return,
                }
            }
        }
    }

    /// Resumes started fiber `task` (we hold its run token) until it
    /// switches out. Always inlined: see `run_task`.
    #[inline(always)]
    fn resume(&self, task: TaskRef) -> Switch {
        // The running fiber is published in `GroupShared` (a relaxed store,
        // a plain `mov`, as a `Cell` would be) for the blocked-worker
        // monitor to read; see `blocked`.
        self.shared.set_running(Some(task));
        self.shared.counters.switches.incr();
        self.tick.set(self.tick.get().wrapping_add(1));
        // A tracer may hold the fiber still while it reads its stack
        // (`trace`): the store above and this load are the light side of
        // a membarrier fence pair, so either the tracer sees the fiber
        // running and leaves it, or this sees the hold and waits.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        if task.held.load(Ordering::Relaxed) {
            super::trace::wait_while_held(task);
        }
        // SAFETY: we hold the run token, which includes the context slot;
        // fibers never touch it, so this is the only reference. A started
        // fiber always has its context in the slot.
        let why = unsafe { (*task.ctx_slot()).as_mut().unwrap_unchecked().resume(task) };
        self.shared.set_running(None);
        why
    }

    /// Requeues a fiber that yielded: pinned ones on `resume`, migratable
    /// ones where thieves can take them.
    fn make_ready_again(&self, task: TaskRef) {
        // SAFETY: we hold the token (the fiber just switched out to us).
        if unsafe { task.is_migratable() } {
            self.push_local(task, true);
        } else {
            self.push_resume(task);
        }
    }

    /// First run of `task` here: pins it and puts a context of its class in
    /// its slot (the one left there by the slot's previous fiber, if it
    /// fits). Returns false if the task already completed (worker-stack
    /// tasks, or a stack that could not be mapped).
    fn first_run(&self, task: TaskRef, class: StackClass, pins: bool) -> bool {
        task.home.store(self.index() as u32, Ordering::Relaxed);
        if pins {
            let p = &self.shared.pinned;
            p.store(p.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
        if class == StackClass::Worker {
            self.shared.set_running(Some(task));
            self.shared.counters.switches.incr();
            run_body_inner(task, None);
            self.shared.set_running(None);
            self.finish(task);
            return false;
        }
        if crate::fault::take_stack_failure() {
            self.lose(task, io::Error::other("injected: no stack for this fiber"));
            return false;
        }
        let slot = task.ctx_slot();
        // The context comes from the pool, never from a slot: the pool is
        // LIFO, so this fiber runs on the stack whose lines the last fiber
        // to end here left in the cache. Fibers spawned in a batch (one per
        // ready connection of a poll) each hold a slot before any runs; if
        // each ran on a context kept in its slot, a batch of 25 would cycle
        // through 25 stacks.
        // SAFETY: token held (see `run_task`); a slot holds no context
        // until its fiber's first run (`finish` takes it out).
        debug_assert!(unsafe { (*slot).is_none() });
        // SAFETY: this thread only, outside fibers.
        match unsafe { (*self.pool.get()).get(class) } {
            Ok((ctx, fresh)) => {
                if fresh {
                    self.shared.counters.stacks_mapped.incr();
                }
                // SAFETY: as above.
                unsafe { *slot = Some(ctx) };
                true
            }
            Err(e) => {
                self.lose(task, e);
                false
            }
        }
    }

    /// `task` cannot start (no stack): its closure is dropped unrun, its
    /// join handle gets `e`, and the fiber ends.
    fn lose(&self, task: TaskRef, e: io::Error) {
        self.shared.counters.start_failures.incr();
        tracing::error!(error = %e, fiber = ?task.id(), "a fiber could not start");
        // SAFETY: token held; the fiber never ran, and `entry` came from
        // this payload's `init`.
        unsafe {
            if let Some(entry) = task.run_state().entry {
                task.payload.fail(entry, e);
            }
        }
        self.finish(task);
    }

    /// The worker a fiber about to start here should start on instead, if
    /// we are clearly more loaded than it.
    ///
    /// Started fibers never migrate (the soundness rule), so where a
    /// long-lived fiber (a connection's) first runs decides the balance for
    /// its whole life; the thief that happened to be idle at spawn time is
    /// a poor judge. Load is counted as live pinned fibers; below `BALANCE_MIN`
    /// nothing moves, so short spawn/join work keeps its LIFO fast path.
    fn less_loaded_worker(&self) -> Option<usize> {
        let mine = self.shared.pinned.load(Ordering::Relaxed);
        if mine < BALANCE_MIN {
            return None;
        }
        let (mut best, mut best_load) = (None, mine);
        for i in 0..self.control.nworkers() {
            if i == self.index() {
                continue;
            }
            let load = self.control.group(i).pinned.load(Ordering::Relaxed);
            // Proportional slack: near-equal loads never churn.
            let slack = BALANCE_SLACK.max(mine / 8);
            if load + slack < mine && load < best_load {
                (best, best_load) = (Some(i), load);
            }
        }
        best
    }

    /// Ends a fiber: resets its meta, bumps the version (waking joiners),
    /// and recycles the slot.
    fn finish(&self, task: TaskRef) {
        // SAFETY: token held; the fiber is done.
        let pinned = unsafe {
            let a = &task.run_state().attrs;
            a.stack != StackClass::Worker && !a.migratable
        };
        if pinned && task.home.load(Ordering::Relaxed) != NO_HOME {
            let p = &self.shared.pinned;
            p.store(
                p.load(Ordering::Relaxed).saturating_sub(1),
                Ordering::Relaxed,
            );
        }
        // SAFETY: token held; the fiber is done.
        let entry = unsafe {
            let rs = task.run_state();
            debug_assert!(
                rs.locals.is_empty(),
                "fiber_local! values outlive the fiber"
            );
            rs.attrs = Default::default();
            rs.yielder = None;
            rs.control = None;
            rs.entry.take()
        };
        task.home.store(NO_HOME, Ordering::Relaxed);
        // Off the list of live fibers before the version moves on, so a
        // lister that sees the mark reads the version of this fiber.
        task.diag.clear();
        // Counted before the version bump, so a joiner reads stats that
        // already include the fiber it joined.
        self.shared.counters.exited.incr();
        task.end_version();
        // The idle context goes back to the pool at once, on top (see
        // `first_run`); the slot is recycled by whoever of the fiber and its
        // join handle lets go of it last (`task::packet`).
        // SAFETY: token held (the fiber ended, its context is idle); this
        // thread only, outside fibers, no other borrow of `pool`.
        unsafe {
            if let Some(ctx) = (*task.ctx_slot()).take() {
                (*self.pool.get()).put(ctx);
            }
        }
        // SAFETY: the fiber releases once, here, after its last touch of
        // the payload; `entry` came from this payload's `init`.
        let last = entry.is_none_or(|e| unsafe { task.payload.release_fiber(e) });
        if last {
            self.recycle(task);
        }
    }

    /// Puts a slot both of whose owners let go into this worker's cache
    /// (LIFO: the next spawn here gets the slot whose lines are warmest).
    fn recycle(&self, task: TaskRef) {
        // SAFETY: this thread only, and no other borrow of `free_slots` is
        // alive here: the worker loop holds none across a fiber switch, and
        // this runs either in the loop (`finish`) or on a fiber of this
        // worker (a join handle's drop).
        let cache = unsafe { &mut *self.free_slots.get() };
        cache.push(task);
        if cache.len() > SLOT_CACHE {
            spill_slots(cache, SLOT_CACHE / 2);
        }
    }

    /// Before the worker sleeps: gives back what a burst left cached here,
    /// once per trim epoch and only if fibers ran since the last time (so
    /// a worker that sleeps and wakes per message pays two compares).
    /// Free slots above [`SLOT_KEEP`] go to the global free list, the
    /// pool's excess contexts to the global pool (which the trimmer
    /// unmaps), and the deep stack pages of the contexts kept are
    /// released. A worker that already did this in the current epoch asks
    /// the trimmer to wake it at the next one, so an idle process sheds
    /// within one interval even if no work comes to wake it.
    fn shed_idle_memory(&self) {
        let tick = self.tick.get();
        if tick == self.released_at.get() {
            return;
        }
        let epoch = super::trim::epoch();
        if epoch == self.released_epoch.get() {
            if !self.nudge_asked.get() {
                self.nudge_asked.set(true);
                super::trim::request_nudge(self.shared);
            }
            return;
        }
        // SAFETY: the worker loop, on this thread, outside fibers: no other
        // borrow of `free_slots` or `pool` is alive (see `recycle`).
        let (cache, pool) = unsafe { (&mut *self.free_slots.get(), &mut *self.pool.get()) };
        if cache.len() > SLOT_KEEP {
            spill_slots(cache, SLOT_KEEP);
        }
        if pool.over_keep() {
            pool.shed();
        }
        pool.release_pages();
        // SAFETY: as above, for `resume`.
        let resume = unsafe { &mut *self.resume.get() };
        if resume.is_empty() && resume.capacity() > RESUME_KEEP {
            resume.shrink_to(64);
        }
        // SAFETY: as above, for `overflow`.
        unsafe { (*self.overflow.get()).shrink(RESUME_KEEP) };
        self.released_at.set(tick);
        self.released_epoch.set(epoch);
        self.nudge_asked.set(false);
    }
}

/// Moves the free slots of `cache` past the first `keep` to the global free
/// list.
fn spill_slots(cache: &mut Vec<TaskRef>, keep: usize) {
    let spill: Vec<u32> = cache.drain(keep..).map(|m| m.slot()).collect();
    Slab::global().free_many(spill);
}

/// Recycles a slot whose fiber ended, released last by its join handle:
/// into this worker's cache, or (on a thread that is no worker) to the
/// shared free list.
pub(crate) fn recycle_slot(task: TaskRef) {
    if let Some(g) = current_group() {
        g.recycle(task);
        return;
    }
    // SAFETY: both owners let go, so we alone hold the slot; a slot holds
    // a context only while its fiber runs (`finish` took it out).
    debug_assert!(unsafe { (*task.ctx_slot()).is_none() });
    Slab::global().free_one(task.slot());
}

/// Runs a fiber's entry on its context (called from the context loop).
pub(crate) fn run_body(task: TaskRef, yielder: YielderPtr) {
    run_body_inner(task, Some(yielder));
}

fn run_body_inner(task: TaskRef, yielder: Option<YielderPtr>) {
    // SAFETY: the worker resumed us with the token; the borrow ends here.
    let entry = unsafe {
        let rs = task.run_state();
        rs.yielder = yielder;
        rs.entry
    };
    if let Some(entry) = entry {
        // SAFETY: we hold the token; `entry` came from this payload's
        // `init`, and a fiber body runs once.
        unsafe { task.payload.run(entry) };
    }
    // fiber_local! values die with the fiber, on the fiber.
    // SAFETY: token held; the borrow ends here.
    if unsafe { task.run_state().locals.is_empty() } {
        return;
    }
    // Destructors may set fiber-locals again: drained until empty (or
    // leaked), so the slot's next fiber starts with none.
    // A panic here would unwind out of the context into whoever resumed
    // it (the worker loop, or a fiber that ran this one nested) and take
    // that down instead. std aborts when a thread-local's destructor
    // panics; so do we, saying which fiber.
    let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::task::local::drop_fiber_locals(task)
    }));
    if drained.is_err() {
        tracing::error!(
            fiber = ?task.id(),
            "a fiber_local! destructor panicked; aborting"
        );
        std::process::abort();
    }
}

/// For the overflow handler: the guard page, stack size, id and name of the
/// fiber running on this thread. Only reads memory (signal context).
fn fault_info() -> Option<crate::sys::signal::FaultInfo> {
    let p = CURRENT_GROUP.with(|c| c.get());
    // SAFETY: see `current_group`; we only read.
    let g = unsafe { p.as_ref() }?;
    let task = g.current_task()?;
    // SAFETY: the thread was running `task` when it faulted, so its context
    // is in the slot and its run state is not being moved; we only read,
    // and the process aborts right after.
    unsafe {
        let ctx = (*task.ctx_slot()).as_ref()?;
        let (lo, hi) = ctx.stack_bounds();
        let page = 4096;
        let name = task.run_state().attrs.name.clone();
        Some((lo, lo + page, hi - lo - page, task.id().as_u64(), name))
    }
}
