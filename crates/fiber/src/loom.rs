//! Swaps in `loom`'s model-checked primitives under `cfg(loom)` (as tokio
//! does), for the lock-free parts: the butex, the parking lot, the remote
//! queue. Everything else keeps std's.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
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

/// Declares a `const fn` that is a plain `fn` under loom (loom's atomics
/// cannot be built in const context), as tokio's `cfg_not_loom!` does.
macro_rules! const_fn_unless_loom {
    ($(#[$m:meta])* $vis:vis const fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn_unless_loom;
