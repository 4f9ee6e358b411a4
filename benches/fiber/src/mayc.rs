//! The cases on may (stackful coroutines, work-stealing scheduler).
//!
//! may's scheduler is process-global and its worker count is fixed at first
//! use, so this process runs may with 2 workers and the 1-worker cases run
//! in a child process (see `main.rs`, `--may-child`).

use crate::cases::{cpu_chunk, start_gate, Case, ChunkTally, IMBALANCED_TASKS};
use crate::harness::Sample;
use may::sync::{mpsc, Blocker, Mutex};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Configures may's global scheduler. Must run before any other may call.
/// Worker pinning to cores is turned off: neither tokio nor fibrpc pins, and
/// on a 2-core machine shared with builds a pinned worker cannot dodge a busy
/// core.
pub fn configure(workers: usize) {
    may::config().set_workers(workers).set_worker_pin(false);
}

/// Spawns a may coroutine.
fn go<F, T>(f: F) -> may::coroutine::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: may's contract: (1) a coroutine may move between worker
    // threads at any switch point, so it must not hold thread-local
    // references across one; the bodies here only read `thread::current()`
    // (copying the id out) and use may's own primitives; (2) the default
    // 32 KiB stack must suffice: the bodies are shallow loops that do not
    // recurse (one `format!` of a short note needs far less than that).
    unsafe { may::coroutine::spawn(f) }
}

/// Runs `f` in a coroutine and waits for it from this (plain) thread.
fn in_co<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    go(f).join().expect("benchmark coroutine panicked")
}

/// Runs `case` with size `n` on the global may scheduler.
pub fn run(case: Case, n: u64) -> Option<Sample> {
    Some(match case {
        Case::SpawnJoin | Case::SpawnJoin1w => in_co(move || spawn_join(n)),
        Case::Chained => in_co(move || chained(n)),
        Case::Yield => in_co(move || yields(n)),
        Case::Yield2On1w => in_co(move || two_yielders(n)),
        Case::PingPong1w => in_co(move || ping_pong(n, false, park)),
        Case::PingPong1wDeep => in_co(move || ping_pong(n, false, park_one_call_down)),
        Case::PingPong2w => in_co(move || ping_pong(n, true, park)),
        Case::MutexUncontended => in_co(move || mutex(n)),
        Case::StdMutex => in_co(move || std_mutex(n)),
        Case::MutexContended => in_co(move || mutex_contended(n)),
        Case::Channel => in_co(move || channel(n)),
        // may has no bounded mpsc channel.
        Case::SyncChannel => return None,
        Case::ImbalancedPinned | Case::ImbalancedMigratable => in_co(move || imbalanced(n)),
    })
}

fn spawn_join(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        go(|| ()).join().expect("empty coroutine");
    }
    Sample::new(t.elapsed(), n)
}

fn chain_step(left: u64, done: mpsc::Sender<()>) {
    drop(go(move || {
        if left == 0 {
            let _ = done.send(());
        } else {
            chain_step(left - 1, done);
        }
    }));
}

fn chained(n: u64) -> Sample {
    let (tx, rx) = mpsc::channel();
    let t = Instant::now();
    chain_step(n - 1, tx);
    rx.recv().expect("chain end");
    Sample::new(t.elapsed(), n)
}

fn yields(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        may::coroutine::yield_now();
    }
    Sample::new(t.elapsed(), n)
}

fn two_yielders(n: u64) -> Sample {
    let t = Instant::now();
    let a = go(move || yields(n));
    let b = go(move || yields(n));
    a.join().expect("yielder");
    b.join().expect("yielder");
    Sample::new(t.elapsed(), 2 * n)
}

/// Parks in the caller's frame (inlined into the loop).
#[inline(always)]
fn park(b: &Blocker) {
    b.park(None).expect("park");
}

