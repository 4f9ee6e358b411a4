//! An asymmetric fence pair over Linux's `membarrier(2)`: [`light`] costs
//! the hot side nothing but a compiler fence, [`heavy`] makes the rare side
//! pay (an IPI to every CPU running one of our threads, a few µs).
//!
//! Two threads that each store one word and then load the other's (Dekker:
//! "I am leaving" / "I am about to look") need a StoreLoad fence on both
//! sides, or each may read the other's old value. On x86 that fence is a
//! locked instruction, and right after a fiber switch, with the switch's
//! register saves still in the store buffer, one cost 20 ns of a 73 ns
//! same-worker ping-pong. `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`
//! runs a full fence on every running thread of the process before it
//! returns (a descheduled thread passed one when it switched out), so
//! together with a compiler fence on the other side the pair orders like
//! two full fences.
//!
//! Where the kernel lacks the command (before 4.14) or a sandbox forbids
//! the call, [`init`] leaves both sides on real fences. The mode is decided
//! once, in [`init`], which every runtime calls before its first fiber can
//! run: a fence pair must never mix modes.

#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};

/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (linux/membarrier.h; not in `libc`).
#[cfg(not(loom))]
const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
/// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
#[cfg(not(loom))]
const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether `heavy` issues the syscall (and `light` may skip its fence).
#[cfg(not(loom))]
static EXPEDITED: AtomicBool = AtomicBool::new(false);

/// Picks the mode, once per process. Must run before any thread can call
/// `light` or `heavy` (a runtime calls it before starting its workers;
/// both are only reached from fibers and for fibers).
pub(crate) fn init() {
    #[cfg(not(loom))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: a plain syscall with integer arguments; it touches
            // no memory of ours.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    CMD_REGISTER_PRIVATE_EXPEDITED,
                    0 as libc::c_uint,
                )
            };
            // `Once` orders this store before every caller that returns
            // from `init`, and those start the threads that read it.
            EXPEDITED.store(r == 0, Ordering::Release);
        });
    }
}

/// The hot side's fence: orders this thread's earlier stores before its
/// later loads against a thread that calls [`heavy`].
#[inline(always)]
pub(crate) fn light() {
    #[cfg(not(loom))]
    {
        if EXPEDITED.load(Ordering::Acquire) {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
    #[cfg(loom)]
    crate::loom::fence(std::sync::atomic::Ordering::SeqCst);
}

/// Whether the pair runs on `membarrier` (so [`light`] is a compiler
/// fence only). A protocol whose hot side uses a bare compiler fence
/// instead of [`light`] is sound only in this mode.
#[cfg(not(loom))]
pub(crate) fn expedited() -> bool {
    init();
    EXPEDITED.load(Ordering::Acquire)
}

/// Under loom: never (the model runs the pair on real fences).
#[cfg(loom)]
pub(crate) fn expedited() -> bool {
    false
}

/// The rare side's fence: after it returns, every other thread of the
/// process has passed a full fence since it was called.
pub(crate) fn heavy() {
    #[cfg(not(loom))]
    {
        // A thread that never built a runtime (an interrupter) sees the
        // mode its fibers' workers use: `Once` orders it for us.
        init();
        std::sync::atomic::fence(Ordering::SeqCst);
        if EXPEDITED.load(Ordering::Acquire) {
            let expedited = || {
                // SAFETY: as in `init`.
                unsafe {
                    libc::syscall(
                        libc::SYS_membarrier,
                        CMD_PRIVATE_EXPEDITED,
                        0 as libc::c_uint,
                    )
                }
            };
            if expedited() != 0 {
                // A forked child inherits `EXPEDITED` but not the
                // registration (EPERM). Register this process and retry.
                // SAFETY: as in `init`.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_membarrier,
                        CMD_REGISTER_PRIVATE_EXPEDITED,
                        0 as libc::c_uint,
                    )
                };
                assert!(
                    r == 0 && expedited() == 0,
                    "membarrier(PRIVATE_EXPEDITED) failed after registration: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    #[cfg(loom)]
    crate::loom::fence(std::sync::atomic::Ordering::SeqCst);
}
