//! The soundness rule: a fiber that started never changes OS thread.

use fibrpc_fiber as fiber;
use std::time::Duration;

#[test]
fn started_fibers_stay_on_their_worker() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    // Spawned from this (non-worker) thread: they land on random workers'
    // remote queues, so both workers run some and each steals from the other.
    let moved = {
        let hs: Vec<_> = (0..200)
            .map(|i| {
                rt.spawn(move || {
                    let home = std::thread::current().id();
                    let lock = fiber::sync::Mutex::new(0);
                    let mut moved = 0;
                    for k in 0..50 {
                        match (i + k) % 3 {
                            0 => fiber::yield_now(),
                            1 => fiber::sleep(Duration::from_micros(50)).unwrap(),
                            _ => {
                                let (tx, rx) = fiber::sync::mpsc::channel();
                                let _ = fiber::spawn(move || tx.send(()).unwrap());
                                *lock.lock() += 1;
                                rx.recv().unwrap();
                            }
                        }
                        if std::thread::current().id() != home {
                            moved += 1;
                        }
                    }
                    moved
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    };
    assert_eq!(moved, 0);
    // Which worker ran what depends on timing; show it for the record.
    eprintln!("{:?}", rt.stats().workers);
}

#[test]
fn migratable_fibers_still_run_correctly() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let total = rt.block_on(|| {
        let hs: Vec<_> = (0..100u64)
            .map(|i| {
                // SAFETY: the closure holds nothing thread-bound across its
                // yields and sleeps (plain integers only).
                unsafe { fiber::Builder::new().migratable() }
                    .spawn(move || {
                        let mut acc = 0;
                        for k in 0..20 {
                            acc += i * k;
                            if k % 2 == 0 {
                                fiber::yield_now();
                            } else {
                                fiber::sleep(Duration::from_micros(20)).unwrap();
                            }
                        }
                        acc
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, (0..100u64).sum::<u64>() * (0..20u64).sum::<u64>());
}

/// Long-lived fibers spawned by one fiber end up spread over the workers:
/// since started fibers never move, where they first run is balanced by
/// how many fibers each worker already holds.
#[test]
fn long_lived_fibers_are_spread_over_workers() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let gate = std::sync::Arc::new(fiber::sync::CountdownEvent::new(40));
    let g = gate.clone();
    let parked = rt.spawn(move || {
        let (tx, rx) = fiber::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(fiber::sync::Mutex::new(rx));
        let hs: Vec<_> = (0..40)
            .map(|_| {
                let (rx, g) = (rx.clone(), g.clone());
                fiber::spawn(move || {
                    g.signal(1);
                    let _ = rx.lock().recv(); // long-lived: blocks until told
                })
            })
            .collect();
        g.wait();
        let stats = fiber::stats();
        release_rx.recv().unwrap();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        stats
    });
    gate.wait();
    std::thread::sleep(Duration::from_millis(20));
    release_tx.send(()).unwrap();
    let stats = parked.join().unwrap();
    let pinned: Vec<u64> = stats.workers.iter().map(|w| w.pinned).collect();
    assert_eq!(
        pinned.iter().sum::<u64>(),
        41,
        "40 fibers + the spawner: {pinned:?}"
    );
    assert!(pinned.iter().all(|&p| p >= 10), "unbalanced: {pinned:?}");
}
