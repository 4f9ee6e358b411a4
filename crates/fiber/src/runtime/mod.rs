//! The runtime (bRPC's TaskControl and its workers): builder, handle,
//! spawning and waking.

mod batch_end;
mod blocked;
pub(crate) mod context;
mod idle_yield;
mod lifo;
mod list;
mod overflow;
pub(crate) mod parking_lot;
pub(crate) mod remote_queue;
pub(crate) mod segment_gate;
mod stack_pool;
pub(crate) mod stats;
pub(crate) mod task_control;
pub(crate) mod task_group;
pub(crate) mod task_meta;
mod task_slab;
pub(crate) mod trace;
mod trim;

use self::task_control::TaskControl;
use self::task_group::{current_group, TaskGroup};
use self::task_meta::{Attrs, FiberId, Slab, TaskRef};
use crate::task::packet::ResultVTable;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

pub use self::blocked::coarse_ms;
pub use self::context::StackClass;
pub use self::list::{fiber_info, list_fibers, FiberInfo, FiberState};
pub use self::stats::{RuntimeStats, WorkerStats};
pub use self::trace::{fiber_backtrace, NoBacktrace};
pub use self::trim::{trim_memory, DEFAULT_TRIM_INTERVAL};

/// Most workers a runtime can have ([`Builder::workers`] clamps to it;
/// [`Runtime::add_workers`] and [`Runtime::grow_workers_to`] refuse more).
pub const MAX_WORKERS: usize = task_control::MAX_WORKERS;

/// Configures and starts a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    workers: usize,
    name: String,
    thread_stack_size: usize,
    /// `None`: the environment's or the default threshold.
    blocked_threshold_ms: Option<u64>,
    idle_yield_us: Option<u64>,
    trim_interval: Option<Duration>,
    io_driver: Option<crate::io::IoDriver>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: thread::available_parallelism().map_or(2, |n| n.get()),
            name: "fiber-worker".into(),
            thread_stack_size: 2 << 20,
            blocked_threshold_ms: None,
            idle_yield_us: None,
            trim_interval: Some(trim::DEFAULT_TRIM_INTERVAL),
            io_driver: None,
        }
    }
}

