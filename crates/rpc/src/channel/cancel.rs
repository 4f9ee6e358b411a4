//! Cancelling a call in flight (bRPC's `StartCancel(call_id)`).
//!
//! A [`CallCanceller`] is taken from the [`Controller`] before the call
//! starts and may be kept by anyone. Cancelling completes the attempt in
//! flight with `ECANCELED` (a local error): its correlation id is given
//! up, so the response, if it still comes, finds no call and is dropped;
//! the call is not retried, and its server is not blamed (load
//! balancers and circuit breakers ignore a cancelled attempt). A call
//! not started yet fails with `ECANCELED` as it starts. A connect in
//! progress is not interrupted: the call ends as soon as it has its
//! connection.
//!
//! Cancellers nest: a combo channel's sub-calls get children of the
//! caller's canceller, so cancelling a combo call cancels its sub-calls,
//! and a [`ParallelChannel`](super::combo::ParallelChannel) cancels the
//! sub-calls it no longer needs.

use std::sync::{Arc, Mutex, Weak};

use crate::{Controller, RpcError};

/// Something a cancel reaches: an attempt waiting for its response, or
/// a nested canceller.
pub(crate) trait Cancel: Send + Sync {
    /// Ends what it stands for with [`cancelled_error`].
    fn cancel(&self);
}

/// What a canceller holds.
#[derive(Default)]
struct State {
    cancelled: bool,
    /// What the cancel reaches; weak, as an ended attempt does not live
    /// on for a canceller that is never used.
    watching: Vec<Weak<dyn Cancel>>,
}

/// Cancels one call (and the sub-calls of a combo call). See the module
/// docs. Cheap to clone; clones cancel the same call.
#[derive(Clone, Default)]
pub struct CallCanceller {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for CallCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCanceller")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CallCanceller {
    /// A canceller of nothing yet; [`Controller::canceller`] makes and
    /// attaches one.
    pub fn new() -> CallCanceller {
        CallCanceller::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cancels the call (bRPC's `StartCancel`): it ends with `ECANCELED`
    /// unless it ended already. Returns at once; cancelling twice is
    /// harmless.
    pub fn cancel(&self) {
        Cancel::cancel(&*self.state);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.state().cancelled
    }

    /// Makes the cancel reach `c` — at once if it came already.
    pub(crate) fn watch(&self, c: Weak<dyn Cancel>) {
        {
            let mut st = self.state();
            if !st.cancelled {
                // Ended attempts leave: the list stays as long as what
                // is in flight at once.
                st.watching.retain(|w| w.strong_count() > 0);
                st.watching.push(c);
                return;
            }
        }
        if let Some(c) = c.upgrade() {
            c.cancel();
        }
    }

    /// A canceller cancelled with this one (not the other way round): a
    /// sub-call's.
    pub(crate) fn child(&self) -> CallCanceller {
        let child = CallCanceller::new();
        let weak: Weak<Mutex<State>> = Arc::downgrade(&child.state);
        self.watch(weak);
        child
    }
}

impl Cancel for Mutex<State> {
    fn cancel(&self) {
        let watching = {
            let mut st = self.lock().unwrap_or_else(|e| e.into_inner());
            if st.cancelled {
                return;
            }
            st.cancelled = true;
            std::mem::take(&mut st.watching)
        };
        // Outside the lock: completing an attempt starts its
        // continuation, and a child cancels its own watchers.
        for w in watching {
            if let Some(c) = w.upgrade() {
                c.cancel();
            }
        }
    }
}

/// The error a cancelled call ends with.
pub(crate) fn cancelled_error() -> RpcError {
    RpcError::new(libc::ECANCELED, "the call was cancelled").into_local()
}

/// Whether `e` is a cancelled attempt's error (this side's `ECANCELED`).
pub(crate) fn is_cancelled(e: &RpcError) -> bool {
    e.code == libc::ECANCELED && e.is_local()
}

/// Whether `cntl`'s call was cancelled.
pub(crate) fn cancelled(cntl: &Controller) -> bool {
    cntl.canceller
        .as_ref()
        .is_some_and(CallCanceller::is_cancelled)
}

/// Makes `cntl`'s canceller, if it has one, reach `c`.
pub(crate) fn watch(cntl: &Controller, c: Weak<dyn Cancel>) {
    if let Some(canceller) = &cntl.canceller {
        canceller.watch(c);
    }
}
