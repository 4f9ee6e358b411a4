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

/// On one worker: parks a waiter, wakes it with `wake`, and returns the
/// order in which the waiter and the waker went on.
fn order_after(wake: fn(&Butex) -> usize) -> Vec<&'static str> {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(move || {
        let (b, log) = (Arc::new(Butex::new(0)), Arc::default());
        let h = park_a_waiter(&b, &log);
        b.value().store(1, Ordering::Release);
        assert_eq!(wake(&b), 1);
        log.lock().unwrap().push("waker");
        h.join().unwrap();
        let order = log.lock().unwrap().clone();
        order
    })
}

#[test]
fn wake_one_switches_to_a_waiter_of_the_same_worker() {
    assert_eq!(order_after(Butex::wake_one), ["woken", "waker"]);
}

#[test]
fn wake_one_queued_lets_the_waker_go_on() {
    assert_eq!(order_after(Butex::wake_one_queued), ["waker", "woken"]);
}

/// One side of a ping-pong through one butex whose value counts half
/// trips: this side moves it on from the values `2 * i + parity`.
fn side(b: &Butex, rounds: u32, parity: u32) {
    for i in 0..rounds {
        let mine = 2 * i + parity;
        loop {
            let v = b.value().load(Ordering::Acquire);
            if v == mine {
                break;
            }
            let _ = b.wait(v, None);
        }
        b.value().store(mine + 1, Ordering::Release);
        b.wake_one();
    }
}

#[test]
fn ping_pong_between_two_fibers_of_one_worker() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let b = Arc::new(Butex::new(0));
    let other = {
        let b = b.clone();
        rt.spawn(move || side(&b, 20_000, 1))
    };
    let b2 = b.clone();
    rt.block_on(move || side(&b2, 20_000, 0));
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
        rt.spawn(move || side(&b, 50_000, 1))
    };
    side(&b, 50_000, 0);
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
            .spawn_on(&rt, move || side(&b, 20_000, 1))
            .unwrap()
    };
    let b2 = b.clone();
    rt.block_on(move || side(&b2, 20_000, 0));
    m.join().unwrap();
    assert_eq!(b.value().load(Ordering::Relaxed), 40_000);
}
