//! [`RoomGate`]: a connection's reader waiting for room under a bound
//! that other fibers free (requests in process, pipelined requests not
//! yet answered).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fibrpc_fiber::butex::Butex;

use super::Socket;

/// Where a reader waits until the fibers holding a bound free room. The
/// bound's counter is the caller's; the gate only makes the wait lose no
/// wakeup, and costs the fibers that free room a load when nobody waits.
#[derive(Debug)]
pub(crate) struct RoomGate {
    /// Bumped to wake the waiting reader.
    freed: Butex,
    /// Whether a reader waits on `freed` (only then is it bumped).
    waiting: AtomicBool,
}

impl Default for RoomGate {
    fn default() -> Self {
        RoomGate {
            freed: Butex::new(0),
            waiting: AtomicBool::new(false),
        }
    }
}

impl RoomGate {
    /// Waits while `full()` holds, or until `sock` fails. `full` must read
    /// the bound's counter with `SeqCst`, and whoever frees room must
    /// change it with `SeqCst` before calling [`freed`](Self::freed).
    pub(crate) fn wait_while(&self, sock: &Socket, full: impl Fn() -> bool) {
        if !full() {
            return;
        }
        while !sock.failed() {
            // All SeqCst: a fiber that frees room and then finds the flag
            // clear ordered its change before our flag, so the look below
            // sees it; one that finds the flag bumps `freed` after its
            // change, so the look sees it or the wait returns at once.
            // The timeout is a backstop (and bounds how late a failure is
            // noticed).
            self.waiting.store(true, Ordering::SeqCst);
            let seen = self.freed.value().load(Ordering::SeqCst);
            if !full() {
                break;
            }
            let _ = self
                .freed
                .wait(seen, Some(Instant::now() + Duration::from_millis(100)));
        }
        self.waiting.store(false, Ordering::Relaxed);
    }

    /// Room was freed (the counter already changed): lets a waiting
    /// reader look again.
    pub(crate) fn freed(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            self.freed.value().fetch_add(1, Ordering::SeqCst);
            self.freed.wake_all();
        }
    }
}
