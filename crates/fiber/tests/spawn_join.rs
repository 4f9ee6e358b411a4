//! Spawning, joining, yielding, panics, ids.

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn spawn_join_from_thread() {
    let h = fiber::spawn(|| 6 * 7);
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn spawn_join_from_fiber() {
    let h = fiber::spawn(|| {
        let inner: Vec<_> = (0..100u64).map(|i| fiber::spawn(move || i * 2)).collect();
        inner.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(h.join().unwrap(), 9900);
}

#[test]
fn panic_is_caught_and_returned() {
    let h = fiber::spawn(|| -> u32 { panic!("boom {}", 7) });
    let e = h.join().unwrap_err();
    assert!(e.is_panic());
    assert_eq!(e.panic_message(), Some("boom 7"));
    // The runtime survives.
    assert_eq!(fiber::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn yield_interleaves_fibers_on_one_worker() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let l2 = log.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let log = l2.clone();
                fiber::spawn(move || {
                    for r in 0..3 {
                        log.lock().unwrap().push((r, i));
                        fiber::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    // Round-robin: every fiber finishes round r before anyone starts r+2.
    for (k, &(r, _)) in log.iter().enumerate() {
        assert!(r <= k / 3 + 1, "fiber ran ahead: {log:?}");
    }
    assert_eq!(log.len(), 9);
}

#[test]
fn a_million_fibers_spawned_and_joined() {
    // In batches, so a million JoinHandles are not all alive at once.
    let n = 1_000_000;
    let batch = 20_000;
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    fiber::spawn(move || {
        for _ in 0..n / batch {
            let hs: Vec<_> = (0..batch)
                .map(|_| {
                    let c = c.clone();
                    fiber::Builder::new()
                        .stack(fiber::StackClass::Small)
                        .spawn(move || {
                            c.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap()
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        }
    })
    .join()
    .unwrap();
    assert_eq!(count.load(Ordering::Relaxed), n);
}

#[test]
fn sleep_suspends_only_the_fiber() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let t0 = Instant::now();
    let slept = rt.block_on(|| {
        let hs: Vec<_> = (0..100)
            .map(|_| fiber::spawn(|| fiber::sleep(Duration::from_millis(50))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).all(|r| r.is_ok())
    });
    assert!(slept);
    // All hundred slept concurrently on one worker: each slept >= 50 ms.
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

#[test]
fn ids_are_versioned() {
    let h = fiber::spawn(|| fiber::current().unwrap());
    let id = h.id();
    assert_eq!(h.join().unwrap(), id);
    assert_eq!(fiber::interrupt(id), Err(fiber::NoSuchFiber(id)));
    assert!(fiber::join_id(id).is_err());
    assert!(fiber::current().is_none());
}

#[test]
fn interrupt_wakes_a_sleeping_fiber() {
    let h = fiber::spawn(|| fiber::sleep(Duration::from_secs(3600)));
    let id = h.id();
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(id).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
}

#[test]
fn spawn_urgent_runs_first() {
    let order = fiber::spawn(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = log.clone();
        let h = fiber::spawn_urgent(move || l.lock().unwrap().push("child"));
        log.lock().unwrap().push("parent");
        h.join().unwrap();
        let v = log.lock().unwrap().clone();
        v
    })
    .join()
    .unwrap();
    assert_eq!(order, vec!["child", "parent"]);
}

#[test]
fn nosignal_spawns_run_after_flush() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..100)
            .map(|_| {
                let c = c.clone();
                fiber::Builder::new()
                    .nosignal()
                    .spawn(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    })
                    .unwrap()
            })
            .collect();
        fiber::flush();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), 100);
}

#[test]
fn has_queued_fibers_sees_the_fibers_waiting_on_this_worker() {
    assert!(!fiber::has_queued_fibers(), "a plain thread has no queue");
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let (alone, behind, after) = rt.block_on(|| {
        let alone = fiber::has_queued_fibers();
        let h = fiber::Builder::new().nosignal().spawn(|| ()).unwrap();
        let behind = fiber::has_queued_fibers();
        h.join().unwrap();
        (alone, behind, fiber::has_queued_fibers())
    });
    assert!(!alone, "nothing else was queued");
    assert!(behind, "the spawned fiber waits on our only worker");
    assert!(!after, "it ran and ended");
}

#[test]
fn quiet_spawns_run_behind_the_fibers_ready_here() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let order = rt.block_on(|| {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (l1, l2) = (log.clone(), log.clone());
        let first = fiber::Builder::new()
            .nosignal()
            .spawn(move || l1.lock().unwrap().push("ready first"))
            .unwrap();
        let quiet = fiber::Builder::new()
            .quiet()
            .spawn(move || l2.lock().unwrap().push("quiet"))
            .unwrap();
        assert!(fiber::has_queued_fibers(), "both wait on our only worker");
        quiet.join().unwrap();
        first.join().unwrap();
        let order = log.lock().unwrap().clone();
        order
    });
    assert_eq!(order, ["ready first", "quiet"]);
}

#[test]
fn a_quiet_spawn_runs_elsewhere_while_its_worker_blocks_its_thread() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let _h = fiber::Builder::new()
            .quiet()
            .spawn(move || tx.send(()).unwrap())
            .unwrap();
        // This worker's thread waits here, so the fiber can only run on
        // the other worker, which no signal asked to look.
        rx.recv().unwrap();
    });
}
