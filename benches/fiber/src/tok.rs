//! The cases on tokio (multi-threaded scheduler, 1 or 2 workers).

use crate::cases::{cpu_chunk, start_gate, Case, ChunkTally, IMBALANCED_TASKS};
use crate::harness::Sample;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::yield_now;

/// A 1-worker and a 2-worker multi-thread runtime. The 1-worker one is the
/// multi-thread scheduler too (not `current_thread`), so both columns time
/// the same scheduler code as fibrpc's work-stealing workers.
pub struct Tok {
    rt1: Runtime,
    rt2: Runtime,
}

impl Tok {
    /// Starts both runtimes.
    pub fn new() -> Self {
        let build = |n| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(n)
                .thread_name(format!("tokio{n}w"))
                .enable_time()
                .build()
                .expect("tokio runtime")
        };
        Tok {
            rt1: build(1),
            rt2: build(2),
        }
    }

    /// Runs `case` with size `n`.
    pub fn run(&self, case: Case, n: u64) -> Option<Sample> {
        let rt = if case.one_worker() {
            &self.rt1
        } else {
            &self.rt2
        };
        if case == Case::PingPong2w {
            return Some(ping_pong_cross(rt, n));
        }
        if case == Case::PingPong1wDeep {
            // A future has no stack of frames to return through.
            return None;
        }
        // `block_on` runs its future on *this* thread, not on a worker: run
        // the measured code in a spawned task, like the other runtimes do.
        let task = rt.spawn(async move {
            match case {
                Case::SpawnJoin | Case::SpawnJoin1w => spawn_join(n).await,
                Case::Chained => chained(n).await,
                Case::Yield => yields(n).await,
                Case::Yield2On1w => two_yielders(n).await,
                Case::PingPong1w => ping_pong(n).await,
                Case::PingPong2w | Case::PingPong1wDeep => unreachable!("handled above"),
                Case::MutexUncontended => mutex(n).await,
                Case::StdMutex => std_mutex(n),
                Case::MutexContended => mutex_contended(n).await,
                Case::Channel => channel(n).await,
                Case::SyncChannel => sync_channel(n).await,
                Case::ImbalancedPinned | Case::ImbalancedMigratable => imbalanced(n).await,
            }
        });
        Some(rt.block_on(task).expect("benchmark task"))
    }
}

async fn spawn_join(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        tokio::spawn(async {}).await.expect("empty task");
    }
    Sample::new(t.elapsed(), n)
}

fn chain_step(left: u64, done: oneshot::Sender<()>) {
    tokio::spawn(async move {
        if left == 0 {
            let _ = done.send(());
        } else {
            chain_step(left - 1, done);
        }
    });
}

async fn chained(n: u64) -> Sample {
    let (tx, rx) = oneshot::channel();
    let t = Instant::now();
    chain_step(n - 1, tx);
    rx.await.expect("chain end");
    Sample::new(t.elapsed(), n)
}

async fn yields(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        yield_now().await;
    }
    Sample::new(t.elapsed(), n)
}

async fn two_yielders(n: u64) -> Sample {
    let t = Instant::now();
    let a = tokio::spawn(yields(n));
    let b = tokio::spawn(yields(n));
    a.await.expect("yielder");
    b.await.expect("yielder");
    Sample::new(t.elapsed(), 2 * n)
}

/// Ping-pong with two `Notify`s (a stored permit means no lost wake-up).
async fn ping_pong(n: u64) -> Sample {
    let to_pong = Arc::new(Notify::new());
    let to_ping = Arc::new(Notify::new());
    let pong = {
        let (to_pong, to_ping) = (to_pong.clone(), to_ping.clone());
        tokio::spawn(async move {
            for _ in 0..n {
                to_pong.notified().await;
                to_ping.notify_one();
            }
        })
    };
    let t = Instant::now();
    for _ in 0..n {
        to_pong.notify_one();
        to_ping.notified().await;
    }
    let e = t.elapsed();
    pong.await.expect("pong");
    Sample::new(e, n)
}

