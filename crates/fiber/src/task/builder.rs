//! Spawn options: stack class, name, NOSIGNAL, urgent, migration opt-in.

use super::join::JoinHandle;
use crate::runtime::context::StackClass;
use crate::runtime::task_meta::Attrs;
use crate::runtime::{spawn_raw, Runtime, SpawnMode};
use std::io;
use std::sync::Arc;

/// Options for a new fiber.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    stack: StackClass,
    name: Option<Arc<str>>,
    urgent: bool,
    nosignal: bool,
    quiet: bool,
    migratable: bool,
}

impl Builder {
    /// Default options: normal stack, background, signalled, pinned.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stack the fiber runs on.
    pub fn stack(mut self, class: StackClass) -> Self {
        self.stack = class;
        self
    }

    /// A name, shown by the overflow handler and the console.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Run the new fiber now; the caller goes back to the run queue.
    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }

    /// Do not wake an idle worker for this fiber; call [`crate::flush`]
    /// after queuing a batch (bRPC's `BTHREAD_NOSIGNAL`).
    pub fn nosignal(mut self) -> Self {
        self.nosignal = true;
        self
    }

    /// Queue the fiber behind the fibers ready on this worker, where any
    /// worker may take it, and wake no idle worker for it (neither now nor
    /// at a later [`crate::flush`]) unless every other worker sleeps
    /// without a timeout: for work this worker reaches by itself in a
    /// moment. Another worker still takes it when it next looks for work
    /// (its timed sleeps end within milliseconds), should this worker stay
    /// in one fiber that long. Waking one for it instead costs an eventfd
    /// write here and a wakeup there that usually finds nothing left to
    /// do. Outside a worker, the same as a plain spawn.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Lets the fiber resume on any worker after it started, not only the
    /// one it started on (better balance for long-lived fibers).
    ///
    /// # Safety
    /// The fiber's code must not hold, across any point where it may block
    /// or yield (every fibrpc wait, `yield_now`, `sleep`, channel and lock
    /// operations, `spawn_urgent`, `Butex::wake_one`): a `!Send` value
    /// (`Rc`, `RefCell` borrow, `std::sync::MutexGuard`, …), a reference
    /// into a `thread_local!`, or anything else tied to the OS thread.
    /// Nor may a function of the fiber touch a thread-local both before
    /// and after such a point, directly or through library code inlined
    /// into it (IOBuf appends, bvar updates and std use thread-locals):
    /// the compiler assumes a function never changes threads and may reuse
    /// the address it computed before the switch. The compiler cannot check
    /// this; breaking it is undefined behaviour.
    pub unsafe fn migratable(mut self) -> Self {
        self.migratable = true;
        self
    }

    /// Spawns on the current worker's runtime, or the default one.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_inner(None, f)
    }

    /// Spawns `f` as a detached fiber that must not be lost silently: if
    /// it can never run — the spawn fails, or no stack can be mapped for
    /// it when a worker first takes it (`vm.max_map_count` or memory
    /// exhausted) — `lost` runs instead, once.
    ///
    /// `lost` runs on the spawning thread or on the worker that failed to
    /// start the fiber, outside any fiber, so it must not block: close a
    /// connection, fail a call, hand the work to a thread.
    #[track_caller]
    pub fn spawn_or_else<F, L>(self, f: F, lost: L)
    where
        F: FnOnce() + Send + 'static,
        L: FnOnce() + Send + 'static,
    {
        let guard = IfLost(Some(lost));
        // Dropping the closure unrun (a failed spawn drops it at once; a
        // stack that cannot be mapped drops it in the worker) drops the
        // armed guard, which runs `lost`.
        let _ = self.spawn_inner(None, move || {
            let mut guard = guard;
            guard.0 = None;
            f()
        });
    }

    /// Spawns on `rt`.
    #[track_caller]
    pub fn spawn_on<F, T>(self, rt: &Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_inner(Some(rt), f)
    }

    #[track_caller]
    fn spawn_inner<F, T>(self, rt: Option<&Runtime>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let attrs = Attrs {
            stack: self.stack,
            name: self.name,
            migratable: self.migratable,
            spawned_at: Some(std::panic::Location::caller()),
        };
        let mode = SpawnMode {
            urgent: self.urgent,
            nosignal: self.nosignal,
            quiet: self.quiet,
        };
        let (id, meta, result) = spawn_raw(rt.map(|r| r.control()), f, attrs, mode)?;
        Ok(JoinHandle::new(id, meta, result))
    }
}

/// Runs its callback when dropped while armed (see
/// [`Builder::spawn_or_else`]).
struct IfLost<L: FnOnce()>(Option<L>);

impl<L: FnOnce()> Drop for IfLost<L> {
    fn drop(&mut self) {
        if let Some(lost) = self.0.take() {
            lost();
        }
    }
}
