//! What a fiber runs and where its result goes: one allocation per spawn
//! holding the closure and, later, its result.

use super::join::JoinError;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The type-erased entry a fiber runs.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the closure (once), catching a panic into the result.
    fn run(&self);
    /// Records that the fiber could not start (e.g. no stack could be mapped).
    fn fail(&self, err: std::io::Error);
}

/// The type-erased result a `JoinHandle<T>` reads.
pub(crate) trait ResultSlot<T>: Send + Sync {
    /// Takes the result. Only after the fiber ended (version bumped).
    fn take(&self) -> Option<Result<T, JoinError>>;
}

/// Closure and result of one fiber.
pub(crate) struct Packet<F, T> {
    f: UnsafeCell<Option<F>>,
    result: UnsafeCell<Option<Result<T, JoinError>>>,
}

impl<F, T> Packet<F, T> {
    pub(crate) fn new(f: F) -> Self {
        Packet {
            f: UnsafeCell::new(Some(f)),
            result: UnsafeCell::new(None),
        }
    }
}

// SAFETY: `f` is taken exactly once, by the fiber holding the run token;
// `result` is written by that fiber before its version is bumped (Release)
// and read by a joiner only after it observed the bump (Acquire). So the
// cells are never accessed concurrently; `F` and `T` cross threads, hence
// `Send` bounds.
unsafe impl<F: Send, T: Send> Sync for Packet<F, T> {}

impl<F, T> Runnable for Packet<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(&self) {
        // SAFETY: see the Sync impl: only the running fiber touches `f` now.
        let f = unsafe { (*self.f.get()).take() };
        let Some(f) = f else { return };
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked);
        // SAFETY: as above; no joiner reads before the version bump.
        unsafe { *self.result.get() = Some(r) };
    }

    fn fail(&self, err: std::io::Error) {
        // SAFETY: the fiber never ran; we hold its token.
        unsafe {
            *self.f.get() = None;
            *self.result.get() = Some(Err(JoinError::not_started(err)));
        }
    }
}

impl<F, T> ResultSlot<T> for Packet<F, T>
where
    F: Send,
    T: Send,
{
    fn take(&self) -> Option<Result<T, JoinError>> {
        // SAFETY: called by the single join handle after the fiber ended.
        unsafe { (*self.result.get()).take() }
    }
}
