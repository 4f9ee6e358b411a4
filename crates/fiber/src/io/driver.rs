//! Who runs `epoll_wait`: the I/O driver.
//!
//! Two placements, chosen by `FIBRPC_IO_POLLER` (or [`super::Config`]):
//! - `worker` (default): tokio's placement. A worker that finds no fiber to
//!   run sleeps in `epoll_wait` instead of on its futex (only one worker per
//!   dispatcher; the others sleep as usual), and busy workers poll without
//!   blocking every few dozen fibers. Ready fibers are then queued by the
//!   worker that will most likely run them, and no thread exists only to
//!   forward events.
//! - `thread`: one dedicated thread per dispatcher blocks in `epoll_wait`
//!   and forwards every event to the workers (closest to bRPC's dispatcher,
//!   which is a fiber that blocks its worker in `epoll_wait`).
//!
//! `BENCHMARKS.md` has the echo numbers behind the default.
//!
//! What the dispatchers wait in is chosen by [`IoDriver`]: epoll (the
//! default), or io_uring where the kernel allows it, with a fallback to
//! epoll (and a log line) where it does not.
//!
//! In the worker placement I/O is collected by the workers of whatever
//! runtimes run (the default runtime is started if none does). Once every
//! runtime is shut down, nobody polls: a wait on a descriptor then ends only
//! by its timeout.

use super::dispatcher::Dispatcher;
use std::io;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Where `epoll_wait` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poller {
    /// In the idle loop of the fiber workers (tokio's placement).
    Worker,
    /// On dedicated threads, one per dispatcher.
    Thread,
}

/// The kernel interface the dispatchers wait in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDriver {
    /// epoll(7), edge-triggered.
    Epoll,
    /// io_uring, one ring per dispatcher, readiness through multishot
    /// `IORING_OP_POLL_ADD` (Linux 5.13+). Where the kernel refuses
    /// (old kernel, `kernel.io_uring_disabled`, seccomp, or
    /// `FIBRPC_IO_URING_DISABLE=1`), epoll is used and a warning logged.
    Uring,
    /// io_uring where available, else epoll, without a warning.
    Auto,
}

impl IoDriver {
    /// `FIBRPC_IO_DRIVER=epoll|uring|auto`; epoll if unset or unknown.
    fn from_env() -> IoDriver {
        match std::env::var("FIBRPC_IO_DRIVER").as_deref() {
            Ok("uring") | Ok("io_uring") => IoDriver::Uring,
            Ok("auto") => IoDriver::Auto,
            _ => IoDriver::Epoll,
        }
    }
}

/// I/O driver settings, fixed at first use.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of epoll instances; registrations are spread over them
    /// (bRPC's `event_dispatcher_num`). With [`Poller::Worker`], worker `i`
    /// polls instance `i % dispatchers`, and a descriptor first waited on
    /// by a fiber of worker `i` goes to that instance. Default: the number
    /// of cores, or `FIBRPC_EVENT_DISPATCHERS`.
    pub dispatchers: usize,
    /// Where `epoll_wait` runs. Default [`Poller::Worker`], or
    /// `FIBRPC_IO_POLLER=thread|worker`.
    pub poller: Poller,
    /// What the dispatchers wait in. Default [`IoDriver::Epoll`], or
    /// `FIBRPC_IO_DRIVER=epoll|uring|auto`.
    pub driver: IoDriver,
}

