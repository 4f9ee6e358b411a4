//! bRPC's TaskControl: the runtime's shared state — its workers' queues and
//! parking lots, the overflow injector, and the wakeup policy.

use super::parking_lot::{wake_one_sleeper, wake_owner, ParkingLot};
use super::remote_queue::RemoteQueue;
use super::stats::{RuntimeStats, WorkerCounters, WorkerStats};
use super::task_meta::{TaskMeta, TaskRef};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Most workers a runtime can grow to.
pub(crate) const MAX_WORKERS: usize = 256;
/// Capacity of each worker's remote queue (bRPC: 2048).
const REMOTE_QUEUE_CAP: usize = 2048;

/// The parts of a worker other threads touch.
pub(crate) struct GroupShared {
    pub(crate) index: usize,
    /// Thieves' end of the worker's deque (fibers that never ran, and
    /// migratable ones).
    pub(crate) stealer: Stealer<TaskRef>,
    /// Tasks from non-worker threads.
    pub(crate) remote: RemoteQueue<TaskRef>,
    /// Started fibers of this worker made ready by another thread: only this
    /// worker may resume them.
    /// Lock-free (many producers, this worker consumes).
    inbox: Injector<TaskRef>,
    pub(crate) lot: ParkingLot,
    pub(crate) counters: WorkerCounters,
    /// The LIFO slot (see `lifo`): written by the owner, emptied by the
    /// owner or, once its task is stranded, by another worker or a timer.
    pub(super) lifo: AtomicPtr<TaskMeta>,
    /// Whether a LIFO timer is pending (see `lifo::arm_watchdog`).
    pub(crate) lifo_watched: AtomicBool,
    /// Started fibers pinned to this worker and not finished: the load
    /// measure first runs are balanced by (written by the owner only).
    pub(crate) pinned: AtomicUsize,
    /// The fiber this worker runs now (null while the scheduler runs):
    /// the worker's own record of it, kept here so that the blocked-worker
    /// monitor can read it. Written by the owner only, relaxed; see
    /// `blocked`.
    pub(crate) running: AtomicPtr<TaskMeta>,
    /// The monitor's view of this worker (written by the monitor only).
    pub(crate) watch: super::blocked::Watch,
}

impl GroupShared {
    pub(crate) fn new(index: usize, stealer: Stealer<TaskRef>) -> Self {
        GroupShared {
            index,
            stealer,
            remote: RemoteQueue::new(REMOTE_QUEUE_CAP),
            inbox: Injector::new(),
            lot: ParkingLot::new(),
            counters: WorkerCounters::default(),
            lifo: AtomicPtr::new(std::ptr::null_mut()),
            lifo_watched: AtomicBool::new(false),
            pinned: AtomicUsize::new(0),
            running: AtomicPtr::new(std::ptr::null_mut()),
            watch: super::blocked::Watch::new(),
        }
    }

    /// Whether the inbox looks empty.
    pub(crate) fn inbox_is_empty(&self) -> bool {
        self.inbox.is_empty()
    }

    /// Moves the inbox into `out`.
    pub(crate) fn drain_inbox(&self, out: &mut std::collections::VecDeque<TaskRef>) {
        while !self.inbox.is_empty() {
            match self.inbox.steal() {
                Steal::Success(t) => out.push_back(t),
                Steal::Empty => break,
                Steal::Retry => {}
            }
        }
    }
}

