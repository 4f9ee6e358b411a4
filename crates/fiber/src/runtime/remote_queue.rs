//! bRPC's remote queue: tasks submitted by threads that are not workers.
//!
//! Bounded and locked, as in bRPC, because a non-worker submitter is rare
//! and slow anyway. Unlike bRPC, a full queue never makes the submitter spin
//! and sleep ("_rq is full"): the task overflows into the runtime's global,
//! unbounded injector instead (see `TaskControl::push_remote`).

use crate::loom::{AtomicUsize, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

/// A bounded FIFO (of tasks, in the runtime) guarded by a mutex, with a lock-free emptiness check.
pub(crate) struct RemoteQueue<T> {
    items: Mutex<VecDeque<T>>,
    len: AtomicUsize,
    capacity: usize,
}

impl<T> RemoteQueue<T> {
    /// An empty queue holding at most `capacity` tasks.
    pub(crate) fn new(capacity: usize) -> Self {
        RemoteQueue {
            items: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            len: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Pushes `task`, or hands it back when the queue is full.
    pub(crate) fn push(&self, task: T) -> Result<(), T> {
        let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            return Err(task);
        }
        q.push_back(task);
        self.len.store(q.len(), Ordering::Release);
        Ok(())
    }

    /// Whether the queue looks empty (a racy hint).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }

    /// Pops the oldest task, if any (cheap when empty: no lock taken).
    pub(crate) fn pop(&self) -> Option<T> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let t = q.pop_front();
        self.len.store(q.len(), Ordering::Release);
        t
    }
}
