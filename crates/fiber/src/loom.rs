//! Swaps in `loom`'s model-checked primitives under `cfg(loom)` (as tokio
//! does), for the lock-free parts: the butex, the parking lot, the remote
//! queue. Everything else keeps std's.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;

/// Busy-wait hint. Under loom a spinning thread must yield so the model
/// can schedule the thread it waits for.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives up the CPU (OS thread yield; a model yield under loom).
#[inline]
pub(crate) fn thread_yield() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}
