//! Fibers: spawning, joining, yielding, sleeping, interrupting.

pub(crate) mod builder;
pub(crate) mod join;
pub(crate) mod local;
pub(crate) mod packet;

use crate::butex::{Butex, WaitError};
use crate::runtime::context::Switch;
use crate::runtime::current_yielder;
use crate::runtime::task_group::current_group;
use crate::runtime::task_meta::{FiberId, Slab, TaskRef};
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use builder::Builder;
pub use join::{join_id, JoinError, JoinHandle};

/// Spawns a fiber running `f` and returns a handle to join it.
///
/// From a fiber, the new fiber waits in this worker's LIFO slot: it runs at
/// the caller's next switch (join, wait, yield, exit) and wakes nobody, or
/// is handed to another worker if the caller keeps running for 50 µs; the
/// fiber it displaces from the slot goes to the tail of the run queue, where
/// idle workers (signalled) may steal it. From any other thread, it goes to
/// a random worker's remote queue. A fiber is only ever stolen before it
/// first runs. It gets a normal (1 MiB) stack, mapped lazily at its first
/// run and pooled afterwards. Use [`Builder`] for the other options.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).expect("fiber slab exhausted")
}

/// Spawns a fiber that runs *now* on this worker; the calling fiber goes
/// back to the run queue (bRPC's `bthread_start_urgent`). From a thread that
/// is not a fiber it is the same as [`spawn`].
#[track_caller]
pub fn spawn_urgent<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .urgent()
        .spawn(f)
        .expect("fiber slab exhausted")
}

/// The fiber running on this thread right now, with its own stack.
pub(crate) fn current_task() -> Option<TaskRef> {
    current_group().and_then(|g| g.current_task())
}

/// Puts back an interrupt that a non-interruptible wait swallowed, so the
/// fiber's next interruptible wait still sees it.
pub(crate) fn restore_interrupt() {
    if let Some(t) = current_task() {
        t.interrupted.store(true, Ordering::Release);
    }
}

/// The id of the calling fiber, or `None` on a plain thread.
pub fn current() -> Option<FiberId> {
    current_task().map(|t| t.id())
}

/// The name given to the calling fiber with [`Builder::name`].
pub fn current_name() -> Option<std::sync::Arc<str>> {
    // SAFETY: the running fiber holds its own token; we copy a field out.
    current_task().and_then(|t| unsafe { t.run_state().attrs.name.clone() })
}

/// Lets other fibers of this worker run; the caller continues later. If no
/// other fiber is ready here, returns at once (there is nobody to give way
/// to, and a round trip through the scheduler would only cost time). On a
/// plain thread (or a fiber without its own stack), yields the OS thread.
pub fn yield_now() {
    let Some(g) = current_group() else {
        std::thread::yield_now();
        return;
    };
    if let Some(t) = g.current_task() {
        if let Some(y) = current_yielder(t) {
            if g.nothing_else_ready() {
                return;
            }
            // SAFETY: `t` is the fiber running on this thread; `y` its yielder.
            unsafe { y.suspend(Switch::Yield) };
            return;
        }
    }
    std::thread::yield_now();
}

/// The calling fiber was woken by [`interrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fiber interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Suspends the calling fiber for `d` (its worker runs others meanwhile);
/// on a plain thread, sleeps the thread. Returns `Err(Interrupted)` if the
/// fiber was [interrupted](interrupt) before the time was up.
///
/// A `d` too long for the clock (`Duration::MAX`) never ends by itself: the
/// fiber sleeps until interrupted.
pub fn sleep(d: Duration) -> Result<(), Interrupted> {
    sleep_opt(crate::sync::deadline_after(d))
}

/// Like [`sleep`], until `deadline`.
pub fn sleep_until(deadline: Instant) -> Result<(), Interrupted> {
    sleep_opt(Some(deadline))
}

/// Sleeps until `deadline`, or until interrupted if there is none.
fn sleep_opt(deadline: Option<Instant>) -> Result<(), Interrupted> {
    let b = Butex::new(0);
    loop {
        match b.wait(0, deadline) {
            Err(WaitError::TimedOut) => return Ok(()),
            Err(WaitError::Interrupted) => return Err(Interrupted),
            Ok(()) | Err(WaitError::WouldBlock) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(());
                }
            }
        }
    }
}

/// The id does not name a live fiber (it ended, or never existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchFiber(pub FiberId);

impl fmt::Display for NoSuchFiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no live fiber with id {:?}", self.0)
    }
}

impl std::error::Error for NoSuchFiber {}

/// Interrupts fiber `id` (bRPC's `bthread_interrupt`): if it is blocked in
/// [`sleep`], a lock, a channel or any other butex wait, that wait returns
/// an `Interrupted` error now; otherwise its next interruptible wait does.
pub fn interrupt(id: FiberId) -> Result<(), NoSuchFiber> {
    // Pinned: the interrupt visits the meta's current waiter.
    let pin = Slab::global().pin(id.slot()).ok_or(NoSuchFiber(id))?;
    if !crate::butex::interrupt_task(pin.meta(), id.version()) {
        return Err(NoSuchFiber(id));
    }
    Ok(())
}
