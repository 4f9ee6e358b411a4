//! Waiting for a fiber to end and taking its result.

use super::packet::ResultVTable;
use crate::butex::WaitError;
use crate::runtime::task_meta::{FiberId, Slab, TaskRef};
use std::any::Any;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Why [`JoinHandle::join`] has no value.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Panic(Box<dyn Any + Send + 'static>),
    NotStarted(std::io::Error),
}

impl JoinError {
    pub(crate) fn panicked(p: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: Repr::Panic(p),
        }
    }

    pub(crate) fn not_started(e: std::io::Error) -> Self {
        JoinError {
            repr: Repr::NotStarted(e),
        }
    }

    /// Whether the fiber panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic message, if the fiber panicked with a string.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            Repr::NotStarted(_) => None,
        }
    }

    /// The panic payload, if the fiber panicked.
    pub fn into_panic(self) -> Option<Box<dyn Any + Send + 'static>> {
        match self.repr {
            Repr::Panic(p) => Some(p),
            Repr::NotStarted(_) => None,
        }
    }

    /// Continues the fiber's panic on this thread (or panics with the
    /// reason the fiber never started).
    pub fn resume_unwind(self) -> ! {
        match self.repr {
            Repr::Panic(p) => std::panic::resume_unwind(p),
            Repr::NotStarted(e) => panic!("fiber never started: {e}"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Panic(_) => match self.panic_message() {
                Some(m) => write!(f, "fiber panicked: {m}"),
                None => f.write_str("fiber panicked"),
            },
            Repr::NotStarted(e) => write!(f, "fiber could not start: {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Owned permission to join a fiber and take its result. Dropping it
/// detaches the fiber.
#[must_use = "dropping a JoinHandle detaches the fiber; call join() to wait"]
pub struct JoinHandle<T> {
    id: FiberId,
    /// The fiber's slot: not recycled while this handle exists (it is one
    /// of the slot's two owners, see `task::packet`).
    meta: TaskRef,
    result: ResultVTable<T>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(id: FiberId, meta: TaskRef, result: ResultVTable<T>) -> Self {
        JoinHandle { id, meta, result }
    }

    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.id
    }

    /// Whether the fiber has ended.
    pub fn is_finished(&self) -> bool {
        self.meta.version.value().load(Ordering::Acquire) != self.id.version()
    }

    /// Waits for the fiber to end (suspending the calling fiber, or blocking
    /// the calling thread) and returns its value, or how it failed.
    pub fn join(self) -> Result<T, JoinError> {
        wait_version(self.meta, self.id, None).expect("join without deadline cannot time out");
        // SAFETY: we are the handle (one owner of the slot, so the payload
        // is this fiber's) and the fiber ended: `wait_version` saw its
        // version bump with Acquire. `join` consumes the handle, so this
        // runs once.
        unsafe { self.meta.payload.take(&self.result) }
            .expect("a finished fiber always leaves a result")
        // Dropping `self` here lets go of the slot.
    }

    /// Like [`join`](Self::join) with a deadline; gives the handle back on
    /// timeout.
    pub fn join_deadline(self, deadline: Instant) -> Result<Result<T, JoinError>, Self> {
        match wait_version(self.meta, self.id, Some(deadline)) {
            Ok(()) => Ok(self.join()),
            Err(_) => Err(self),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: the handle releases its ownership once, here; `result`
        // came from this payload's `init`.
        if unsafe { self.meta.payload.release_handle(&self.result) } {
            // The fiber ended and let go before us: the slot is ours to
            // recycle (its version already moved on).
            crate::runtime::task_group::recycle_slot(self.meta);
        }
    }
}

/// Waits until the fiber named by `id`, in slot `m`, has ended (its slot's
/// version moved on). The caller keeps the slot from being released
/// meanwhile (it owns it, or pins it). Interrupts of the *waiting* fiber
/// are ignored by `join` (they stay pending for its next interruptible
/// wait).
pub(crate) fn wait_version(
    m: TaskRef,
    id: FiberId,
    deadline: Option<Instant>,
) -> Result<(), WaitError> {
    run_if_next_here(m);
    let mut interrupted = false;
    let r = loop {
        if m.version.value().load(Ordering::Acquire) != id.version() {
            break Ok(());
        }
        match m.version.wait(id.version(), deadline) {
            Ok(()) | Err(WaitError::WouldBlock) => {}
            Err(WaitError::Interrupted) => interrupted = true,
            Err(WaitError::TimedOut) => break Err(WaitError::TimedOut),
        }
    };
    if interrupted {
        crate::task::restore_interrupt();
    }
    r
}

/// Joining a fiber that this worker spawned last and has not started yet
/// (it waits in the LIFO slot): run it now, as `spawn_urgent` would, and
/// come back after it ends or blocks. Spares the joiner a butex wait and
/// the child a wakeup in the common spawn-then-join pattern.
fn run_if_next_here(child: TaskRef) {
    let Some(g) = crate::runtime::task_group::current_group() else {
        return;
    };
    let Some(me) = g.current_task() else { return };
    let Some(y) = crate::runtime::current_yielder(me) else {
        return;
    };
    if let Some(child) = g.take_lifo_if(child) {
        // SAFETY: `me` is the fiber running on this thread; `y` its yielder.
        unsafe { y.suspend(crate::runtime::context::Switch::Urgent(child)) };
    }
}

/// Waits for the fiber `id` to end, without taking its result (bRPC's
/// `bthread_join`). Fails with [`NoSuchFiber`](super::NoSuchFiber) if the id
/// does not name a live fiber (it ended, or never existed).
pub fn join_id(id: FiberId) -> Result<(), super::NoSuchFiber> {
    // Pinned for the whole wait: it waits on the meta's version butex.
    match Slab::global().pin(id.slot()) {
        Some(pin) if pin.meta().version.value().load(Ordering::Acquire) == id.version() => {
            let _ = wait_version(pin.meta(), id, None);
            Ok(())
        }
        _ => Err(super::NoSuchFiber(id)),
    }
}
