//! `sync::CountdownEvent` (bRPC's).

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::CountdownEvent;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn waits_for_all_signals_from_fibers_and_threads() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let ev = Arc::new(CountdownEvent::new(100));
    let work = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let (ev, work) = (ev.clone(), work.clone());
        if i % 10 == 0 {
            std::thread::spawn(move || {
                work.fetch_add(1, Ordering::Relaxed);
                ev.signal(1);
            });
        } else {
            drop(rt.spawn(move || {
                work.fetch_add(1, Ordering::Relaxed);
                ev.signal(1);
            }));
        }
    }
    // Waiters: this thread and a fiber.
    let ev2 = ev.clone();
    let w2 = work.clone();
    let h = rt.spawn(move || {
        ev2.wait();
        w2.load(Ordering::Relaxed)
    });
    ev.wait();
    assert_eq!(work.load(Ordering::Relaxed), 100);
    assert_eq!(h.join().unwrap(), 100);
    assert_eq!(ev.count(), 0);
}

#[test]
fn timed_wait_fires_and_add_count_reset() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let ev = Arc::new(CountdownEvent::new(2));
    assert!(!ev.wait_timeout(Duration::from_millis(10)));
    assert!(!ev.timed_wait(Instant::now() + Duration::from_millis(10)));
    let e2 = ev.clone();
    assert!(!rt.block_on(move || e2.wait_timeout(Duration::from_millis(10))));
    ev.signal(1);
    ev.add_count(2);
    assert_eq!(ev.count(), 3);
    ev.signal(5); // saturates at zero
    assert_eq!(ev.count(), 0);
    assert!(ev.wait_timeout(Duration::from_millis(10)));
    ev.reset(1);
    assert!(!ev.wait_timeout(Duration::from_millis(10)));
    let e3 = ev.clone();
    let h = rt.spawn(move || e3.wait());
    std::thread::sleep(Duration::from_millis(10));
    ev.signal(1);
    h.join().unwrap();
    let e4 = ev.clone();
    ev.reset(1);
    let h = rt.spawn(move || e4.wait_interruptible());
    std::thread::sleep(Duration::from_millis(10));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
}
