//! `Butex::wake_one` (bRPC's `butex_wake`: a fiber waking a fiber of its own
//! worker runs it first, on the spot) and `wake_one_queued` (the waker goes
//! on), and the wait path where a pinned fiber links itself before
//! switching out, raced against wakers on other threads.

use fiber::butex::Butex;
use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Parks a fiber that, once woken through `b`, runs `then`; returns its
/// handle once it is parked (one worker).
fn parked_then<T: Send + 'static>(
    b: &Arc<Butex>,
    then: impl FnOnce() -> T + Send + 'static,
) -> fiber::JoinHandle<T> {
    let started = Arc::new(AtomicBool::new(false));
    let h = {
        let (b, started) = (b.clone(), started.clone());
        fiber::spawn(move || {
            started.store(true, Ordering::Release);
            while b.value().load(Ordering::Acquire) == 0 {
                let _ = b.wait(0, None);
            }
            then()
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
        let (b, log) = (Arc::new(Butex::new(0)), Arc::<Mutex<Vec<&str>>>::default());
        let h = {
            let log = Arc::clone(&log);
            parked_then(&b, move || log.lock().unwrap().push("woken"))
        };
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

/// One side of a ping-pong (as `side`) that also stops when `stop` is set
/// or after `max` round trips, then unblocks its partner. Returns the
/// round trips it made.
fn play_until_stopped(b: &Butex, stop: &AtomicBool, parity: u32, max: u32) -> u32 {
    let mut i = 0;
    while i < max && !stop.load(Ordering::Relaxed) {
        let mine = 2 * i + parity;
        let v = b.value().load(Ordering::Acquire);
        if v != mine {
            let _ = b.wait(v, None);
            continue;
        }
        b.value().store(mine + 1, Ordering::Release);
        b.wake_one();
        i += 1;
    }
    b.value().fetch_add(1 << 30, Ordering::Release);
    b.wake_all();
    i
}

#[test]
fn a_ping_pong_pair_does_not_starve_the_run_queue() {
    // Woken on the spot, the pair would hand over to each other forever;
    // a waker with other fibers queued must give way after the hand-over.
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let rounds = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let b = Arc::new(Butex::new(0));
        let play = |parity: u32| {
            let (b, stop) = (b.clone(), stop.clone());
            move || play_until_stopped(&b, &stop, parity, 1_000_000)
        };
        let one = fiber::spawn(play(1));
        let zero = fiber::spawn(play(0));
        // Let the pair get going, then queue a fiber behind them.
        fiber::yield_now();
        let stopper = {
            let (stop, b) = (stop.clone(), b.clone());
            fiber::spawn(move || {
                stop.store(true, Ordering::Relaxed);
                // Unblock whichever side is waiting.
                b.value().fetch_add(1 << 30, Ordering::Release);
                b.wake_all();
            })
        };
        stopper.join().unwrap();
        one.join().unwrap().max(zero.join().unwrap())
    });
    assert!(
        rounds < 1_000_000,
        "the third fiber only ran after the pair was done"
    );
}

#[test]
fn a_token_ring_deeper_than_the_nesting_bound() {
    // Each fiber wakes the next on the spot while still running, so the
    // nesting grows along the ring until the bound sends wakes through
    // the scheduler. Every pass must still arrive exactly once.
    const FIBERS: usize = 40;
    const LAPS: u32 = 200;
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let total = rt.block_on(|| {
        // Tokens received, per fiber.
        let inbox: Arc<Vec<Butex>> = Arc::new((0..FIBERS).map(|_| Butex::new(0)).collect());
        let ring: Vec<_> = (0..FIBERS)
            .map(|me| {
                let inbox = inbox.clone();
                fiber::spawn(move || {
                    let (mine, next) = (&inbox[me], &inbox[(me + 1) % FIBERS]);
                    for lap in 0..LAPS {
                        loop {
                            let v = mine.value().load(Ordering::Acquire);
                            if v > lap {
                                break;
                            }
                            let _ = mine.wait(v, None);
                        }
                        next.value().fetch_add(1, Ordering::Release);
                        next.wake_one();
                    }
                    LAPS
                })
            })
            .collect();
        inbox[0].value().fetch_add(1, Ordering::Release);
        inbox[0].wake_one();
        ring.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    assert_eq!(total, FIBERS as u32 * LAPS);
}

#[test]
fn the_woken_fiber_may_yield_exit_or_wake_another_on_the_spot() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let (b, log) = (Arc::new(Butex::new(0)), Arc::<Mutex<Vec<&str>>>::default());
        let second = Arc::new(Butex::new(0));
        // Woken by `outer` while that one runs nested in this fiber.
        let inner = {
            let log = log.clone();
            parked_then(&second, move || log.lock().unwrap().push("inner"))
        };
        let outer = {
            let (second, log) = (second.clone(), log.clone());
            parked_then(&b, move || {
                log.lock().unwrap().push("outer");
                second.value().store(1, Ordering::Release);
                assert_eq!(second.wake_one(), 1);
                fiber::yield_now();
                log.lock().unwrap().push("outer after yield");
                // and exits
            })
        };
        b.value().store(1, Ordering::Release);
        assert_eq!(b.wake_one(), 1);
        log.lock().unwrap().push("main");
        outer.join().unwrap();
        inner.join().unwrap();
        let log = log.lock().unwrap().clone();
        assert_eq!(log[..2], ["outer", "inner"]);
        assert!(log.contains(&"main") && log.contains(&"outer after yield"));
    });
}

/// Uses about `kib` KiB of stack.
fn deep(kib: usize) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = kib as u8;
    let frame = std::hint::black_box(frame);
    if kib <= 1 {
        return frame[0] as u64;
    }
    deep(kib - 1) + frame[0] as u64
}

