//! The live fibers, listed from any thread (bRPC's `/bthreads`).
//!
//! No registry is kept on the spawn path: fiber control blocks live in a
//! slab that is never freed (`task_meta`), and a slot holds a live fiber
//! exactly while its spawn site is set (published at spawn, cleared when
//! the fiber ends). A listing walks the slots handed out so far and reads,
//! per live slot, what other threads may read already: the version (the
//! fiber's id), name and spawn site, the worker it is pinned to, whether
//! a waiter node is published (it waits) and since when, and which fiber
//! each worker runs now. The cost is on the reader: one pass over the
//! slots ever used, a few relaxed loads each.
//!
//! A listing is a snapshot of moving state. A fiber may end, or change
//! state, while it is read; a slot whose version moved during the read is
//! left out (its fiber ended), so a listed fiber did exist with the
//! reported id, and the state is one it was in during the listing.

use super::blocked;
use super::task_meta::{FiberId, Slab, TaskMeta, TaskRef, NO_HOME};
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What a listed fiber was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiberState {
    /// Spawned, waiting for its first run (in a run queue).
    NotStarted,
    /// Ready to run again, in its worker's queues.
    Ready,
    /// Running on a worker now.
    Running,
    /// Waiting (a lock, a channel, a sleep, I/O, a join: every wait of
    /// this crate is a butex wait).
    Suspended,
}

impl FiberState {
    /// A short lowercase name (`"not_started"`, `"ready"`, `"running"`,
    /// `"suspended"`).
    pub fn as_str(self) -> &'static str {
        match self {
            FiberState::NotStarted => "not_started",
            FiberState::Ready => "ready",
            FiberState::Running => "running",
            FiberState::Suspended => "suspended",
        }
    }
}

/// One live fiber as a listing saw it.
#[derive(Debug, Clone)]
pub struct FiberInfo {
    /// Its id.
    pub id: FiberId,
    /// Its name ([`Builder::name`](crate::Builder::name)), if it has one.
    pub name: Option<Arc<str>>,
    /// Where it was spawned: the caller of `spawn` (`file:line:col`), which
    /// names the code it runs.
    pub spawned_at: Option<&'static Location<'static>>,
    /// What it was doing.
    pub state: FiberState,
    /// The worker (index in its runtime) it started on and stays on;
    /// `None` before its first run.
    pub worker: Option<usize>,
    /// For a suspended fiber: how long its wait has lasted so far (to
    /// within the blocked-worker monitor's period, 50 ms, and never less
    /// than the truth).
    pub suspended_for: Option<Duration>,
}

/// The live fibers of every runtime, at most `max` of them (in slot
/// order), and how many were live in all. A snapshot: see the module docs.
pub fn list_fibers(max: usize) -> (Vec<FiberInfo>, usize) {
    let slab = Slab::global();
    let running = running_now();
    let now_ms = blocked::now_ns() / 1_000_000;
    let mut out = Vec::new();
    let mut total = 0;
    for slot in 0..slab.allocated() {
        let Some(meta) = slab.get(slot) else {
            continue;
        };
        if let Some(info) = read(meta, &running, now_ms) {
            total += 1;
            if out.len() < max {
                out.push(info);
            }
        }
    }
    (out, total)
}

/// The fiber `id`, if it is alive.
pub fn fiber_info(id: FiberId) -> Option<FiberInfo> {
    let meta = Slab::global().get(id.slot())?;
    let info = read(meta, &running_now(), blocked::now_ns() / 1_000_000)?;
    (info.id == id).then_some(info)
}

/// The fibers the workers of every runtime run now.
fn running_now() -> Vec<TaskRef> {
    let controls = super::CONTROLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut v = Vec::new();
    for c in controls {
        for i in 0..c.nworkers() {
            v.extend(c.group(i).running());
        }
    }
    v
}

/// What `meta` holds, if a fiber lives there for the whole read.
fn read(meta: TaskRef, running: &[TaskRef], now_ms: u64) -> Option<FiberInfo> {
    if !meta.diag.live() {
        return None;
    }
    let id = meta.id();
    let name = meta.name();
    let spawned_at = meta.diag.spawned_at();
    let home = meta.home.load(Ordering::Relaxed);
    let waiting = meta.current_waiter.is_published();
    let parked = meta.diag.parked_ms();
    let on_cpu = running.iter().any(|r| std::ptr::eq(*r, meta as &TaskMeta));
    // The fiber ended (and maybe another took the slot) meanwhile.
    if !meta.diag.live() || meta.id() != id {
        return None;
    }
    let state = if on_cpu {
        FiberState::Running
    } else if waiting {
        FiberState::Suspended
    } else if home == NO_HOME {
        FiberState::NotStarted
    } else {
        FiberState::Ready
    };
    Some(FiberInfo {
        id,
        name,
        spawned_at,
        state,
        worker: (home != NO_HOME).then_some(home as usize),
        suspended_for: (state == FiberState::Suspended)
            .then(|| Duration::from_millis(now_ms.saturating_sub(parked))),
    })
}
