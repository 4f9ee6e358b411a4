//! The Linux futex: the one OS primitive every blocking path ends in when the
//! waiter is a plain thread (or a parked worker).

#[cfg(loom)]
pub(crate) use self::model::{wait, wake};
#[cfg(not(loom))]
use std::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use std::time::Duration;

#[cfg(not(loom))]
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

#[cfg(not(loom))]
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

/// Under loom: a futex modelled by one mutex and condvar per model run. The
/// value check and the sleep are atomic with respect to `wake`, and `wake`
/// returns how many waiters of that word it released (a second wake finds
/// none) — the guarantees the kernel gives, so lost-wakeup bugs show up as
/// deadlocks. Timeouts are not modelled (a timed wait sleeps until woken).
#[cfg(loom)]
mod model {
    use loom::sync::atomic::AtomicU32;
    use loom::sync::{Condvar, Mutex};
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// Per word: (waiters not yet released, release generation).
    type Words = HashMap<usize, (usize, u64)>;

    loom::lazy_static! {
        static ref FUTEX: (Mutex<Words>, Condvar) = (Mutex::new(HashMap::new()), Condvar::new());
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let key = word as *const AtomicU32 as usize;
        let mut g = FUTEX.0.lock().unwrap();
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        let e = g.entry(key).or_insert((0, 0));
        e.0 += 1;
        let gen = e.1;
        while g.get(&key).map(|e| e.1) == Some(gen) {
            g = FUTEX.1.wait(g).unwrap();
        }
    }

    pub(crate) fn wake(word: &AtomicU32, _n: u32) -> usize {
        let key = word as *const AtomicU32 as usize;
        let mut g = FUTEX.0.lock().unwrap();
        let Some(e) = g.get_mut(&key) else { return 0 };
        let n = e.0;
        if n > 0 {
            // Releases every waiter of this word (the runtime only ever has
            // one per word; butex thread waiters each have their own).
            e.0 = 0;
            e.1 += 1;
            FUTEX.1.notify_all();
        }
        n
    }
}