impl Builder {
    /// A builder with the defaults: one worker per core.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of worker threads (bRPC's `bthread_concurrency`), clamped to
    /// 1..=[`MAX_WORKERS`].
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, task_control::MAX_WORKERS);
        self
    }

    /// Prefix of the worker threads' names.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Stack size of the worker threads themselves (where the scheduler and
    /// [`StackClass::Worker`] tasks run).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.thread_stack_size = bytes;
        self
    }

    /// How long a worker may run one fiber without a switch before it is
    /// reported as blocked (once per incident, as a `tracing` warning, and in
    /// [`RuntimeStats`]: `blocked_ms`, `blocked_incidents`); `None` turns
    /// the detection off. The default is 100 ms, or the
    /// `FIBRPC_BLOCKED_WORKER_MS` environment variable (milliseconds, 0 for
    /// off). A monitor thread samples the workers every 50 ms (more often
    /// for thresholds under 100 ms), so a duration is measured to within
    /// one period. See the crate docs, "What blocks a worker".
    pub fn blocked_worker_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.blocked_threshold_ms = Some(threshold.map_or(0, |d| (d.as_millis() as u64).max(1)));
        self
    }

    /// How often at most a worker that runs out of fibers yields its
    /// thread's CPU (`sched_yield`), so that the kernel's preemption of
    /// it, due when more threads than cores want to run, comes when none
    /// of its fibers waits instead of in the middle of a batch (where
    /// they would wait a scheduler tick or two). `None`: never, the
    /// default unless the `FIBRPC_IDLE_YIELD_US` environment variable
    /// sets an interval (microseconds, 0 for never). With a core to spare
    /// the call returns at once.
    ///
    /// A trade of throughput for tail latency where the cores are
    /// oversubscribed. With the load generator on the same 2 cores, at
    /// 2.5 ms: TCP echo at 50 connections p99 4.3 → 2.6 ms and p99.9
    /// 8.1 → 4.7 ms at 0.96× the requests per second; HTTP under wrk p99
    /// 1.3 → 0.63× hyper's, but 0.92× the requests per second and 1.05×
    /// the CPU per request. At 1 ms the echo's p99 is
    /// 1.3 ms, its median twice as high. At 1,000 echo connections it
    /// costs 7 % of the requests per second and leaves the tail as it
    /// is: it pays where a worker often runs dry, at low concurrency.
    pub fn idle_yield_interval(mut self, every: Option<Duration>) -> Self {
        self.idle_yield_us = Some(every.map_or(0, |d| (d.as_micros() as u64).max(1)));
        self
    }

    /// How often memory left idle by a burst is given back (default
    /// [`DEFAULT_TRIM_INTERVAL`], 5 s; `None`: never). Fiber stacks unused
    /// through a whole interval are unmapped (a small reserve stays, its
    /// deep pages released), workers going to sleep keep only a few, and
    /// on glibc free heap pages go back to the kernel (`malloc_trim`).
    /// So after a burst the resident size comes back down within about two
    /// intervals; see [`trim_memory`] to do it at once.
    ///
    /// One trimmer thread serves the whole process: the last runtime built
    /// sets the interval for all.
    pub fn memory_trim_interval(mut self, interval: Option<Duration>) -> Self {
        self.trim_interval = interval;
        self
    }

    /// What the process's I/O dispatchers wait in: epoll (the default,
    /// or `FIBRPC_IO_DRIVER`), io_uring, or io_uring where available; see
    /// [`crate::io::IoDriver`]. The driver is process-wide and starts with
    /// the first descriptor registration: [`build`](Self::build) fails
    /// with `InvalidInput` if it runs already as something else.
    pub fn io_driver(mut self, driver: crate::io::IoDriver) -> Self {
        self.io_driver = Some(driver);
        self
    }

    /// Starts the workers.
    pub fn build(self) -> io::Result<Runtime> {
        if let Some(kind) = self.io_driver {
            crate::io::driver::request(kind)?;
        }
        trim::configure(self.trim_interval);
        // Before any fiber can run: the mode of the interrupt fence pair.
        crate::sys::membarrier::init();
        RUNTIMES_RUNNING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let control = TaskControl::new();
        control.blocked_threshold_ms.store(
            self.blocked_threshold_ms
                .unwrap_or_else(blocked::default_threshold_ms),
            std::sync::atomic::Ordering::Relaxed,
        );
        control.idle_yield_us.store(
            self.idle_yield_us
                .unwrap_or_else(idle_yield::default_every_us),
            std::sync::atomic::Ordering::Relaxed,
        );
        blocked::start_monitor();
        CONTROLS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(control);
        let rt = Runtime {
            inner: Arc::new(Inner {
                control,
                threads: Mutex::new(Vec::new()),
                builder: self.clone(),
            }),
        };
        rt.add_workers(self.workers)?;
        Ok(rt)
    }
}

/// Runtimes built and not stopped yet (the I/O driver needs one to poll).
static RUNTIMES_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Makes sure some runtime has workers (starting the default one if none
/// runs): in worker-poller mode they are the ones that run `epoll_wait`.
pub(crate) fn ensure_workers() {
    if RUNTIMES_RUNNING.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        Runtime::global();
    }
}

/// Every runtime's control block (they are leaked, so this holds no
/// resource beyond a pointer each): see [`wake_all_workers`].
static CONTROLS: Mutex<Vec<&'static TaskControl>> = Mutex::new(Vec::new());

/// Signals every worker of every runtime, so that each one asleep looks
/// for work again and goes back to sleep the way it would now.
///
/// Called when the I/O driver starts in worker-poller mode. A worker that
/// went idle before that saw no driver and sleeps on its futex, with no
/// timeout; nothing else wakes it while its fibers have nothing to do.
/// Its home dispatcher then has nobody blocked in `epoll_wait`: the events
/// of the descriptors registered there (reader hooks are spread round
/// robin over the dispatchers) were collected only by the non-blocking
/// looks of busy or just-idled workers, and a lone caller waiting for a
/// response, with every worker asleep, waited out its whole timeout
/// (2 workers, 1 sequential RPC caller: every call timed out). Woken, the
/// worker sleeps in its dispatcher instead. Either it reads the new
/// `pending_signal` after our increment (whose release pairs with its
/// acquire load of the state, so it then sees the driver), or its futex
/// wait finds the value changed and returns.
pub(crate) fn wake_all_workers() {
    let controls = CONTROLS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for control in controls {
        if control.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        for i in 0..control.nworkers() {
            control.group(i).lot.signal();
        }
    }
}

