//! A call waiting for its response: a butex the caller sleeps on and a slot
//! the reader (or `Socket::set_failed`) fills once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fibrpc_fiber::butex::Butex;

use crate::protocol::InputMessage;
use crate::RpcError;

/// See the module docs. Shared by the caller and the socket's pending map.
pub(crate) struct PendingCall {
    /// 0 while waiting, 1 once `outcome` is set.
    done: Butex,
    outcome: Mutex<Option<Result<InputMessage, RpcError>>>,
}

impl PendingCall {
    pub(crate) fn new() -> Arc<PendingCall> {
        Arc::new(PendingCall {
            done: Butex::new(0),
            outcome: Mutex::new(None),
        })
    }

    /// Sets the outcome unless one was set already (the first response
    /// wins: backup requests, a failure racing a response). Returns
    /// whether this call set it.
    pub(crate) fn complete(&self, r: Result<InputMessage, RpcError>) -> bool {
        {
            let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            if o.is_some() {
                return false;
            }
            *o = Some(r);
        }
        self.done.value().store(1, Ordering::Release);
        self.done.wake_all();
        true
    }

    /// Waits until completed or `deadline`; returns whether completed.
    /// The deadline is kept by the timer thread (the butex's timeout).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.done.value().load(Ordering::Acquire) == 1 {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // Interrupted or spurious wakeups: look again.
            let _ = self.done.wait(0, deadline);
        }
    }

    /// Takes the outcome (once).
    pub(crate) fn take(&self) -> Option<Result<InputMessage, RpcError>> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
