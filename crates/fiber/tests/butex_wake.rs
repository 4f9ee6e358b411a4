//! `Butex::wake_one` (bRPC's `butex_wake`: a fiber waking a fiber of its own
//! worker yields to it) and `wake_one_queued` (the waker goes on), and the
//! wait path where a pinned fiber links itself before switching out, raced
//! against wakers on other threads.

use fiber::butex::Butex;
use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A fiber waiting on `b` (value 0) that logs "woken" when it returns;
/// returns once it is parked (one worker: it ran until it blocked).
fn park_a_waiter(b: &Arc<Butex>, log: &Arc<Mutex<Vec<&'static str>>>) -> fiber::JoinHandle<()> {
    let started = Arc::new(AtomicBool::new(false));
    let h = {
        let (b, log, started) = (b.clone(), log.clone(), started.clone());
        fiber::spawn(move || {
            started.store(true, Ordering::Release);
            while b.value().load(Ordering::Acquire) == 0 {
                let _ = b.wait(0, None);
            }
            log.lock().unwrap().push("woken");
        })
    };
    while !started.load(Ordering::Acquire) {
        fiber::yield_now();
    }
    h
}

#[test]
fn wake_one_switches_to_a_waiter_of_the_same_worker() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let order = rt.block_on(|| {
        let (b, log) = (Arc::new(Butex::new(0)), Arc::default());
        let h = park_a_waiter(&b, &log);
        b.value().store(1, Ordering::Release);
        assert_eq!(b.wake_one(), 1);
        log.lock().unwrap().push("waker");
        h.join().unwrap();
        let v = log.lock().unwrap().clone();
        v
    });
    assert_eq!(order, ["woken", "waker"]);
}

#[test]
fn wake_one_queued_lets_the_waker_go_on() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let order = rt.block_on(|| {
        let (b, log) = (Arc::new(Butex::new(0)), Arc::default());
        let h = park_a_waiter(&b, &log);
        b.value().store(1, Ordering::Release);
        assert_eq!(b.wake_one_queued(), 1);
        log.lock().unwrap().push("waker");
        h.join().unwrap();
        let v = log.lock().unwrap().clone();
        v
    });
    assert_eq!(order, ["waker", "woken"]);
}

/// Ping-pong through one butex whose value counts half-trips: `odd` moves
/// it from even to odd, the other side back.
fn side(b: &Butex, rounds: u32, odd: bool) {
    for i in 0..rounds {
        let (want, next) = if odd {
            (2 * i, 2 * i + 1)
        } else {
            (2 * i + 1, 2 * i + 2)
        };
        loop {
            let v = b.value().load(Ordering::Acquire);
            if v == want {
                break;
            }
            let _ = b.wait(v, None);
        }
        b.value().store(next, Ordering::Release);
        b.wake_one();
    }
}

#[test]
fn ping_pong_between_two_fibers_of_one_worker() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let b = Arc::new(Butex::new(0));
    let other = {
        let b = b.clone();
        rt.spawn(move || side(&b, 20_000, false))
    };
    let b2 = b.clone();
    rt.block_on(move || side(&b2, 20_000, true));
    other.join().unwrap();
    assert_eq!(b.value().load(Ordering::Relaxed), 40_000);
}

#[test]
fn ping_pong_between_a_fiber_and_a_thread() {
    // The thread wakes the fiber while it may be between linking itself
    // and switching out; it must neither be lost nor run twice.
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let b = Arc::new(Butex::new(0));
    let f = {
        let b = b.clone();
        rt.spawn(move || side(&b, 50_000, false))
    };
    side(&b, 50_000, true);
    f.join().unwrap();
    assert_eq!(b.value().load(Ordering::Relaxed), 100_000);
}

#[test]
fn ping_pong_with_a_migratable_fiber() {
    // A migratable waiter is linked by the scheduler after it switched out
    // and is queued, never switched to.
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let b = Arc::new(Butex::new(0));
    let m = {
        let b = b.clone();
        // SAFETY: the fiber holds only an `Arc<Butex>` across its waits:
        // nothing tied to its OS thread.
        unsafe { fiber::Builder::new().migratable() }
            .spawn_on(&rt, move || side(&b, 20_000, false))
            .unwrap()
    };
    let b2 = b.clone();
    rt.block_on(move || side(&b2, 20_000, true));
    m.join().unwrap();
    assert_eq!(b.value().load(Ordering::Relaxed), 40_000);
}