/// The most workers any runtime has had: worker `i` polls I/O dispatcher
/// `i % dispatchers`, so dispatchers at or past this index have no worker
/// and must not get registrations.
static MOST_WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// See [`MOST_WORKERS`].
pub(crate) fn most_workers() -> usize {
    MOST_WORKERS.load(std::sync::atomic::Ordering::Acquire)
}

/// Called once per runtime when it stops.
pub(crate) fn runtime_stopped() {
    RUNTIMES_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
}

struct Inner {
    control: &'static TaskControl,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    builder: Builder,
}

/// A fiber runtime: worker threads that run fibers.
///
/// Most programs use the default runtime, started on first use by
/// [`crate::spawn`]; an explicit one is for tests and embedding. Dropping the
/// last handle of an explicit runtime (or calling [`shutdown`](Self::shutdown))
/// stops its workers once the runnable fibers have run. Fibers still blocked
/// then are abandoned: their stacks stay mapped, and waking them later is
/// harmless (it lands in the dead runtime's queues).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.workers())
            .finish()
    }
}

impl Runtime {
    /// A runtime with one worker per core.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A builder.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The runtime started on first use by the free functions ([`crate::spawn`]
    /// from a thread that is not a worker). Its worker count can be set with
    /// the `FIBRPC_WORKERS` environment variable.
    pub fn global() -> &'static Runtime {
        static GLOBAL: OnceLock<Runtime> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let mut b = Builder::new().thread_name("fiber-worker");
            if let Some(n) = std::env::var("FIBRPC_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                b = b.workers(n);
            }
            b.build().expect("cannot start the default fiber runtime")
        })
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.inner.control.nworkers()
    }

    /// Adds `n` workers (bRPC grows its concurrency the same way; workers are
    /// never removed while the runtime runs). Fails with
    /// [`io::ErrorKind::InvalidInput`], adding none, if the runtime would
    /// have more than [`MAX_WORKERS`] workers.
    pub fn add_workers(&self, n: usize) -> io::Result<()> {
        let mut threads = self.inner.threads.lock().unwrap_or_else(|e| e.into_inner());
        let have = self.workers();
        self.grow_locked(&mut threads, have.saturating_add(n))
    }

    /// Grows the runtime to `n` workers (bRPC's `bthread_setconcurrency`):
    /// adds the missing ones, or nothing if it has `n` already. Fails with
    /// [`io::ErrorKind::InvalidInput`], changing nothing, if `n` is above
    /// [`MAX_WORKERS`] or below the current count (workers are never
    /// removed). Concurrent calls are serialized, so two callers asking for
    /// the same `n` end with `n` workers, not more.
    pub fn grow_workers_to(&self, n: usize) -> io::Result<()> {
        let mut threads = self.inner.threads.lock().unwrap_or_else(|e| e.into_inner());
        let have = self.workers();
        if n < have {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("workers can only be added: {n} is below the current {have}"),
            ));
        }
        self.grow_locked(&mut threads, n)
    }

    /// Starts workers until there are `want`, with the thread list locked
    /// (which makes the count and the additions one step). Checks the
    /// bound first: past [`MAX_WORKERS`] the new worker would find no slot
    /// in the task control and assert.
    fn grow_locked(
        &self,
        threads: &mut Vec<thread::JoinHandle<()>>,
        want: usize,
    ) -> io::Result<()> {
        if want > MAX_WORKERS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "at most {MAX_WORKERS} workers (asked for {want}, have {})",
                    self.workers()
                ),
            ));
        }
        while self.workers() < want {
            let control = self.inner.control;
            let (tx, rx) = std::sync::mpsc::channel();
            let name = format!("{}-{}", self.inner.builder.name, threads.len());
            let h = thread::Builder::new()
                .name(name)
                .stack_size(self.inner.builder.thread_stack_size)
                .spawn(move || {
                    let group = TaskGroup::new(control);
                    let _ = tx.send(());
                    group.run();
                })?;
            // Wait until the worker is registered, so `workers()` is exact.
            if rx.recv().is_err() {
                // The thread ended before registering: do not wait for a
                // count that will not come.
                threads.push(h);
                return Err(io::Error::other("a new worker thread died while starting"));
            }
            threads.push(h);
            MOST_WORKERS.fetch_max(control.nworkers(), std::sync::atomic::Ordering::AcqRel);
        }
        Ok(())
    }

    /// Spawns a fiber on this runtime. See [`crate::spawn`].
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::Builder::new()
            .spawn_on(self, f)
            .expect("fiber slab exhausted")
    }

    /// Runs `f` in a fiber of this runtime and blocks the calling thread
    /// until it returns; a panic in `f` is resumed here.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(v) => v,
            Err(e) => e.resume_unwind(),
        }
    }

    /// Scheduler counters of this runtime.
    pub fn stats(&self) -> RuntimeStats {
        self.inner.control.stats()
    }

    /// Stops the workers after the runnable fibers ran, and joins them.
    /// Other handles to this runtime can no longer spawn usefully.
    pub fn shutdown(&self) {
        self.inner.control.stop();
        let threads: Vec<_> =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }

    pub(crate) fn control(&self) -> &'static TaskControl {
        self.inner.control
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.control.stop();
        let me = thread::current().id();
        for t in self
            .threads
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

