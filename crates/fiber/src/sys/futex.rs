//! The Linux futex: the one OS primitive every blocking path ends in when the
//! waiter is a plain thread (or a parked worker).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Blocks while `*word == expected`, at most `timeout` (forever if `None`).
/// Returns early on a wake, a signal, or a spurious wakeup: callers re-check.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts;
    let ts_ptr = match timeout {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call; the
    // kernel only reads it. FUTEX_PRIVATE is right: words are never shared
    // across processes. `ts_ptr` is null or points to `ts`, alive here.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes at most `n` threads blocked in [`wait`] on `word`; returns how many.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: FUTEX_WAKE only uses the address as a key; it does not access
    // memory, so any address is fine, and `word` is live anyway.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        )
    };
    r.max(0) as usize
}
