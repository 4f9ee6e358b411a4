//! Micro timings of `fibrpc_fiber::sync` (no criterion): ns per operation,
//! median of 5 runs.
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example sync_micro
//! ```
//!
//! - uncontended `Mutex` lock+unlock, on a plain thread and in a fiber
//!   (`std::sync::Mutex` for reference);
//! - ping-pong of two fibers on a 1-worker runtime: one round trip is two
//!   messages and two fiber switches, over `mpsc::channel`, over
//!   `mpsc::sync_channel(1)`, and over bare butexes and `yield_now` for the
//!   runtime's own floor.

use fibrpc_fiber::butex::Butex;
use fibrpc_fiber::sync::{mpsc, Mutex};
use fibrpc_fiber::Runtime;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` (which returns ns/op) `RUNS` times and reports the median.
fn report(name: &str, mut f: impl FnMut() -> f64) {
    let runs: Vec<f64> = (0..RUNS).map(|_| f()).collect();
    let m = median(runs.clone());
    let min = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let all: Vec<String> = runs.iter().map(|x| format!("{x:.1}")).collect();
    // The median is the figure; the minimum helps on a noisy shared host.
    println!(
        "{name:<48} median {m:>7.1} ns/op  min {min:>7.1}  (runs: {})",
        all.join(" ")
    );
}

fn mutex_uncontended(n: u64) -> f64 {
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock() += 1;
    }
    assert_eq!(*m.lock(), n);
    t.elapsed().as_nanos() as f64 / n as f64
}

fn std_mutex_uncontended(n: u64) -> f64 {
    let m = std::sync::Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().unwrap() += 1;
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

const WORK: u64 = 32;

/// Total ns per lock+unlock with `k` contenders (threads, or fibers on a
/// 2-worker runtime) doing `n` each; the critical section is `WORK` dependent increments.
fn mutex_contended(rt: Option<&Runtime>, k: u64, n: u64) -> f64 {
    let m = Arc::new(Mutex::new(0u64));
    let t = Instant::now();
    let work = {
        let m = m.clone();
        move || {
            for _ in 0..n {
                let mut g = black_box(&*m).lock();
                // ~50 ns inside the lock, some work outside: the holder
                // leaves soon, which is when spinning could pay.
                for _ in 0..WORK {
                    *g = black_box(*g).wrapping_add(1);
                }
                drop(g);
                for i in 0..WORK {
                    black_box(i);
                }
            }
        }
    };
    match rt {
        Some(rt) => {
            let hs: Vec<_> = (0..k).map(|_| rt.spawn(work.clone())).collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        }
        None => {
            let hs: Vec<_> = (0..k).map(|_| std::thread::spawn(work.clone())).collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        }
    }
    assert_eq!(*m.lock(), k * n * WORK);
    t.elapsed().as_nanos() as f64 / (k * n) as f64
}

fn channel_ping_pong(rt: &Runtime, n: u64, bounded: bool) -> f64 {
    rt.block_on(move || {
        type Pair = (Box<dyn Fn(u64) + Send>, Box<dyn Fn() -> Option<u64> + Send>);
        fn make(bounded: bool) -> Pair {
            if bounded {
                let (tx, rx) = mpsc::sync_channel(1);
                (
                    Box::new(move |v| tx.send(v).unwrap()),
                    Box::new(move || rx.recv().ok()),
                )
            } else {
                let (tx, rx) = mpsc::channel();
                (
                    Box::new(move |v| tx.send(v).unwrap()),
                    Box::new(move || rx.recv().ok()),
                )
            }
        }
        let (ping_tx, ping_rx) = make(bounded);
        let (pong_tx, pong_rx) = make(bounded);
        let echo = fibrpc_fiber::spawn(move || {
            for _ in 0..n {
                let v = ping_rx().unwrap();
                pong_tx(v + 1);
            }
        });
        // Let the echo fiber start and park first.
        fibrpc_fiber::yield_now();
        let t = Instant::now();
        for i in 0..n {
            ping_tx(i);
            assert_eq!(pong_rx(), Some(i + 1));
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        echo.join().unwrap();
        ns
    })
}

fn butex_ping_pong(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(move || {
        // The value counts half-round trips: even = ping's turn.
        let b = Arc::new((Butex::new(0), Butex::new(0)));
        let b2 = b.clone();
        let echo = fibrpc_fiber::spawn(move || {
            let (ping, pong) = &*b2;
            for i in 0..n as u32 {
                while ping.value().load(Ordering::Acquire) == i {
                    let _ = ping.wait(i, None);
                }
                pong.value().store(i + 1, Ordering::Release);
                pong.wake_one();
            }
        });
        fibrpc_fiber::yield_now();
        let (ping, pong) = &*b;
        let t = Instant::now();
        for i in 0..n as u32 {
            ping.value().store(i + 1, Ordering::Release);
            ping.wake_one();
            while pong.value().load(Ordering::Acquire) == i {
                let _ = pong.wait(i, None);
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        echo.join().unwrap();
        ns
    })
}

/// Two fibers yielding to each other: the scheduler's switch floor (one
/// round trip = two yields).
fn yield_ping_pong(rt: &Runtime, n: u64) -> f64 {
    rt.block_on(move || {
        let other = fibrpc_fiber::spawn(move || {
            for _ in 0..n {
                fibrpc_fiber::yield_now();
            }
        });
        let t = Instant::now();
        for _ in 0..n {
            fibrpc_fiber::yield_now();
        }
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        other.join().unwrap();
        ns
    })
}

fn main() {
    let n = 20_000_000;
    report("Mutex lock+unlock, uncontended, thread", || {
        mutex_uncontended(n)
    });
    report("std::sync::Mutex lock+unlock, thread (ref)", || {
        std_mutex_uncontended(n)
    });
    let rt = Runtime::builder().workers(1).build().unwrap();
    report("Mutex lock+unlock, uncontended, fiber", || {
        rt.block_on(move || mutex_uncontended(n))
    });
    let n = 500_000;
    report("Mutex contended, 2 threads", || mutex_contended(None, 2, n));
    let rt2 = Runtime::builder().workers(2).build().unwrap();
    report("Mutex contended, 4 fibers on 2 workers", || {
        mutex_contended(Some(&rt2), 4, n)
    });
    drop(rt2);
    report("yield_now round trip (2 switches), 1 worker", || {
        yield_ping_pong(&rt, n)
    });
    report("ping-pong round trip, butex, 1 worker", || {
        butex_ping_pong(&rt, n)
    });
    report("ping-pong round trip, channel(), 1 worker", || {
        channel_ping_pong(&rt, n, false)
    });
    report("ping-pong round trip, sync_channel(1), 1 worker", || {
        channel_ping_pong(&rt, n, true)
    });
}