/// How to queue a new fiber.
#[derive(Clone, Copy)]
pub(crate) struct SpawnMode {
    pub(crate) urgent: bool,
    pub(crate) nosignal: bool,
    /// See [`crate::Builder::quiet`].
    pub(crate) quiet: bool,
}

/// Creates a fiber running `f` on `control` (or on the current worker's
/// runtime, else the default one) and queues it. Returns its id, its slot
/// and the vtable its join handle reads the result with; the slot stays the
/// fiber's until the fiber ended *and* the handle let go of it
/// (`task::packet`).
pub(crate) fn spawn_raw<F, T>(
    control: Option<&'static TaskControl>,
    f: F,
    attrs: Attrs,
    mode: SpawnMode,
) -> io::Result<(FiberId, TaskRef, ResultVTable<T>)>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let group = current_group();
    let control = control
        .or_else(|| group.map(|g| g.control))
        .unwrap_or_else(|| Runtime::global().control());
    let local = group.filter(|g| std::ptr::eq(g.control, control));
    // SAFETY: `free_slots` is only touched by its worker's thread, here
    // outside any other borrow of it.
    let cache = local.map(|g| unsafe { &mut *g.free_slots.get() });
    let meta = Slab::global()
        .alloc(cache)
        .ok_or_else(|| io::Error::other("too many fibers alive (16M)"))?;
    // SAFETY: a freshly allocated slot is reachable by nobody else: we hold
    // its run token, and its payload is empty (the slot's owners released
    // it before it was freed).
    let result = unsafe {
        let (entry, result) = meta.payload.init(f);
        let rs = meta.run_state();
        rs.entry = Some(entry);
        meta.diag.publish(attrs.spawned_at, &attrs.name);
        rs.attrs = attrs;
        rs.control = Some(control);
        result
    };
    let id = meta.id();
    match local {
        Some(g) => {
            g.shared.counters.created.incr();
            if mode.urgent {
                if let Some(y) = g.current_task().and_then(current_yielder) {
                    // SAFETY: we are the running fiber of this worker and `y`
                    // is its yielder.
                    unsafe { y.suspend(context::Switch::Urgent(meta)) };
                    return Ok((id, meta, result));
                }
            }
            if mode.quiet {
                g.push_local_quiet(meta);
            } else if mode.nosignal {
                g.push_local(meta, false);
            } else if g.current_task().is_some() {
                g.push_spawned(meta, true);
            } else {
                g.push_local(meta, true);
            }
        }
        None => {
            control.outside.created.add_shared(1);
            control.push_remote(meta);
        }
    }
    Ok((id, meta, result))
}