/// Parks one function call below the caller (`PingPong1wDeep`).
#[inline(never)]
fn park_one_call_down(b: &Blocker) {
    b.park(None).expect("park");
}

/// Ping-pong with two `Blocker`s (permit semantics: an unpark before the
/// park is not lost). `cross`: ping spins until pong started, so pong was
/// started by the other worker; may migrates coroutines afterwards as it
/// likes, so this is "what you get".
/// `park` is generic (inlinable), not a `fn` pointer.
fn ping_pong<P>(n: u64, cross: bool, park: P) -> Sample
where
    P: Fn(&Blocker) + Copy + Send + 'static,
{
    // Created in a coroutine: a Blocker made on a plain thread parks the
    // thread instead.
    let to_pong = Arc::new(Blocker::new(false));
    let to_ping = Arc::new(Blocker::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let pong = {
        let (to_pong, to_ping, started) = (to_pong.clone(), to_ping.clone(), started.clone());
        go(move || {
            let me = thread::current().id();
            started.store(true, Ordering::Release);
            for _ in 0..n {
                park(&to_pong);
                to_ping.unpark();
            }
            me
        })
    };
    let me: ThreadId = thread::current().id();
    let mut placed = true;
    if cross {
        let t = Instant::now();
        while !started.load(Ordering::Acquire) {
            if t.elapsed() > Duration::from_secs(2) {
                placed = false;
                break;
            }
            std::hint::spin_loop();
        }
    }
    let t = Instant::now();
    for _ in 0..n {
        to_pong.unpark();
        park(&to_ping);
    }
    let e = t.elapsed();
    let pong_tid = pong.join().expect("pong");
    let s = Sample::new(e, n);
    if cross && (!placed || pong_tid == me) {
        s.with_note("pong was not placed on the other worker")
    } else {
        s
    }
}

fn mutex(n: u64) -> Sample {
    let m = Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().expect("unpoisoned") += 1;
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

fn mutex_contended(n: u64) -> Sample {
    let m = Arc::new(Mutex::new(0u64));
    let gate = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (m, gate) = (m.clone(), gate.clone());
            go(move || {
                let together = start_gate(&gate);
                for _ in 0..n {
                    *m.lock().expect("unpoisoned") += 1;
                }
                together
            })
        })
        .collect();
    let together = hs.into_iter().all(|h| h.join().expect("incrementer"));
    let elapsed = t.elapsed();
    assert_eq!(*m.lock().expect("unpoisoned"), 2 * n);
    let s = Sample::new(elapsed, 2 * n);
    if together {
        s
    } else {
        s.with_note("the two tasks did not run at the same time")
    }
}

fn channel(n: u64) -> Sample {
    let (tx, rx) = mpsc::channel::<u64>();
    let t = Instant::now();
    let p = go(move || {
        for i in 0..n {
            tx.send(i).expect("receiver alive");
        }
    });
    for _ in 0..n {
        black_box(rx.recv().expect("sender alive"));
    }
    let e = t.elapsed();
    p.join().expect("producer");
    Sample::new(e, n)
}

/// Reference for the imbalanced case: 64 coroutines spawned from one; may
/// steals and migrates freely.
fn imbalanced(n: u64) -> Sample {
    may::coroutine::sleep(Duration::from_millis(20));
    let t = Instant::now();
    let hs: Vec<_> = (0..IMBALANCED_TASKS)
        .map(|_| {
            go(move || {
                let mut acc = 0u64;
                let mut tally = ChunkTally::default();
                for _ in 0..n {
                    acc = acc.wrapping_add(cpu_chunk());
                    tally.record();
                    may::coroutine::yield_now();
                }
                black_box(acc);
                tally
            })
        })
        .collect();
    let tallies: Vec<ChunkTally> = hs
        .into_iter()
        .map(|h| h.join().expect("worker coroutine"))
        .collect();
    Sample::new(t.elapsed(), 1).with_note(ChunkTally::summary(tallies))
}
