//! `sync::Semaphore`: limits concurrency, timeouts, release(n).

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::Semaphore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn limits_concurrency_fibers_and_threads() {
    const PERMITS: usize = 3;
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let sem = Arc::new(Semaphore::new(PERMITS as u32));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let work = {
        let (sem, in_flight, max) = (sem.clone(), in_flight.clone(), max.clone());
        move || {
            for _ in 0..50 {
                let _p = sem.acquire();
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                fiber::yield_now();
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
        }
    };
    let fibers: Vec<_> = (0..64)
        .map(|_| {
            let w = work.clone();
            rt.spawn(w)
        })
        .collect();
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(work.clone())).collect();
    for h in fibers {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let max = max.load(Ordering::SeqCst);
    assert!(max <= PERMITS, "max in flight {max} > {PERMITS}");
    assert!(max >= 2, "semaphore never let two in (max {max})");
    assert_eq!(sem.available_permits(), PERMITS as u32);
}

#[test]
fn acquire_timeout_fires_thread_and_fiber() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let sem = Arc::new(Semaphore::new(1));
    let p = sem.acquire();
    assert!(sem.try_acquire().is_none());
    assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
    let s2 = sem.clone();
    assert!(rt.block_on(move || s2.acquire_timeout(Duration::from_millis(10)).is_none()));
    drop(p);
    assert!(sem.acquire_timeout(Duration::from_secs(10)).is_some());
}

#[test]
fn release_n_wakes_n_waiters_and_forget_keeps_permit() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let sem = Arc::new(Semaphore::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..5)
        .map(|_| {
            let (sem, done) = (sem.clone(), done.clone());
            rt.spawn(move || {
                sem.acquire().forget();
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let t = {
        let (sem, done) = (sem.clone(), done.clone());
        std::thread::spawn(move || {
            sem.acquire().forget();
            done.fetch_add(1, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    sem.release(6);
    for h in hs {
        h.join().unwrap();
    }
    t.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 6);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn acquire_interruptible_is_interrupted() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let sem = Arc::new(Semaphore::new(0));
    let s2 = sem.clone();
    let h = rt.spawn(move || s2.acquire_interruptible().map(|p| p.forget()));
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
    sem.release(1);
    assert_eq!(sem.available_permits(), 1);
}
