//! `spawn_blocking`: runs blocking code on a pool of OS threads, so the
//! fiber that needs its result suspends instead of blocking its worker.
//!
//! The pool grows on demand up to [`MAX_BLOCKING_THREADS`] threads (or
//! `FIBRPC_MAX_BLOCKING_THREADS`); past that, jobs queue until a thread is
//! free. A thread idle for [`BLOCKING_KEEP_ALIVE`] exits. The result comes
//! back through a fiber channel: a fiber waiting for it parks on a butex
//! (its worker runs other fibers), a plain thread blocks on a futex.

use crate::sync::mpsc;
use crate::JoinError;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Most threads the blocking pool runs at once, unless the
/// `FIBRPC_MAX_BLOCKING_THREADS` environment variable says otherwise (read
/// once, at the first [`spawn_blocking`]).
pub const MAX_BLOCKING_THREADS: usize = 512;

/// How long a blocking-pool thread waits for a job before it exits.
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A pool of OS threads for blocking jobs.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    max: usize,
    keep_alive: Duration,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting for a job.
    idle: usize,
    /// Notifications sent and not yet consumed by a waking thread: idle
    /// threads beyond this many are free to take a new job.
    wakes: usize,
    /// Most threads alive at once so far.
    peak: usize,
}

impl Pool {
    pub(crate) fn new(max: usize, keep_alive: Duration) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    wakes: 0,
                    peak: 0,
                }),
                cond: Condvar::new(),
                max: max.max(1),
                keep_alive,
            }),
        }
    }

    /// The process-wide pool.
    pub(crate) fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let max = std::env::var("FIBRPC_MAX_BLOCKING_THREADS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(MAX_BLOCKING_THREADS);
            Pool::new(max, BLOCKING_KEEP_ALIVE)
        })
    }

    /// Queues `job`, waking an idle thread or starting one if the bound
    /// allows.
    pub(crate) fn execute(&self, job: Job) {
        let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        st.queue.push_back(job);
        if st.idle > st.wakes {
            st.wakes += 1;
            drop(st);
            self.shared.cond.notify_one();
            return;
        }
        if st.threads >= self.shared.max {
            // Every thread is busy: the job waits for the first one free.
            return;
        }
        st.threads += 1;
        st.peak = st.peak.max(st.threads);
        drop(st);
        let shared = self.shared.clone();
        let started = std::thread::Builder::new()
            .name("fiber-blocking".into())
            .spawn(move || shared.run());
        if let Err(e) = started {
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.threads -= 1;
            if st.threads == 0 {
                // Nobody will ever run the queue: fail its jobs' handles
                // (dropping a job drops its sender) rather than hang them.
                let jobs: Vec<Job> = st.queue.drain(..).collect();
                drop(st);
                tracing::error!(error = %e, "cannot start a blocking-pool thread");
                drop(jobs);
            }
        }
    }

    /// Threads alive now.
    pub(crate) fn threads(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .threads
    }

    /// Most threads alive at once so far.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn peak(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peak
    }
}

impl Shared {
    /// A pool thread: runs queued jobs, exits after `keep_alive` idle.
    fn run(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                // Jobs catch their own panics (`spawn_blocking`).
                job();
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .cond
                .wait_timeout(st, self.keep_alive)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            // Whichever thread wakes consumes a notification: the count
            // only decides whether a new job needs a new thread, and every
            // thread looks at the queue before it exits.
            st.wakes = st.wakes.saturating_sub(1);
            if timeout.timed_out() && st.queue.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `f` on the blocking pool (a separate set of OS threads) and returns
/// a handle to its result: tokio's `spawn_blocking`.
///
/// For code that would otherwise block a worker thread: `std` sleeps and
/// locks, blocking file or DNS I/O, a C library call, a long computation.
/// [`BlockingHandle::join`] from a fiber suspends the fiber (its worker
/// runs other fibers meanwhile); from a plain thread it blocks the thread.
/// Works from fibers and plain threads alike, with or without a runtime.
///
/// The pool starts threads on demand, up to [`MAX_BLOCKING_THREADS`]
/// (`FIBRPC_MAX_BLOCKING_THREADS` overrides it); further jobs wait in a
/// queue for a free thread. Threads idle for [`BLOCKING_KEEP_ALIVE`] exit.
/// A panic in `f` is caught and returned by `join`, as for a fiber.
///
/// ```
/// use std::time::Duration;
///
/// let h = fibrpc_fiber::spawn(|| {
///     // The worker keeps running other fibers while the pool sleeps.
///     let job = fibrpc_fiber::spawn_blocking(|| {
///         std::thread::sleep(Duration::from_millis(10));
///         21
///     });
///     job.join().unwrap() * 2
/// });
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_blocking_on(Pool::global(), f)
}

/// [`spawn_blocking`] on a given pool.
pub(crate) fn spawn_blocking_on<F, T>(pool: &Pool, f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    pool.execute(Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked);
        // The handle may be gone: nobody wants the result then.
        let _ = tx.send(r);
    }));
    BlockingHandle { rx }
}

/// Threads of the blocking pool alive now (at most
/// [`MAX_BLOCKING_THREADS`], or the `FIBRPC_MAX_BLOCKING_THREADS` bound).
pub fn blocking_threads() -> usize {
    Pool::global().threads()
}

/// The result of a [`spawn_blocking`] job. Dropping it detaches the job (it
/// still runs to completion).
pub struct BlockingHandle<T> {
    rx: mpsc::Receiver<Result<T, JoinError>>,
}

impl<T> std::fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingHandle").finish_non_exhaustive()
    }
}

impl<T> BlockingHandle<T> {
    /// Waits for the job and returns its result, or the panic it raised.
    /// Suspends the calling fiber (blocks a plain thread) meanwhile.
    pub fn join(self) -> Result<T, JoinError> {
        match self.rx.recv() {
            Ok(r) => r,
            // The job was dropped without running: its pool thread could
            // not start.
            Err(_) => Err(JoinError::not_started(std::io::Error::other(
                "the blocking pool could not start a thread",
            ))),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn the_pool_stays_within_its_bound_and_shrinks_when_idle() {
        let pool = Pool::new(4, Duration::from_millis(100));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                spawn_blocking_on(&pool, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        assert!(pool.threads() <= 4);
        let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(sum, (0..20).sum());
        assert!(
            most.load(Ordering::SeqCst) <= 4,
            "ran more jobs at once than threads"
        );
        assert!(pool.peak() <= 4 && pool.peak() >= 1, "peak {}", pool.peak());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pool.threads() > 0 {
            assert!(std::time::Instant::now() < deadline, "idle threads stayed");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A job after the pool shrank to nothing starts a thread again.
        assert_eq!(spawn_blocking_on(&pool, || 7).join().unwrap(), 7);
    }
}
