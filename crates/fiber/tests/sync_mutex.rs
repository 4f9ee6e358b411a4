//! `sync::Mutex`: exclusion under fibers and threads, timeouts, interrupts.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::Mutex;
use std::sync::Arc;
use std::time::Duration;

fn rt2() -> fiber::Runtime {
    fiber::Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn thousand_fibers_thousand_increments_with_thread_contenders() {
    const FIBERS: u64 = 1000;
    const ITERS: u64 = 1000;
    const THREADS: u64 = 2;
    const THREAD_ITERS: u64 = 100_000;
    let rt = rt2();
    let m = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..THREAD_ITERS {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    let fibers: Vec<_> = (0..FIBERS)
        .map(|f| {
            let m = m.clone();
            rt.spawn(move || {
                for i in 0..ITERS {
                    let mut g = m.lock();
                    // A non-atomic read-modify-write, sometimes with a
                    // switch in the middle: only exclusion keeps it exact.
                    let v = *g;
                    if (i + f) % 97 == 0 {
                        fiber::yield_now();
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    for h in fibers {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), FIBERS * ITERS + THREADS * THREAD_ITERS);
    assert!(!m.is_locked());
}

#[test]
fn try_lock_get_mut_into_inner() {
    let mut m = Mutex::new(vec![1]);
    {
        let g = m.try_lock().expect("free");
        assert!(m.try_lock().is_none());
        assert!(m.is_locked());
        drop(g);
    }
    m.get_mut().push(2);
    assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2], .. }");
    assert_eq!(m.into_inner(), vec![1, 2]);
}

#[test]
fn lock_timeout_fires_on_thread_and_fiber() {
    let rt = rt2();
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    assert!(m.lock_timeout(Duration::from_millis(20)).is_none());
    let m2 = m.clone();
    let in_fiber = rt.block_on(move || m2.lock_timeout(Duration::from_millis(20)).is_none());
    assert!(in_fiber, "fiber lock_timeout should time out");
    drop(g);
    // Free again: a generous timeout succeeds, and the lock still works.
    assert!(m.lock_timeout(Duration::from_secs(10)).is_some());
    let m3 = m.clone();
    assert!(rt.block_on(move || m3.lock_timeout(Duration::from_secs(10)).is_some()));
}

#[test]
fn timed_out_waiter_does_not_break_later_waiters() {
    let rt = rt2();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    // One waiter gives up, another waits for real.
    let m1 = m.clone();
    let quitter = rt.spawn(move || m1.lock_timeout(Duration::from_millis(10)).is_none());
    let m2 = m.clone();
    let stayer = rt.spawn(move || {
        *m2.lock() += 1;
    });
    assert!(quitter.join().unwrap());
    drop(g);
    stayer.join().unwrap();
    assert_eq!(*m.lock(), 1);
}

#[test]
fn lock_interruptible_is_interrupted() {
    let rt = rt2();
    let m = Arc::new(Mutex::new(()));
    let g = m.lock();
    let m2 = m.clone();
    let h = rt.spawn(move || m2.lock_interruptible().map(|_| ()));
    // Give it time to park (the interrupt is sticky either way).
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
    drop(g);
    // Nothing leaked into the lock state.
    assert!(m.try_lock().is_some());
}

#[test]
fn plain_lock_keeps_waiting_and_keeps_the_interrupt() {
    let rt = rt2();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = m.clone();
    let h = rt.spawn(move || {
        *m2.lock() += 1;
        // The swallowed interrupt was re-armed: the next interruptible
        // wait sees it at once.
        fiber::sleep(Duration::from_secs(30))
    });
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!h.is_finished(), "lock() must not give up on an interrupt");
    drop(g);
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
    assert_eq!(*m.lock(), 1);
}

#[test]
fn guard_held_across_fiber_switches() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let m = Arc::new(Mutex::new(Vec::new()));
    let m2 = m.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..10)
            .map(|i| {
                let m = m2.clone();
                fiber::spawn(move || {
                    let mut g = m.lock();
                    g.push(i);
                    fiber::yield_now();
                    g.push(i);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let v = m.lock();
    assert_eq!(v.len(), 20);
    for pair in v.chunks(2) {
        assert_eq!(pair[0], pair[1], "critical sections interleaved: {v:?}");
    }
}
