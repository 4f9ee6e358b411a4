//! Mixed fibers/threads with short timeouts sprinkled in: exercises the
//! paths where waiters give up (left-behind waiting bits, reclaimed
//! rendezvous messages, wakes that race timeouts). Checks invariants and
//! that nothing hangs; never asserts on durations.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::{mpsc, Mutex, RwLock, Semaphore};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// xorshift: cheap deterministic per-task randomness.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn micros(r: u64) -> Duration {
    Duration::from_micros(r % 300)
}

/// Runs `work(i)` on `fibers` fibers and `threads` threads, joins all.
fn mixed(rt: &fiber::Runtime, fibers: u64, threads: u64, work: Arc<dyn Fn(u64) + Send + Sync>) {
    let hs: Vec<_> = (0..fibers)
        .map(|i| {
            let w = work.clone();
            rt.spawn(move || w(i))
        })
        .collect();
    let ts: Vec<_> = (0..threads)
        .map(|i| {
            let w = work.clone();
            std::thread::spawn(move || w(1000 + i))
        })
        .collect();
    hs.into_iter().for_each(|h| h.join().unwrap());
    ts.into_iter().for_each(|t| t.join().unwrap());
}

#[test]
fn mutex_with_timeouts() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let m = Arc::new(Mutex::new(0u64));
    let ok = Arc::new(AtomicUsize::new(0));
    let (m2, ok2) = (m.clone(), ok.clone());
    mixed(
        &rt,
        32,
        2,
        Arc::new(move |i| {
            let mut r = rng(i);
            for _ in 0..1000 {
                let g = if r() % 2 == 0 {
                    Some(m2.lock())
                } else {
                    m2.lock_timeout(micros(r()))
                };
                if let Some(mut g) = g {
                    let v = *g;
                    if r() % 8 == 0 {
                        fiber::yield_now();
                    }
                    *g = v + 1;
                    ok2.fetch_add(1, Ordering::Relaxed);
                }
            }
        }),
    );
    assert_eq!(*m.lock() as usize, ok.load(Ordering::Relaxed));
    assert!(!m.is_locked());
}

#[test]
fn rwlock_with_timeouts() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let l = Arc::new(RwLock::new(0u64));
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let writes = Arc::new(AtomicUsize::new(0));
    let (l2, rd, wr, ws) = (l.clone(), readers.clone(), writers.clone(), writes.clone());
    mixed(
        &rt,
        32,
        2,
        Arc::new(move |i| {
            let mut r = rng(i);
            for _ in 0..1000 {
                if r() % 3 == 0 {
                    let g = if r() % 2 == 0 {
                        Some(l2.write())
                    } else {
                        l2.write_timeout(micros(r()))
                    };
                    if let Some(mut g) = g {
                        assert_eq!(wr.fetch_add(1, Ordering::SeqCst), 0);
                        assert_eq!(rd.load(Ordering::SeqCst), 0);
                        *g += 1;
                        ws.fetch_add(1, Ordering::Relaxed);
                        if r() % 4 == 0 {
                            fiber::yield_now();
                        }
                        wr.fetch_sub(1, Ordering::SeqCst);
                    }
                } else {
                    let g = if r() % 2 == 0 {
                        Some(l2.read())
                    } else {
                        l2.read_timeout(micros(r()))
                    };
                    if let Some(g) = g {
                        rd.fetch_add(1, Ordering::SeqCst);
                        assert_eq!(wr.load(Ordering::SeqCst), 0);
                        let _ = *g;
                        if r() % 4 == 0 {
                            fiber::yield_now();
                        }
                        rd.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
        }),
    );
    assert_eq!(*l.read() as usize, writes.load(Ordering::Relaxed));
    // Whatever bits were left behind, the lock is fully usable.
    assert!(l.try_write().is_some());
    assert!(l.try_read().is_some());
}

#[test]
fn semaphore_with_timeouts() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let sem = Arc::new(Semaphore::new(3));
    let inflight = Arc::new(AtomicUsize::new(0));
    let (s2, inf) = (sem.clone(), inflight.clone());
    mixed(
        &rt,
        32,
        2,
        Arc::new(move |i| {
            let mut r = rng(i);
            for _ in 0..1000 {
                let p = if r() % 2 == 0 {
                    Some(s2.acquire())
                } else {
                    s2.acquire_timeout(micros(r()))
                };
                if let Some(p) = p {
                    assert!(inf.fetch_add(1, Ordering::SeqCst) < 3);
                    if r() % 4 == 0 {
                        fiber::yield_now();
                    }
                    inf.fetch_sub(1, Ordering::SeqCst);
                    drop(p);
                }
            }
        }),
    );
    assert_eq!(sem.available_permits(), 3);
}

/// Every message whose send succeeded is received exactly once; none whose
/// send timed out is received.
fn channel_with_timeouts(cap: usize) {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = mpsc::sync_channel::<u64>(cap);
    let sent = Arc::new(Mutex::new(HashSet::new()));
    let failed = Arc::new(Mutex::new(HashSet::new()));
    let consumer = rt.spawn(move || {
        let mut got = Vec::new();
        let mut r = rng(77);
        loop {
            match rx.recv_timeout(micros(r())) {
                Ok(v) => got.push(v),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break got,
            }
        }
    });
    let (s2, f2) = (sent.clone(), failed.clone());
    let tx = Arc::new(Mutex::new(Some(tx)));
    let tx2 = tx.clone();
    mixed(
        &rt,
        8,
        2,
        Arc::new(move |i| {
            let tx = tx2.lock().as_ref().unwrap().clone();
            let mut r = rng(i);
            for k in 0..1000 {
                let v = i << 32 | k;
                let res = if r() % 3 == 0 {
                    tx.send(v).map_err(|_| ())
                } else {
                    tx.send_timeout(v, micros(r())).map_err(|e| {
                        assert!(matches!(e, mpsc::SendTimeoutError::Timeout(x) if x == v));
                    })
                };
                match res {
                    Ok(()) => s2.lock().insert(v),
                    Err(()) => f2.lock().insert(v),
                };
            }
        }),
    );
    tx.lock().take();
    let got = consumer.join().unwrap();
    let got_set: HashSet<u64> = got.iter().copied().collect();
    assert_eq!(got.len(), got_set.len(), "a message was delivered twice");
    let sent = sent.lock();
    assert_eq!(got_set, *sent, "received set != successfully sent set");
    assert!(failed.lock().is_disjoint(&got_set));
}

#[test]
fn rendezvous_channel_with_timeouts() {
    channel_with_timeouts(0);
}

#[test]
fn cap1_channel_with_timeouts() {
    channel_with_timeouts(1);
}

#[test]
fn cap4_channel_with_timeouts() {
    channel_with_timeouts(4);
}