/// Cross-worker placement for tokio: ping starts first and spins (blocking
/// its worker) while pong is submitted from outside, so pong starts on the
/// other worker. Tokio tasks migrate freely afterwards (a task woken from a
/// worker goes to that worker's LIFO slot), so this is "what you get".
fn ping_pong_cross(rt: &Runtime, n: u64) -> Sample {
    let to_pong = Arc::new(Notify::new());
    let to_ping = Arc::new(Notify::new());
    let ping_started = Arc::new(AtomicBool::new(false));
    let pong_started = Arc::new(AtomicBool::new(false));
    let ping = {
        let (to_pong, to_ping) = (to_pong.clone(), to_ping.clone());
        let (ping_started, pong_started) = (ping_started.clone(), pong_started.clone());
        rt.spawn(async move {
            let me = std::thread::current().id();
            ping_started.store(true, Ordering::Release);
            let t = Instant::now();
            while !pong_started.load(Ordering::Acquire) && t.elapsed() < Duration::from_secs(2) {
                std::hint::spin_loop();
            }
            let t = Instant::now();
            for _ in 0..n {
                to_pong.notify_one();
                to_ping.notified().await;
            }
            (t.elapsed(), me)
        })
    };
    while !ping_started.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    let pong = rt.spawn(async move {
        let me = std::thread::current().id();
        pong_started.store(true, Ordering::Release);
        for _ in 0..n {
            to_pong.notified().await;
            to_ping.notify_one();
        }
        me
    });
    let (elapsed, ping_tid) = rt.block_on(ping).expect("ping");
    let pong_tid = rt.block_on(pong).expect("pong");
    let s = Sample::new(elapsed, n);
    if ping_tid == pong_tid {
        s.with_note("pong started on ping's worker")
    } else {
        s
    }
}

async fn mutex(n: u64) -> Sample {
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().await += 1;
    }
    Sample::new(t.elapsed(), n)
}

fn std_mutex(n: u64) -> Sample {
    let m = std::sync::Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().expect("unpoisoned") += 1;
    }
    Sample::new(t.elapsed(), n)
}

async fn mutex_contended(n: u64) -> Sample {
    let m = Arc::new(Mutex::new(0u64));
    let gate = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (m, gate) = (m.clone(), gate.clone());
            tokio::spawn(async move {
                let together = start_gate(&gate);
                for _ in 0..n {
                    *m.lock().await += 1;
                }
                together
            })
        })
        .collect();
    let mut together = true;
    for h in hs {
        together &= h.await.expect("incrementer");
    }
    let elapsed = t.elapsed();
    assert_eq!(*m.lock().await, 2 * n);
    let s = Sample::new(elapsed, 2 * n);
    if together {
        s
    } else {
        s.with_note("the two tasks did not run at the same time")
    }
}

async fn channel(n: u64) -> Sample {
    let (tx, mut rx) = mpsc::unbounded_channel::<u64>();
    let t = Instant::now();
    let p = tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).expect("receiver alive");
        }
    });
    for _ in 0..n {
        black_box(rx.recv().await.expect("sender alive"));
    }
    let e = t.elapsed();
    p.await.expect("producer");
    Sample::new(e, n)
}

async fn sync_channel(n: u64) -> Sample {
    let (tx, mut rx) = mpsc::channel::<u64>(128);
    let t = Instant::now();
    let p = tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.expect("receiver alive");
        }
    });
    for _ in 0..n {
        black_box(rx.recv().await.expect("sender alive"));
    }
    let e = t.elapsed();
    p.await.expect("producer");
    Sample::new(e, n)
}

/// Reference for the imbalanced case: 64 tasks spawned from one task; tokio
/// migrates tasks freely, so this is the balanced figure.
async fn imbalanced(n: u64) -> Sample {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Instant::now();
    let hs: Vec<_> = (0..IMBALANCED_TASKS)
        .map(|_| {
            tokio::spawn(async move {
                let mut acc = 0u64;
                let mut tally = ChunkTally::default();
                for _ in 0..n {
                    acc = acc.wrapping_add(cpu_chunk());
                    tally.record();
                    yield_now().await;
                }
                black_box(acc);
                tally
            })
        })
        .collect();
    let mut tallies = Vec::new();
    for h in hs {
        tallies.push(h.await.expect("worker task"));
    }
    Sample::new(t.elapsed(), 1).with_note(ChunkTally::summary(tallies))
}
