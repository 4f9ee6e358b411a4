//! `spawn_blocking` and the blocked-worker monitor.

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_fiber_awaiting_a_blocking_job_leaves_its_worker_to_the_others() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let waiting = Arc::new(AtomicBool::new(false));
    let (p, w) = (progress.clone(), waiting.clone());
    let waiter = rt.spawn(move || {
        let t0 = Instant::now();
        let in_job = p.clone();
        let job = fiber::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            // Then until the other fibers are done (however loaded the
            // machine): they can only progress if this fiber's wait left
            // the worker to them.
            let deadline = Instant::now() + Duration::from_secs(10);
            while in_job.load(Ordering::SeqCst) < 500 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            "done"
        });
        w.store(true, Ordering::SeqCst);
        let r = job.join().unwrap();
        (r, t0.elapsed(), p.load(Ordering::SeqCst))
    });
    while !waiting.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let others: Vec<_> = (0..100)
        .map(|_| {
            let p = progress.clone();
            rt.spawn(move || {
                for _ in 0..5 {
                    p.fetch_add(1, Ordering::SeqCst);
                    fiber::sleep(Duration::from_millis(10)).unwrap();
                }
            })
        })
        .collect();
    let (r, took, seen) = waiter.join().unwrap();
    assert_eq!(r, "done");
    assert!(took >= Duration::from_millis(200), "took {took:?}");
    // All 100 fibers ran their 5 rounds on the only worker while the job
    // ran.
    assert_eq!(seen, 500, "progress while the job ran");
    for h in others {
        h.join().unwrap();
    }
}

#[test]
fn a_panic_in_a_blocking_job_comes_back_on_join() {
    let h = fiber::spawn(|| {
        fiber::spawn_blocking(|| -> u32 { panic!("blocking boom") })
            .join()
            .unwrap_err()
    });
    let e = h.join().unwrap();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("blocking boom"));
    // And from a plain thread, outside any runtime.
    let e = fiber::spawn_blocking(|| -> u32 { panic!("again") })
        .join()
        .unwrap_err();
    assert_eq!(e.panic_message(), Some("again"));
}

#[test]
fn spawn_blocking_from_a_plain_thread_blocks_the_thread() {
    let t0 = Instant::now();
    let h = fiber::spawn_blocking(|| {
        std::thread::sleep(Duration::from_millis(30));
        5
    });
    assert_eq!(h.join().unwrap(), 5);
    assert!(t0.elapsed() >= Duration::from_millis(30));
    assert!(fiber::blocking_threads() <= fiber::MAX_BLOCKING_THREADS);
}

#[test]
fn many_blocking_jobs_stay_within_the_thread_bound() {
    let handles: Vec<_> = (0..64u64)
        .map(|i| {
            fiber::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(5));
                i
            })
        })
        .collect();
    assert!(fiber::blocking_threads() <= fiber::MAX_BLOCKING_THREADS);
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, (0..64).sum());
}

#[test]
fn a_worker_blocked_by_a_std_sleep_is_reported() {
    let rt = fiber::Runtime::builder()
        .workers(1)
        .blocked_worker_threshold(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let before = rt.stats().total().blocked_incidents;
    assert_eq!(before, 0);
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = fiber::Builder::new()
        .name("sleeper")
        .spawn_on(&rt, move || {
            s.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300))
        })
        .unwrap();
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let t0 = Instant::now();
    let mut most = 0;
    while t0.elapsed() < Duration::from_millis(280) && most <= 100 {
        most = most.max(rt.stats().workers[0].blocked_ms);
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().unwrap();
    assert!(most > 100, "blocked_ms seen: {most}");
    assert_eq!(rt.stats().total().blocked_incidents, 1);
    // Once the fiber switched out, the worker is no longer blocked.
    let t1 = Instant::now();
    while rt.stats().workers[0].blocked_ms != 0 {
        assert!(t1.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_runtime_without_detection_reports_nothing() {
    let rt = fiber::Runtime::builder()
        .workers(1)
        .blocked_worker_threshold(None)
        .build()
        .unwrap();
    rt.block_on(|| std::thread::sleep(Duration::from_millis(150)));
    let s = rt.stats().total();
    assert_eq!((s.blocked_incidents, s.blocked_ms), (0, 0));
}
