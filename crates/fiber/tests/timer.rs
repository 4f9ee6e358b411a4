//! Behaviour of the timer thread. No timed assertions: only "not before the
//! deadline" and "eventually, within a generous bound".

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use fibrpc_fiber::timer::{self, CancelResult, TimerId, TimerOptions, TimerThread};

const PATIENCE: Duration = Duration::from_secs(10);

fn private() -> TimerThread {
    TimerThread::new(TimerOptions::default()).expect("spawn timer thread")
}

#[test]
fn fires_not_before_deadline() {
    let (tx, rx) = mpsc::channel();
    let deadline = Instant::now() + Duration::from_millis(20);
    timer::add(deadline, move || tx.send(Instant::now()).unwrap());
    let fired = rx.recv_timeout(PATIENCE).expect("timer fired");
    assert!(fired >= deadline);
}

#[test]
fn many_timers_fire_in_deadline_order() {
    let t = private();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let base = Instant::now() + Duration::from_millis(50);
    const N: u64 = 200;
    // Add in a scrambled order; deadlines 100 us apart.
    for k in 0..N {
        let i = (k * 37) % N;
        let order = order.clone();
        let tx = tx.clone();
        t.add(base + Duration::from_micros(100 * i), move || {
            order.lock().unwrap().push(i);
            tx.send(()).unwrap();
        });
    }
    for _ in 0..N {
        rx.recv_timeout(PATIENCE).expect("all timers fire");
    }
    assert_eq!(*order.lock().unwrap(), (0..N).collect::<Vec<_>>());
    let s = t.stats();
    assert_eq!((s.added, s.ran, s.cancelled, s.scheduled), (N, N, 0, 0));
}

