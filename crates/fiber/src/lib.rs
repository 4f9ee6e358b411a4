//! fibrpc-fiber: an M:N fiber runtime after bRPC's bthread.
//!
//! Fibers are cheap threads with their own stacks, run by a few worker
//! threads (one per core by default). Code in a fiber is plain blocking code:
//! [`sleep`], [`sync::Mutex::lock`], channel receives and `join` suspend the
//! fiber, not the worker. Every primitive also works from ordinary threads.
//!
//! ```
//! use fibrpc_fiber as fiber;
//! use std::time::Duration;
//!
//! let h = fiber::spawn(|| {
//!     // Plain blocking code: sleeping suspends this fiber, not its worker.
//!     fiber::sleep(Duration::from_millis(10)).unwrap();
//!     let (tx, rx) = fiber::sync::mpsc::channel();
//!     let child = fiber::spawn(move || tx.send(21).unwrap());
//!     child.join().unwrap();
//!     rx.recv().unwrap() * 2
//! });
//! assert_eq!(h.join().unwrap(), 42);
//! ```
//!
//! Sockets, pipes and any descriptor work the same way: [`net`] has
//! `std::net`-like types whose reads and writes suspend the fiber, backed by
//! an edge-triggered epoll dispatcher ([`io`]) that the workers poll when
//! they run out of fibers.
//!
//! Vocabulary follows bRPC's bthread: the runtime is `TaskControl`, a
//! worker is a `TaskGroup`, idle workers sleep in `ParkingLot`s, and every
//! blocking primitive waits on a [`butex::Butex`]. Stacks are mapped at a
//! fiber's first run (32 KiB, 1 MiB or 8 MiB, with a guard page; see
//! [`StackClass`]) and pooled, so a warm spawn maps nothing. A stack
//! overflow hits the guard page and aborts the process with a message
//! naming the fiber.
//!
//! # What blocks a worker
//!
//! A worker runs one fiber at a time and switches only when that fiber
//! waits on something of this crate or ends. Code that keeps the OS thread
//! asleep or busy holds the worker, and every other fiber queued there
//! waits (health checks included). What does it, and what to use instead:
//!
//! - `std::thread::sleep`: use [`sleep`] or [`sleep_until`].
//! - `std::sync` locks held long, `std` condition variables and channels
//!   waited on: use [`sync`]'s `Mutex`, `RwLock`, `Condvar`, `Semaphore`,
//!   `mpsc`.
//! - Blocking I/O (`std::net`, `std::fs`, DNS, blocking client
//!   libraries): use [`net`] for sockets and pipes, [`spawn_blocking`] for
//!   the rest.
//! - A long computation or a blocking C call: [`spawn_blocking`], or
//!   [`yield_now`] now and then in a long loop.
//!
//! [`spawn_blocking`] runs a closure on a bounded pool of OS threads
//! ([`MAX_BLOCKING_THREADS`]) while the calling fiber suspends. A worker
//! that runs one fiber for longer than a threshold (100 ms by default;
//! `FIBRPC_BLOCKED_WORKER_MS` or
//! [`RuntimeBuilder::blocked_worker_threshold`]) is reported once per
//! incident as a `tracing` warning, naming the fiber and where it was
//! spawned, and in
//! [`stats`] ([`WorkerStats::blocked_ms`],
//! [`WorkerStats::blocked_incidents`]).
//!
//! ```
//! use std::time::Duration;
//!
//! let h = fibrpc_fiber::spawn(|| {
//!     // Not `std::thread::sleep`: the worker runs other fibers meanwhile.
//!     fibrpc_fiber::sleep(Duration::from_millis(5)).unwrap();
//!     // Blocking code goes to the blocking pool; this fiber suspends.
//!     let len = fibrpc_fiber::spawn_blocking(|| std::fs::read("/proc/self/stat").map(|b| b.len()));
//!     len.join().unwrap().is_ok()
//! });
//! assert!(h.join().unwrap());
//! ```
//!
//! Soundness: a fiber that has started never moves to another worker (so
//! `!Send` state and thread-locals held across a wait stay on their thread);
//! only fibers that have not run yet are stolen. See [`Builder::migratable`]
//! for the `unsafe` opt-out.

// Every module builds under `--cfg loom` too: `loom` swaps loom's atomics
// into the lock-free parts, `sys::futex` and `sys::membarrier` become
// models, and the model checks are one module tree, `loom_tests`
// (`RUSTFLAGS="--cfg loom" cargo test -p fibrpc-fiber --release --lib loom`).
mod block_on;
mod blocking;
pub mod butex;
pub mod fault;
pub mod io;
mod loom;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod net;
mod runtime;
pub mod sync;
mod sys;
pub(crate) mod task;
pub mod timer;

pub use block_on::block_on;
pub use blocking::{
    blocking_threads, spawn_blocking, BlockingHandle, BLOCKING_KEEP_ALIVE, MAX_BLOCKING_THREADS,
};
pub use runtime::task_meta::FiberId;
pub use runtime::{
    coarse_ms, current_worker, fiber_backtrace, fiber_info, flush, has_queued_fibers, list_fibers,
    stats, trim_memory, Builder as RuntimeBuilder, FiberInfo, FiberState, NoBacktrace, Runtime,
    RuntimeStats, StackClass, WorkerStats, DEFAULT_TRIM_INTERVAL, MAX_WORKERS,
};
pub use task::local::LocalKey;
pub use task::{
    current, current_name, interrupt, join_id, sleep, sleep_until, spawn, spawn_urgent, yield_now,
    Builder, Interrupted, JoinError, JoinHandle, NoSuchFiber,
};
