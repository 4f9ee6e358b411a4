//! fibrpc-fiber: an M:N fiber runtime after bRPC's bthread.
//!
//! Fibers are cheap threads with their own stacks, run by a few worker
//! threads (one per core by default). Code in a fiber is plain blocking code:
//! [`sleep`], [`sync::Mutex::lock`], channel receives and `join` suspend the
//! fiber, not the worker. Every primitive also works from ordinary threads.
//!
//! Soundness: a fiber that has started never moves to another worker (so
//! `!Send` state and thread-locals held across a wait stay on their thread);
//! only fibers that have not run yet are stolen. See [`Builder::migratable`]
//! for the `unsafe` opt-out.

mod block_on;
pub mod butex;
mod loom;
#[cfg(all(test, loom))]
mod loom_tests;
mod runtime;
pub mod sync;
mod sys;
pub(crate) mod task;
pub mod timer;

pub use block_on::block_on;
pub use runtime::task_meta::FiberId;
pub use runtime::{
    flush, stats, Builder as RuntimeBuilder, Runtime, RuntimeStats, StackClass, WorkerStats,
};
pub use task::local::LocalKey;
pub use task::{
    current, current_name, interrupt, join_id, sleep, sleep_until, spawn, spawn_urgent, yield_now,
    Builder, Interrupted, JoinError, JoinHandle, NoSuchFiber,
};
