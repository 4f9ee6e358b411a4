//! `sync::RwLock`: concurrent readers, exclusive writers, writer
//! preference, timeouts.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::{CountdownEvent, RwLock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn readers_hold_the_lock_together() {
    // Each reader takes the lock, then waits until *all* readers hold it:
    // possible only if read locks are shared.
    const N: u32 = 20;
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let l = Arc::new(RwLock::new(5));
    let all_in = Arc::new(CountdownEvent::new(N));
    let hs: Vec<_> = (0..N)
        .map(|_| {
            let (l, all_in) = (l.clone(), all_in.clone());
            rt.spawn(move || {
                let g = l.read();
                all_in.signal(1);
                let together = all_in.wait_timeout(Duration::from_secs(30));
                (*g, together)
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), (5, true));
    }
}

#[test]
fn writers_are_exclusive_fibers_and_threads() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let l = Arc::new(RwLock::new(0u64));
    let readers_in = Arc::new(AtomicUsize::new(0));
    let writers_in = Arc::new(AtomicUsize::new(0));
    let check_write = |readers_in: &AtomicUsize, writers_in: &AtomicUsize| {
        assert_eq!(writers_in.fetch_add(1, Ordering::SeqCst), 0, "two writers");
        assert_eq!(readers_in.load(Ordering::SeqCst), 0, "reader during write");
    };
    let mut fibers = Vec::new();
    for i in 0..40 {
        let (l, r, w) = (l.clone(), readers_in.clone(), writers_in.clone());
        fibers.push(rt.spawn(move || {
            for k in 0..200 {
                if (i + k) % 4 == 0 {
                    let mut g = l.write();
                    check_write(&r, &w);
                    let v = *g;
                    fiber::yield_now();
                    *g = v + 1;
                    w.fetch_sub(1, Ordering::SeqCst);
                } else {
                    let g = l.read();
                    r.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(w.load(Ordering::SeqCst), 0, "writer during read");
                    let _ = *g;
                    fiber::yield_now();
                    r.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }));
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (l, r, w) = (l.clone(), readers_in.clone(), writers_in.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let mut g = l.write();
                    check_write(&r, &w);
                    *g += 1;
                    w.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                    let g = l.read();
                    r.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(w.load(Ordering::SeqCst), 0, "writer during read");
                    r.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
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
    // 40 fibers x 200 ops, every 4th a write; plus 2 x 2000 thread writes.
    assert_eq!(*l.read(), 40 * 200 / 4 + 2 * 2000);
}

#[test]
fn waiting_writer_blocks_new_readers() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let l = Arc::new(RwLock::new(0));
    let r1 = l.read();
    let l2 = l.clone();
    let writer = rt.spawn(move || {
        *l2.write() += 1;
    });
    // Wait until the writer has queued: then a new reader must not get in.
    let mut queued = false;
    for _ in 0..10_000 {
        if l.try_read().is_none() {
            queued = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(queued, "writer never queued (or readers not blocked by it)");
    assert!(l.read_timeout(Duration::from_millis(10)).is_none());
    drop(r1);
    writer.join().unwrap();
    assert_eq!(*l.read(), 1);
}

#[test]
fn read_and_write_timeouts_fire() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let l = Arc::new(RwLock::new(()));
    {
        let _w = l.write();
        assert!(l.read_timeout(Duration::from_millis(10)).is_none());
        assert!(l.write_timeout(Duration::from_millis(10)).is_none());
        let l2 = l.clone();
        let (r, w) = rt.block_on(move || {
            (
                l2.read_timeout(Duration::from_millis(10)).is_none(),
                l2.write_timeout(Duration::from_millis(10)).is_none(),
            )
        });
        assert!(r && w);
    }
    {
        let _r = l.read();
        assert!(l.write_timeout(Duration::from_millis(10)).is_none());
        // The timed-out writer left its waiting bit behind; dropping the
        // read lock runs the wake path, which clears it.
    }
    assert!(l.try_write().is_some());
    let a = l.read();
    let b = l.try_read();
    assert!(b.is_some());
    drop((a, b));
    let mut l = Arc::try_unwrap(l).unwrap();
    *l.get_mut() = ();
    l.into_inner();
}

#[test]
fn write_interruptible_is_interrupted() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let l = Arc::new(RwLock::new(0));
    let r = l.read();
    let l2 = l.clone();
    let h = rt.spawn(move || l2.write_interruptible().map(|_| ()));
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
    drop(r);
    assert!(l.try_write().is_some());
}
