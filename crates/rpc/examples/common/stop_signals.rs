//! SIGINT/SIGTERM taken synchronously with `sigtimedwait`, so stopping
//! runs as plain code in `main` (no async-signal-safety concerns). Shared
//! by the server examples.

use std::time::{Duration, Instant};

pub fn block() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; the signal numbers are valid;
    // pthread_sigmask only changes this thread's mask (inherited by the
    // threads created later).
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Returns on SIGINT/SIGTERM or when `limit` has passed.
pub fn wait(set: &libc::sigset_t, limit: Option<Duration>) {
    let end = limit.map(|d| Instant::now() + d);
    loop {
        let left = match end {
            Some(e) => e.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if end.is_some() && left.is_zero() {
            return;
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `set` and `ts` are valid for the call; a null info
        // pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
        if sig > 0 {
            return;
        }
    }
}