/// The yielder of `task` if it runs on a stack of its own.
pub(crate) fn current_yielder(task: TaskRef) -> Option<context::YielderPtr> {
    // SAFETY: called only for the task running on this thread, which holds
    // its own token while it runs; the borrow is a copy-out.
    unsafe { task.run_state().yielder }
}

/// Where a parked fiber goes when it is made ready. The fiber computes it
/// itself before it parks, so its waker never reads the fiber's run state:
/// a pinned fiber links itself into a waiter list *before* it switches out
/// (see `Butex::wait_fiber`), and may still be running when woken.
#[derive(Clone, Copy)]
pub(crate) struct WakeRoute {
    control: &'static task_control::TaskControl,
    /// The worker it resumes on, or `NO_HOME` if it may resume anywhere.
    home: u32,
}

impl WakeRoute {
    /// The route of `task`, which is the fiber running on this thread.
    pub(crate) fn of_current(task: TaskRef) -> WakeRoute {
        // SAFETY: the running fiber holds its own token; a copy-out read.
        let (control, migratable) = unsafe {
            let rs = task.run_state();
            (rs.control, rs.attrs.migratable)
        };
        WakeRoute {
            control: control.expect("a running fiber belongs to a runtime"),
            home: if migratable {
                task_meta::NO_HOME
            } else {
                task.home.load(std::sync::atomic::Ordering::Relaxed)
            },
        }
    }

    /// Whether the fiber resumes only on its home worker.
    pub(crate) fn is_pinned(self) -> bool {
        self.home != task_meta::NO_HOME
    }
}

/// Makes a parked fiber runnable again. The caller holds its run token
/// (it just took the fiber out of a waiter list); `route` is what the
/// fiber computed before parking.
///
/// With `run_now`, if the caller is a fiber of the worker the woken fiber
/// is pinned to, runs it at once, nested on the caller's stack
/// (`TaskGroup::run_woken`), and the caller goes on when it switches out
/// (bRPC's `butex_wake`: the woken fiber runs on a hot cache, and a caller
/// that is about to wait anyway saves its whole wait). Past the nesting
/// bound, the caller switches to it through the scheduler instead. Always
/// inlined: a function boundary between the caller and that switch is one
/// more return mispredicted when the caller resumes.
#[inline(always)]
pub(crate) fn ready_to_run(task: TaskRef, route: WakeRoute, run_now: bool) {
    let group = current_group().filter(|g| std::ptr::eq(g.control, route.control));
    if !route.is_pinned() {
        match group {
            Some(g) => g.push_local(task, true),
            None => route.control.push_remote(task),
        }
        return;
    }
    let home = route.home as usize;
    match group {
        Some(g) if g.index() == home => {
            if run_now {
                if let Some((me, y)) = g
                    .current_task()
                    .and_then(|me| Some((me, current_yielder(me)?)))
                {
                    if g.may_run_woken() {
                        if g.run_woken(me, task) {
                            // SAFETY: we are the running fiber of this
                            // worker and `y` is its yielder.
                            unsafe { y.suspend(context::Switch::Yield) };
                        }
                        return;
                    }
                    // SAFETY: we are the running fiber of this worker and
                    // `y` is its yielder; we hold `task`'s token and hand it
                    // to the scheduler with the switch.
                    unsafe { y.suspend(context::Switch::Urgent(task)) };
                    return;
                }
            }
            g.push_resume(task)
        }
        _ => route.control.push_inbox(home, task),
    }
}

/// The index of the worker this code runs on, if the code stays there: a
/// pinned (started, not migratable) fiber, or the scheduler itself. `None`
/// on plain threads and in migratable fibers.
pub(crate) fn pinned_worker_index() -> Option<usize> {
    let g = current_group()?;
    match g.current_task() {
        // SAFETY: the running fiber holds its own token; a copy-out read.
        Some(t) if unsafe { t.is_migratable() } => None,
        _ => Some(g.index()),
    }
}