#[test]
fn cancel_before_fire() {
    let t = private();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let id = t.add_after(Duration::from_millis(30), move || {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(t.cancel(id), CancelResult::Cancelled);
    assert_eq!(t.cancel(id), CancelResult::NotFound);
    // The callback was dropped at once (it held a clone of `hits`).
    assert_eq!(Arc::strong_count(&hits), 1);
    // A later timer fires; by then the cancelled one would have too.
    let (tx, rx) = mpsc::channel();
    t.add_after(Duration::from_millis(60), move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let s = t.stats();
    assert_eq!((s.added, s.ran, s.cancelled), (2, 1, 1));
}

#[test]
fn stale_and_invalid_ids_are_not_found() {
    let t = private();
    let (tx, rx) = mpsc::channel();
    let id = t.add_after(Duration::ZERO, move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE).unwrap();
    // Ran (or is finishing): never Cancelled.
    assert_ne!(t.cancel(id), CancelResult::Cancelled);
    // Reuse the slot many times; the old id must never cancel a newcomer.
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let a = t.add_after(Duration::from_secs(60), || {});
        assert_eq!(t.cancel(a), CancelResult::Cancelled);
        assert_eq!(t.cancel(a), CancelResult::NotFound);
        ids.push(a);
    }
    let live = t.add_after(Duration::from_secs(60), || {});
    for a in ids {
        assert_eq!(t.cancel(a), CancelResult::NotFound);
    }
    assert_eq!(t.cancel(TimerId::INVALID), CancelResult::NotFound);
    assert_eq!(
        t.cancel(TimerId::from_u64(u64::MAX)),
        CancelResult::NotFound
    );
    assert_eq!(t.cancel(live), CancelResult::Cancelled);
}

#[test]
fn past_deadlines_run_promptly() {
    let t = private();
    let (tx, rx) = mpsc::channel();
    // A far-future timer makes the thread sleep long; past ones must wake it.
    t.add_after(Duration::from_secs(3600), || {});
    let past = Instant::now() - Duration::from_secs(1);
    for i in 0..10 {
        let tx = tx.clone();
        t.add(past, move || tx.send(i).unwrap());
    }
    let mut got: Vec<i32> = (0..10)
        .map(|_| rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn earlier_add_wakes_a_sleeping_thread() {
    let t = private();
    t.add_after(Duration::from_secs(3600), || {});
    std::thread::sleep(Duration::from_millis(20)); // let it go to sleep
    let (tx, rx) = mpsc::channel();
    t.add_after(Duration::from_millis(5), move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE)
        .expect("early timer fires despite a long sleep");
}

#[test]
fn hundred_thousand_timers() {
    let t = private();
    let hits = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    const N: usize = 100_000;
    let mut cancelled = 0;
    let start = Instant::now();
    for i in 0..N {
        let hits = hits.clone();
        let tx = tx.clone();
        let id = t.add(
            start + Duration::from_micros((i % 1000) as u64 * 50),
            move || {
                if hits.fetch_add(1, Ordering::SeqCst) + 1 == N / 2 {
                    tx.send(()).unwrap();
                }
            },
        );
        // Cancel every other one; some may already have run.
        if i % 2 == 1 && t.cancel(id) == CancelResult::Cancelled {
            cancelled += 1;
        }
    }
    drop(tx);
    // Wait until everything not cancelled ran.
    let deadline = Instant::now() + PATIENCE;
    while hits.load(Ordering::SeqCst) + cancelled < N {
        assert!(Instant::now() < deadline, "timers did not all fire");
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = t.stats();
    assert_eq!(s.added, N as u64);
    assert_eq!(s.ran + s.cancelled, N as u64);
    assert_eq!(s.cancelled, cancelled as u64);
    assert_eq!(s.scheduled, 0);
    drop(rx);
}

#[test]
fn cancel_races_with_fire_from_many_threads() {
    let t = Arc::new(private());
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    let ran = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let (t, ran, barrier) = (t.clone(), ran.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut counts = [0usize; 3];
                for i in 0..PER_THREAD {
                    let r = ran.clone();
                    // Deadlines now or a few microseconds ahead: cancel
                    // lands before, during or after the run.
                    let delay = Duration::from_micros(((i + k) % 8) as u64);
                    let id = t.add_after(delay, move || {
                        r.fetch_add(1, Ordering::SeqCst);
                    });
                    if i % 3 == 0 {
                        std::hint::spin_loop();
                    }
                    let c = t.cancel(id);
                    counts[c as usize] += 1;
                    // A second cancel never succeeds.
                    assert_ne!(t.cancel(id), CancelResult::Cancelled);
                }
                counts
            })
        })
        .collect();
    let mut cancelled = 0;
    for h in handles {
        cancelled += h.join().unwrap()[CancelResult::Cancelled as usize];
    }
    let total = THREADS * PER_THREAD;
    let deadline = Instant::now() + PATIENCE;
    // Every timer either ran exactly once or was cancelled, never both.
    while ran.load(Ordering::SeqCst) + cancelled < total {
        assert!(Instant::now() < deadline, "timers lost");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ran.load(Ordering::SeqCst) + cancelled, total);
    let s = t.stats();
    assert_eq!(s.cancelled as usize, cancelled);
    assert_eq!(s.ran as usize, total - cancelled);
}

#[test]
fn cancel_while_running_reports_running() {
    let t = Arc::new(private());
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let id = t.add_after(Duration::ZERO, move || {
        started_tx.send(()).unwrap();
        release_rx.recv_timeout(PATIENCE).unwrap();
        done_tx.send(()).unwrap();
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(t.cancel(id), CancelResult::Running);
    release_tx.send(()).unwrap();
    done_rx.recv_timeout(PATIENCE).unwrap();
    // Once it finished the id is stale.
    let deadline = Instant::now() + PATIENCE;
    while t.cancel(id) == CancelResult::Running {
        assert!(Instant::now() < deadline);
        std::thread::yield_now();
    }
    assert_eq!(t.cancel(id), CancelResult::NotFound);
}

#[test]
fn callback_can_add_and_cancel_timers() {
    let t = Arc::new(private());
    let (tx, rx) = mpsc::channel();
    let t2 = t.clone();
    t.add_after(Duration::ZERO, move || {
        let doomed = t2.add_after(Duration::from_millis(1), || unreachable!());
        assert_eq!(t2.cancel(doomed), CancelResult::Cancelled);
        t2.add_after(Duration::from_millis(1), move || tx.send(()).unwrap());
    });
    rx.recv_timeout(PATIENCE).unwrap();
}

#[test]
fn last_handle_dropped_inside_own_callback_stops_the_thread() {
    let t = Arc::new(private());
    let token = Arc::new(());
    let tk = token.clone();
    t.add_after(Duration::from_secs(3600), move || drop(tk));
    let t2 = t.clone();
    t.add_after(Duration::from_millis(1), move || drop(t2));
    // Now the callback holds the last handle: dropping it on the timer
    // thread must stop the thread (not wait for itself), which drops the
    // pending far-future callback and its token.
    drop(t);
    let deadline = Instant::now() + PATIENCE;
    while Arc::strong_count(&token) > 1 {
        assert!(Instant::now() < deadline, "timer thread did not stop");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn panicking_callback_does_not_kill_the_thread() {
    let t = private();
    t.add_after(Duration::ZERO, || panic!("boom (expected by the test)"));
    let (tx, rx) = mpsc::channel();
    t.add_after(Duration::from_millis(5), move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE)
        .expect("thread survived the panic");
    let s = t.stats();
    assert_eq!(s.panicked, 1);
    assert_eq!(s.ran, 2);
}

#[test]
fn stop_and_join_drops_pending_and_refuses_adds() {
    let t = private();
    let token = Arc::new(());
    for i in 0..100u64 {
        let token = token.clone();
        t.add_after(Duration::from_secs(3600 + i), move || drop(token));
    }
    let (tx, rx) = mpsc::channel();
    t.add_after(Duration::ZERO, move || tx.send(()).unwrap());
    rx.recv_timeout(PATIENCE).unwrap();
    t.stop_and_join();
    t.stop_and_join(); // idempotent
    assert_eq!(Arc::strong_count(&token), 1, "pending callbacks dropped");
    let token2 = token.clone();
    let id = t.add_after(Duration::ZERO, move || drop(token2));
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "refused add drops its callback"
    );
    assert_eq!(t.cancel(id), CancelResult::NotFound);
    let s = t.stats();
    assert_eq!((s.ran, s.cancelled, s.scheduled), (1, 100, 0));
}

#[test]
fn drop_stops_the_thread() {
    let token = Arc::new(());
    {
        let t = private();
        let tk = token.clone();
        t.add_after(Duration::from_secs(3600), move || drop(tk));
    }
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn large_closures_work() {
    let t = private();
    let (tx, rx) = mpsc::channel();
    let payload = [3u8; 256];
    t.add_after(Duration::from_millis(1), move || {
        tx.send(payload.iter().map(|&b| b as u32).sum::<u32>())
            .unwrap()
    });
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), 768);
}

#[test]
fn global_stats_count() {
    let before = timer::stats();
    let id = timer::add_after(Duration::from_secs(60), || {});
    assert_eq!(timer::cancel(id), CancelResult::Cancelled);
    let after = timer::stats();
    assert!(after.added > before.added);
    assert!(after.cancelled > before.cancelled);
}

#[test]
fn steady_add_cancel_reuses_slots_and_discards_entries() {
    let t = private();
    let far = Instant::now() + Duration::from_secs(3600);
    const N: u64 = 4_000_000;
    for _ in 0..N {
        let id = t.add(far, || {});
        assert_eq!(t.cancel(id), CancelResult::Cancelled);
    }
    let s = t.stats();
    assert_eq!((s.added, s.cancelled, s.scheduled), (N, N, 0));
    // One adding thread, LIFO free list: the first chunk is never exhausted.
    assert!(s.slots <= 1024, "slots allocated: {}", s.slots);
    // Cancelled entries are discarded by the timer thread (a crowded bucket
    // wakes it) instead of piling up: well under one per cancelled timer.
    let deadline = Instant::now() + PATIENCE;
    while t.stats().queued > 20_000 {
        assert!(Instant::now() < deadline, "queued: {}", t.stats().queued);
        std::thread::sleep(Duration::from_millis(5));
    }
}