impl Default for Config {
    fn default() -> Self {
        let dispatchers = std::env::var("FIBRPC_EVENT_DISPATCHERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 64);
        let poller = match std::env::var("FIBRPC_IO_POLLER").as_deref() {
            Ok("thread") => Poller::Thread,
            _ => Poller::Worker,
        };
        Config {
            dispatchers,
            poller,
            driver: IoDriver::from_env(),
        }
    }
}

/// The process-wide set of dispatchers.
pub(crate) struct Driver {
    dispatchers: Box<[Dispatcher]>,
    /// [`IoDriver::Epoll`] or [`IoDriver::Uring`]: what runs.
    kind: IoDriver,
    poller: Poller,
    next: AtomicUsize,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();
static STARTED: Once = Once::new();
/// Set once the driver runs in worker mode: what workers check (one load).
static WORKER_DRIVER: AtomicPtr<Driver> = AtomicPtr::new(std::ptr::null_mut());

/// A driver kind asked for by [`crate::runtime::Builder::io_driver`],
/// which overrides the configuration's.
static REQUESTED: std::sync::Mutex<Option<IoDriver>> = std::sync::Mutex::new(None);

/// Sets the I/O configuration. Fails if the driver already started (the
/// first registration starts it) or a configuration was already set.
pub fn configure(config: Config) -> Result<(), Config> {
    if DRIVER.get().is_some() {
        return Err(config);
    }
    CONFIG.set(config)
}

/// Asks for `kind` before the driver starts; once it runs, succeeds only
/// if `kind` is compatible with what runs (`Auto` always is; `Uring` is
/// when io_uring runs or was refused by the kernel).
pub(crate) fn request(kind: IoDriver) -> io::Result<()> {
    let mut r = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    match DRIVER.get() {
        None => {
            *r = Some(kind);
            Ok(())
        }
        Some(Ok(d)) => {
            let wanted = r.or(CONFIG.get().map(|c| c.driver));
            let ok = match kind {
                IoDriver::Auto => true,
                IoDriver::Uring => d.kind == IoDriver::Uring || wanted == Some(IoDriver::Uring),
                IoDriver::Epoll => d.kind == IoDriver::Epoll,
            };
            if ok {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the I/O driver runs already, as {:?}; {kind:?} cannot be chosen any more",
                        d.kind
                    ),
                ))
            }
        }
        Some(Err(e)) => Err(io::Error::other(e.clone())),
    }
}

/// The driver that runs ([`IoDriver::Epoll`] or [`IoDriver::Uring`]),
/// starting it if it has not started. Tells whether io_uring was refused.
pub fn active_driver() -> io::Result<IoDriver> {
    Driver::get().map(|d| d.kind)
}

/// How many socket reads and writes ran as io_uring operations (see
/// [`super::recv`]) in this process so far: 0 unless the io_uring driver
/// runs with operations, or if the driver has not started.
pub fn uring_ops_completed() -> u64 {
    match DRIVER.get() {
        Some(Ok(d)) => d.dispatchers.iter().map(|d| d.ops_completed()).sum(),
        _ => 0,
    }
}

/// What to run for `wanted`: io_uring if asked for and the kernel takes
/// it, else epoll.
fn choose(wanted: IoDriver) -> IoDriver {
    if wanted == IoDriver::Epoll {
        return IoDriver::Epoll;
    }
    match crate::sys::uring::detect() {
        Ok(()) => IoDriver::Uring,
        Err(why) => {
            if wanted == IoDriver::Uring {
                tracing::warn!(reason = %why, "io_uring unavailable; the I/O driver falls back to epoll");
            } else {
                tracing::debug!(reason = %why, "io_uring unavailable; using epoll");
            }
            IoDriver::Epoll
        }
    }
}