/// The runtime's shared control block.
///
/// Leaked on purpose (`&'static`): a fiber left blocked when its runtime
/// shuts down may still be woken later by some other thread, and that wakeup
/// must land in valid (if dead) queues rather than freed memory. The cost is
/// a few KiB per runtime ever created.
pub(crate) struct TaskControl {
    groups: Box<[OnceLock<&'static GroupShared>]>,
    nworkers: AtomicUsize,
    /// Overflow of full remote queues (unbounded, so a submitter never
    /// waits or drops a task).
    injector: Injector<TaskRef>,
    /// Workers asleep or about to be.
    parked: crate::loom::AtomicUsize,
    /// Workers asleep without a timeout: they look at nothing until
    /// signalled (see `lifo`).
    untimed_sleepers: AtomicUsize,
    pub(crate) stopping: AtomicBool,
    pub(crate) outside: WorkerCounters,
    /// How long a worker may run one fiber before the monitor reports it
    /// as blocked, in milliseconds (0: never).
    pub(crate) blocked_threshold_ms: std::sync::atomic::AtomicU64,
    /// How often at most an idle worker yields its CPU, in microseconds
    /// (0: never); see `idle_yield`. Read when a worker starts.
    pub(crate) idle_yield_us: std::sync::atomic::AtomicU64,
}

impl TaskControl {
    pub(crate) fn new() -> &'static TaskControl {
        Box::leak(Box::new(TaskControl {
            groups: (0..MAX_WORKERS).map(|_| OnceLock::new()).collect(),
            nworkers: AtomicUsize::new(0),
            injector: Injector::new(),
            parked: crate::loom::AtomicUsize::new(0),
            untimed_sleepers: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            outside: WorkerCounters::default(),
            blocked_threshold_ms: std::sync::atomic::AtomicU64::new(
                super::blocked::DEFAULT_THRESHOLD_MS,
            ),
            idle_yield_us: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// How often at most an idle worker of this runtime yields its CPU.
    pub(crate) fn idle_yield_every(&self) -> Option<std::time::Duration> {
        match self.idle_yield_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(std::time::Duration::from_micros(us)),
        }
    }

    /// Publishes a new worker's shared half; returns its index.
    pub(crate) fn add_group(&'static self, make: impl FnOnce(usize) -> GroupShared) -> usize {
        let i = self.nworkers.load(Ordering::Acquire);
        assert!(i < MAX_WORKERS, "at most {MAX_WORKERS} workers");
        let g: &'static GroupShared = Box::leak(Box::new(make(i)));
        self.groups[i]
            .set(g)
            .unwrap_or_else(|_| panic!("worker slot {i} taken"));
        self.nworkers.store(i + 1, Ordering::Release);
        i
    }

    /// Number of workers.
    pub(crate) fn nworkers(&self) -> usize {
        self.nworkers.load(Ordering::Acquire)
    }

    /// Worker `i`'s shared half.
    pub(crate) fn group(&self, i: usize) -> &'static GroupShared {
        self.groups[i].get().expect("worker index out of range")
    }

    /// Submits a task from a thread that is not one of our workers: a
    /// random worker's remote queue, or the injector if that is full.
    pub(crate) fn push_remote(&self, task: TaskRef) {
        let n = self.nworkers();
        if n == 0 {
            self.injector.push(task);
        } else {
            let g = self.group(fastrand_index(n));
            if let Err(task) = g.remote.push(task) {
                self.injector.push(task);
            }
        }
        self.signal_task(1, None);
    }

    /// Queues a task a worker's full deque had no room for.
    pub(crate) fn push_overflow(&self, task: TaskRef) {
        self.injector.push(task);
    }

    /// Whether the injector looks empty (a racy hint).
    pub(crate) fn injector_is_empty(&self) -> bool {
        self.injector.is_empty()
    }

    /// Pops from the injector.
    pub(crate) fn pop_injector(&self) -> Option<TaskRef> {
        loop {
            match self.injector.steal() {
                Steal::Success(t) => return Some(t),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    /// Makes a started, pinned fiber ready on its home worker `home`, from a
    /// thread that is not that worker.
    pub(crate) fn push_inbox(&self, home: usize, task: TaskRef) {
        let g = self.group(home);
        g.inbox.push(task);
        wake_owner(&g.lot);
    }

    /// Wakes up to `n` (at most 2, as bRPC) sleeping workers because new
    /// stealable work was queued. `by` is the signalling worker, if any:
    /// its own lot is never claimed. A worker that signals from a poll
    /// made inside its sleep is still marked asleep; claimed by its own
    /// signal, it wrote its own eventfd (a `write(2)` and an `epoll_wait`
    /// that returns at once: a client over three servers on one worker
    /// made 0.03 of them per call) and the worker meant to take the work
    /// was never woken.
    pub(crate) fn signal_task(&self, n: usize, by: Option<&GroupShared>) {
        let total = self.nworkers();
        for _ in 0..n.min(2) {
            let start = fastrand_index(total.max(1));
            let lots = (0..total)
                .map(|k| &self.group((start + k) % total).lot)
                .filter(|lot| by.is_none_or(|b| !std::ptr::eq(*lot, &b.lot)));
            if !wake_one_sleeper(&self.parked, lots) {
                break;
            }
            match by {
                Some(by) => by.counters.signals.incr(),
                None => self.outside.signals.add_shared(1),
            }
        }
    }

    /// Workers asleep or about to be (for `ParkingLot::park_until`).
    pub(crate) fn parked(&self) -> &crate::loom::AtomicUsize {
        &self.parked
    }

    /// Registers (`true`) or unregisters a worker about to sleep without a
    /// timeout. SeqCst, and the sleeper looks at the LIFO slots after it:
    /// see `lifo`.
    pub(crate) fn set_untimed_sleeper(&self, asleep: bool) {
        if asleep {
            self.untimed_sleepers.fetch_add(1, Ordering::SeqCst);
        } else {
            self.untimed_sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether every other worker than the calling one (which is awake)
    /// sleeps without a timeout, so none will look at the caller's LIFO
    /// slot. Read after the slot was filled (SeqCst, see `lifo`).
    pub(crate) fn others_sleep_untimed(&self) -> bool {
        let n = self.nworkers();
        n > 1 && self.untimed_sleepers.load(Ordering::SeqCst) + 1 >= n
    }

    /// Steals for worker `thief` from a random victim's deque (up to half
    /// of it: all but the returned task land in `into`, the thief's own
    /// deque) or remote queue.
    ///
    /// Half, not one: a poll that finds hundreds of connections readable
    /// queues a reader fiber for each on the polling worker. Taken one per
    /// steal, the other worker paid a search per fiber and the polling
    /// worker ran most of the batch, its last fiber served after all the
    /// others; taken in halves, both run it at once.
    pub(crate) fn steal(&self, thief: usize, into: &Worker<TaskRef>) -> Option<TaskRef> {
        let n = self.nworkers();
        if n <= 1 {
            return None;
        }
        let start = fastrand_index(n);
        for k in 0..n {
            let i = (start + k) % n;
            if i == thief {
                continue;
            }
            let g = self.group(i);
            loop {
                match g.stealer.steal_batch_and_pop(into) {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => break,
                    Steal::Retry => {}
                }
            }
            if let Some(t) = g.remote.pop() {
                return Some(t);
            }
        }
        None
    }

    /// Sets the stop flag and wakes every worker so it can exit.
    pub(crate) fn stop(&self) {
        if !self.stopping.swap(true, Ordering::SeqCst) {
            super::runtime_stopped();
        }
        for i in 0..self.nworkers() {
            self.group(i).lot.stop();
        }
    }

    /// Counters of every worker plus outside threads.
    pub(crate) fn stats(&self) -> RuntimeStats {
        let threshold = self.blocked_threshold_ms.load(Ordering::Relaxed);
        RuntimeStats {
            workers: (0..self.nworkers())
                .map(|i| {
                    let g = self.group(i);
                    WorkerStats {
                        pinned: g.pinned.load(Ordering::Relaxed) as u64,
                        blocked_ms: super::blocked::blocked_ms(g, threshold),
                        blocked_incidents: g.watch.incidents(),
                        ..g.counters.snapshot()
                    }
                })
                .collect(),
            outside: self.outside.snapshot(),
        }
    }
}

/// A cheap per-thread pseudo-random index in `0..n` (xorshift; victim
/// selection needs spread, not quality).
pub(crate) fn fastrand_index(n: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            static SEED: AtomicUsize = AtomicUsize::new(0x2545_F491);
            let s = SEED.fetch_add(0x9E37_79B9, Ordering::Relaxed) as u64;
            (s.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).rotate_left(17)
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        ((x >> 32) as usize * n) >> 32
    })
}