#[test]
fn scheduler_work_of_a_nested_fiber_stays_off_the_wakers_stack() {
    // The waker has a 32 KiB stack. The fiber it runs on the spot joins a
    // worker-stack child (the join runs it at once, an urgent switch) that
    // needs ~96 KiB: that must run on the worker thread's own stack, not
    // nested on the waker's (it would overflow it and abort the process).
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let sum = rt.block_on(|| {
        let b = Arc::new(Butex::new(0));
        let woken = parked_then(&b, || {
            fiber::Builder::new()
                .stack(fiber::StackClass::Worker)
                .spawn(|| deep(96))
                .unwrap()
                .join()
                .unwrap()
        });
        let waker = {
            let b = b.clone();
            fiber::Builder::new()
                .stack(fiber::StackClass::Small)
                .spawn(move || {
                    b.value().store(1, Ordering::Release);
                    assert_eq!(b.wake_one(), 1);
                })
                .unwrap()
        };
        waker.join().unwrap();
        woken.join().unwrap()
    });
    assert_eq!(sum, (1..=96).sum::<u64>());
}

#[test]
fn a_nested_fiber_that_ends_is_finished_and_the_waker_is_itself_again() {
    fiber::fiber_local!(
        static MINE: std::cell::Cell<u32> = std::cell::Cell::new(0);
    );
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let rt2 = rt.clone();
    rt.block_on(move || {
        let alive_before = rt2.stats().alive();
        let me = fiber::current().unwrap();
        MINE.with(|m| m.set(7));
        let b = Arc::new(Butex::new(0));
        // Detached: its end (result dropped, slot recycled) is the
        // scheduler's work, deferred out of the nested run.
        drop(parked_then(&b, || {
            MINE.with(|m| m.set(99));
            vec![1u8; 100]
        }));
        b.value().store(1, Ordering::Release);
        assert_eq!(b.wake_one(), 1);
        assert_eq!(fiber::current(), Some(me));
        assert_eq!(MINE.with(|m| m.get()), 7);
        fiber::yield_now();
        assert_eq!(rt2.stats().alive(), alive_before);
    });
}

#[test]
fn a_ping_pong_pair_does_not_starve_work_from_other_threads() {
    // Work queued from a plain thread waits in the worker's remote queue,
    // which only the scheduler loop's periodic look reaches.
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let b = Arc::new(Butex::new(0));
    let play = |parity: u32| {
        let (b, stop) = (b.clone(), stop.clone());
        move || play_until_stopped(&b, &stop, parity, 2_000_000)
    };
    let one = rt.spawn(play(1));
    let zero = rt.spawn(play(0));
    // Once the pair is going, stop it from outside the runtime.
    while b.value().load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    let stopper = {
        let stop = stop.clone();
        rt.spawn(move || stop.store(true, Ordering::Relaxed))
    };
    stopper.join().unwrap();
    let rounds = one.join().unwrap().max(zero.join().unwrap());
    assert!(
        rounds < 2_000_000,
        "work from another thread waited for the pair"
    );
}