impl Driver {
    /// The driver, started on first use.
    pub(crate) fn get() -> io::Result<&'static Driver> {
        let made = DRIVER.get_or_init(|| {
            let config = CONFIG.get_or_init(Config::default).clone();
            let wanted = REQUESTED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(config.driver);
            let mut kind = choose(wanted);
            let made = |kind: IoDriver| {
                (0..config.dispatchers)
                    .map(|_| Dispatcher::new(kind == IoDriver::Uring))
                    .collect::<io::Result<Vec<_>>>()
            };
            let dispatchers = match made(kind) {
                // Detection passed but a ring per dispatcher did not fit
                // (RLIMIT_MEMLOCK on kernels before 5.12, say).
                Err(e) if kind == IoDriver::Uring => {
                    tracing::warn!(error = %e, "io_uring rings could not be made; the I/O driver falls back to epoll");
                    kind = IoDriver::Epoll;
                    made(kind)
                }
                other => other,
            }
            .map_err(|e| e.to_string())?;
            Ok(Driver {
                dispatchers: dispatchers.into_boxed_slice(),
                kind,
                poller: config.poller,
                next: AtomicUsize::new(0),
            })
        });
        let d = made.as_ref().map_err(|e| {
            io::Error::other(format!("fibrpc: the I/O driver failed to start: {e}"))
        })?;
        STARTED.call_once(|| d.start());
        Ok(d)
    }

    fn start(&'static self) {
        crate::sys::signal::ignore_sigpipe();
        match self.poller {
            Poller::Worker => {
                WORKER_DRIVER.store(self as *const Driver as *mut Driver, Ordering::Release);
                // Somebody must poll: make sure a runtime has workers.
                crate::runtime::ensure_workers();
                // Workers that went to sleep before this saw no driver and
                // sleep on their futex: nobody would block in their
                // dispatchers' epoll (see `wake_all_workers`).
                crate::runtime::wake_all_workers();
            }
            Poller::Thread => {
                for (i, d) in self.dispatchers.iter().enumerate() {
                    std::thread::Builder::new()
                        .name(format!("fiber-dispatcher-{i}"))
                        .spawn(move || {
                            let guard = d.try_lock().expect("a new dispatcher is unlocked");
                            loop {
                                guard.poll(None);
                            }
                        })
                        .expect("cannot start a dispatcher thread");
                }
            }
        }
    }

    /// The dispatcher for a registration made here: the current worker's
    /// own when called from a fiber pinned to it (its events are then
    /// collected by the worker that runs its fibers, with no cross-thread
    /// wakeup), round robin otherwise.
    pub(crate) fn pick(&self) -> usize {
        let n = self.dispatchers.len();
        if n > 1 && self.poller == Poller::Worker {
            if let Some(w) = crate::runtime::pinned_worker_index() {
                return w % n;
            }
        }
        self.pick_spread()
    }

    /// The dispatcher for a registration with a reader hook: round robin,
    /// whoever registers. Its events start new fibers that any worker may
    /// run, so no worker is the natural home; picking the registering
    /// fiber's worker put every connection of a server on its acceptor's
    /// worker, and the other worker then found its own dispatcher empty on
    /// every poll (HTTP under wrk: 3.6k empty `epoll_wait`s a second) and
    /// got all its work by polling the busy one's.
    pub(crate) fn pick_spread(&self) -> usize {
        let n = self.dispatchers.len();
        if n == 1 {
            return 0;
        }
        if self.poller == Poller::Thread {
            return self.next.fetch_add(1, Ordering::Relaxed) % n;
        }
        // Only dispatchers some worker sleeps in (with one worker and two
        // dispatchers, the second would never be waited on).
        let live = n.min(crate::runtime::most_workers()).max(1);
        self.next.fetch_add(1, Ordering::Relaxed) % live
    }

    /// Whether the dispatchers run on io_uring (one load: the epoll path
    /// of `io::recv` and friends asks nothing more).
    pub(crate) fn is_uring(&self) -> bool {
        self.kind == IoDriver::Uring
    }

    /// The dispatcher worker `index` polls and sleeps in.
    pub(crate) fn home_of(&self, worker: usize) -> &Dispatcher {
        &self.dispatchers[worker % self.dispatchers.len()]
    }

    /// The dispatchers.
    pub(crate) fn dispatchers(&self) -> &[Dispatcher] {
        &self.dispatchers
    }
}

/// The driver, if it has started (without starting it).
pub(crate) fn started() -> Option<&'static Driver> {
    DRIVER.get().and_then(|d| d.as_ref().ok())
}

/// The driver if workers are to poll it (a single load on the hot path).
#[inline]
pub(crate) fn worker_driver() -> Option<&'static Driver> {
    let p = WORKER_DRIVER.load(Ordering::Acquire);
    // SAFETY: set once to a `Driver` inside a static `OnceLock`, never
    // moved or freed.
    unsafe { p.as_ref() }
}

/// Polls worker `index`'s own dispatcher without blocking (a busy worker's
/// periodic look), if nobody else is polling it.
pub(crate) fn poll_home(driver: &Driver, worker: usize) -> usize {
    match driver.home_of(worker).try_lock() {
        Some(g) => g.poll(Some(std::time::Duration::ZERO)),
        None => 0,
    }
}

/// Submits the operations queued on worker `index`'s own ring (polling it
/// without blocking, which also collects what completed), if any are and
/// nobody else is polling it: an idle worker does this before it spins,
/// so its fibers' reads and writes do not wait for its sleep to start.
pub(crate) fn flush_home(driver: &Driver, worker: usize) -> usize {
    let d = driver.home_of(worker);
    if !d.has_queued_ops() {
        return 0;
    }
    match d.try_lock() {
        Some(g) => g.poll(Some(std::time::Duration::ZERO)),
        None => 0,
    }
}

/// Polls, without blocking, the dispatchers of other workers that nobody
/// is polling (an idle worker helping: a dispatcher is unlocked only while
/// its owner is busy, and its events may start reader fibers any worker can
/// run). Our own dispatcher is left for the blocking wait, which returns at
/// once if events are pending: polling it here too would be a wasted
/// syscall per idle turn.
pub(crate) fn poll_foreign(driver: &Driver, worker: usize) -> usize {
    let n = driver.dispatchers.len();
    let home = worker % n;
    let mut events = 0;
    for (i, d) in driver.dispatchers.iter().enumerate() {
        if i == home {
            continue;
        }
        if let Some(g) = d.try_lock() {
            events += g.poll(Some(std::time::Duration::ZERO));
        }
    }
    events
}