/// The index of the worker the caller runs on and stays on: `Some` in a
/// fiber that is not migratable (a started fiber never changes worker),
/// `None` on plain threads and in migratable fibers. Code that keeps
/// per-worker state (a connection per worker) picks its slot with it.
pub fn current_worker() -> Option<usize> {
    pinned_worker_index()
}

/// The index of the worker running the caller if the caller is a pinned
/// fiber (started, not migratable, on a stack of its own): code that
/// parks here resumes on this same worker. `None` in the scheduler, on
/// plain threads and in migratable fibers.
pub(crate) fn pinned_fiber_worker() -> Option<usize> {
    let g = current_group()?;
    let t = g.current_task()?;
    // SAFETY: the running fiber holds its own token; a copy-out read.
    if unsafe { t.is_migratable() } {
        return None;
    }
    current_yielder(t)?;
    Some(g.index())
}

/// Signals idle workers for the NOSIGNAL spawns queued by this worker
/// (bRPC's `bthread_flush`). A no-op outside workers.
pub fn flush() {
    if let Some(g) = current_group() {
        let n = g.unsignalled.replace(0);
        if n > 0 {
            g.control.signal_task(n, Some(g.shared));
        }
    }
}

/// Whether the worker running the caller has other fibers queued that it
/// will run before anything spawned with [`Builder::nosignal`] now (a
/// racy hint; `false` outside workers).
///
/// For batching: a fiber about to make a syscall whose work later fibers
/// of the same worker may add to (a socket write that their responses
/// could join) can queue it behind them instead, and make one syscall for
/// all of them.
///
/// [`Builder::nosignal`]: crate::Builder::nosignal
pub fn has_queued_fibers() -> bool {
    current_group().is_some_and(|g| g.others_queued())
}

/// Asks the worker running the caller to call `f` at the end of its
/// batch: when it next runs out of ready fibers, or at its next periodic
/// look at I/O, whichever comes first (see `batch_end`). Returns `false`,
/// and asks nothing, outside workers. Each call is one call of `f`.
pub(crate) fn at_batch_end(f: fn()) -> bool {
    match current_group() {
        Some(g) => {
            g.batch_end.push(f);
            true
        }
        None => false,
    }
}

/// After a dispatcher poll on a worker: the reader fibers its events
/// started were queued without a wakeup each; this worker runs the first
/// itself, so only the rest may need another worker (at most 2 are woken,
/// as for any signal). Waking a worker for work the current one reaches
/// first costs a futex or eventfd round trip per event for nothing.
///
/// A worker that polled because it ran out of work (asleep in its
/// dispatcher, or looking at another's) starts on the batch right away,
/// so it signals only for a batch of [`IDLE_POLL_SIGNAL_MIN`] or more:
/// waking a sleeping worker for a share of a few requests costs an
/// eventfd write, and a wakeup on the other side, worth more than the
/// share (HTTP under wrk at 50 connections: 0.04 eventfd writes per
/// request; without them the server's CPU per request fell ~10 % in
/// alternated runs). A busy worker's periodic poll still signals for any
/// second fiber: it has other work queued ahead of them.
///
/// A worker polling in its sleep is still marked asleep here; its signal
/// goes to another worker all the same (`signal_task` never claims the
/// signaller's own lot).
pub(crate) fn flush_after_poll() {
    if let Some(g) = current_group() {
        let n = g.unsignalled.replace(0);
        let min = if g.idle.get() {
            IDLE_POLL_SIGNAL_MIN
        } else {
            2
        };
        if n >= min {
            g.control.signal_task(n - 1, Some(g.shared));
        }
    }
}

/// The batch of fibers an idle worker's poll must start before it wakes
/// another worker for them (see [`flush_after_poll`]): a poll of a server
/// with hundreds of busy connections is still shared at once.
const IDLE_POLL_SIGNAL_MIN: usize = 16;

/// Scheduler counters of the runtime this thread belongs to (or of the
/// default runtime).
pub fn stats() -> RuntimeStats {
    match current_group() {
        Some(g) => g.control.stats(),
        None => Runtime::global().stats(),
    }
}
