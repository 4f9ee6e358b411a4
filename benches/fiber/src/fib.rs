//! The cases on fibrpc's fiber runtime.

#[cfg(feature = "sync")]
use crate::cases::start_gate;
use crate::cases::{cpu_chunk, Case, ChunkTally, IMBALANCED_TASKS};
use crate::harness::Sample;
use fibrpc_fiber::butex::Butex;
use fibrpc_fiber::{spawn, yield_now, Builder, Runtime};
use std::hint::black_box;
#[cfg(feature = "sync")]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// A 1-worker and a 2-worker runtime, built once and reused by every run.
pub struct Fib {
    rt1: Runtime,
    rt2: Runtime,
}

impl Fib {
    /// Starts both runtimes.
    pub fn new() -> Self {
        let build = |n| {
            Runtime::builder()
                .workers(n)
                .thread_name(format!("fib{n}w"))
                .build()
                .expect("fibrpc runtime")
        };
        Fib {
            rt1: build(1),
            rt2: build(2),
        }
    }

    /// Runs `case` with size `n`; `None` if fibrpc has no such primitive in
    /// this build (the `sync` feature is off).
    pub fn run(&self, case: Case, n: u64) -> Option<Sample> {
        let rt = if case.one_worker() {
            &self.rt1
        } else {
            &self.rt2
        };
        let before = rt.stats().total();
        let sample = self.run_on(rt, case, n)?;
        let after = rt.stats().total();
        // Scheduler counters explain most of the variance between runs:
        // a park or a signal is a futex syscall (microseconds on a VM).
        let per_op = |a: u64, b: u64| (a - b) as f64 / sample.ops.max(1) as f64;
        let counters = format!(
            "parks/op {:.3}, signals/op {:.3}, steals/op {:.3}",
            per_op(after.parks, before.parks),
            per_op(after.signals, before.signals),
            per_op(after.steals, before.steals)
        );
        let note = match &sample.note {
            Some(n) => format!("{n}; {counters}"),
            None => counters,
        };
        Some(sample.with_note(note))
    }

    fn run_on(&self, rt: &Runtime, case: Case, n: u64) -> Option<Sample> {
        match case {
            Case::SpawnJoin | Case::SpawnJoin1w => Some(rt.block_on(move || spawn_join(n))),
            Case::Chained => Some(rt.block_on(move || chained(n))),
            Case::Yield => Some(rt.block_on(move || yields(n))),
            Case::Yield2On1w => Some(rt.block_on(move || two_yielders(n))),
            Case::PingPong1w => Some(rt.block_on(move || ping_pong(n, false, wait_until))),
            Case::PingPong1wDeep => {
                Some(rt.block_on(move || ping_pong(n, false, wait_one_call_down)))
            }
            Case::PingPong2w => Some(rt.block_on(move || ping_pong(n, true, wait_until))),
            Case::StdMutex => Some(rt.block_on(move || std_mutex(n))),
            Case::MutexUncontended | Case::MutexContended | Case::Channel | Case::SyncChannel => {
                sync_cases::run(rt, case, n)
            }
            Case::ImbalancedPinned => Some(rt.block_on(move || imbalanced(n, false))),
            Case::ImbalancedMigratable => Some(rt.block_on(move || imbalanced(n, true))),
        }
    }
}

fn spawn_join(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        spawn(|| ()).join().expect("empty fiber cannot panic");
    }
    Sample::new(t.elapsed(), n)
}

/// Fiber `left` of the chain: spawns the next one, or signals the end.
fn chain_step(left: u64, done: Arc<Butex>) {
    if left == 0 {
        done.value().store(1, Ordering::Release);
        done.wake_one();
    } else {
        // Detached: the chain is observed through `done`, not by joining.
        drop(spawn(move || chain_step(left - 1, done)));
    }
}

fn chained(n: u64) -> Sample {
    let done = Arc::new(Butex::new(0));
    let t = Instant::now();
    chain_step(n, done.clone());
    wait_until(&done, 1);
    Sample::new(t.elapsed(), n)
}

fn yields(n: u64) -> Sample {
    let t = Instant::now();
    for _ in 0..n {
        yield_now();
    }
    Sample::new(t.elapsed(), n)
}

fn two_yielders(n: u64) -> Sample {
    let t = Instant::now();
    let hs: Vec<_> = (0..2).map(|_| spawn(move || yields(n))).collect();
    for h in hs {
        h.join().expect("yielder");
    }
    Sample::new(t.elapsed(), 2 * n)
}

/// Blocks the calling fiber until the butex holds `target`.
/// Waits in the caller's frame: inlined, like may's `park` called in its
/// loop. A fiber that, once resumed, returns through frames it entered
/// before it switched out pays mispredicted returns (the CPU's return
/// stack holds the other context's addresses); `PingPong1wDeep` measures
/// that shape.
#[inline(always)]
fn wait_until(b: &Butex, target: u32) {
    loop {
        let v = b.value().load(Ordering::Acquire);
        if v == target {
            return;
        }
        // Spurious returns and WouldBlock just loop: the value decides.
        let _ = b.wait(v, None);
    }
}

/// Spins (without yielding, so this worker stays busy) until `flag` is set
/// or `limit` passes. Returns whether it was set.
fn spin_until(flag: &AtomicBool, limit: Duration) -> bool {
    let t = Instant::now();
    while !flag.load(Ordering::Acquire) {
        if t.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// [`wait_until`] one function call below the caller (`PingPong1wDeep`).
#[inline(never)]
fn wait_one_call_down(b: &Butex, target: u32) {
    wait_until(b, target);
}

/// Ping-pong through one butex whose value counts the half-trips: ping
/// stores odd values and waits for the next even one, pong the reverse.
///
/// `cross`: the caller (ping) spins without yielding until pong has
/// started, so pong can only have been started by the *other* worker (it is
/// stolen before its first run); from then on both are pinned, and every
/// wake-up crosses workers.
/// `wait_until` is a generic (a function item, statically dispatched and
/// inlinable), not a `fn` pointer, which no compiler inlines.
fn ping_pong<W>(n: u64, cross: bool, wait_until: W) -> Sample
where
    W: Fn(&Butex, u32) + Copy + Send + 'static,
{
    let b = Arc::new(Butex::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let pong_tid: Arc<Mutex<Option<ThreadId>>> = Arc::default();
    let pong = {
        let (b, started, pong_tid) = (b.clone(), started.clone(), pong_tid.clone());
        spawn(move || {
            *pong_tid.lock().expect("tid") = Some(thread::current().id());
            started.store(true, Ordering::Release);
            for i in 0..n {
                let i = i as u32;
                wait_until(&b, i.wrapping_mul(2).wrapping_add(1));
                b.value()
                    .store(i.wrapping_mul(2).wrapping_add(2), Ordering::Release);
                b.wake_one();
            }
        })
    };
    let mut note = None;
    if cross {
        let ok = spin_until(&started, Duration::from_secs(2));
        let same = *pong_tid.lock().expect("tid") == Some(thread::current().id());
        if !ok || same {
            note = Some("pong was not placed on the other worker".to_string());
        }
    }
    let t = Instant::now();
    for i in 0..n {
        let i = i as u32;
        b.value()
            .store(i.wrapping_mul(2).wrapping_add(1), Ordering::Release);
        b.wake_one();
        wait_until(&b, i.wrapping_mul(2).wrapping_add(2));
    }
    let elapsed = t.elapsed();
    pong.join().expect("pong");
    let s = Sample::new(elapsed, n);
    match note {
        Some(m) => s.with_note(m),
        None => s,
    }
}

fn std_mutex(n: u64) -> Sample {
    let m = std::sync::Mutex::new(0u64);
    let t = Instant::now();
    for _ in 0..n {
        *black_box(&m).lock().expect("unpoisoned") += 1;
    }
    Sample::new(t.elapsed(), n)
}

/// The imbalanced load: what pinning started fibers costs.
///
/// Setup: the driver fiber first sleeps 20 ms so the other worker has
/// surely finished its idle spin and parked. It then spawns 64 fibers with
/// NOSIGNAL and never calls `flush`, so nobody wakes the parked worker: all
/// 64 start on the driver's worker (we count how many did). Each runs `n`
/// chunks of ~30 µs CPU work with `yield_now` between chunks.
///
/// - Pinned (the default): a started fiber always resumes on its worker and
///   a yield requeues it on the unstealable resume queue, so the second
///   worker never gets any of them: ~2x the balanced time. This is the worst
///   case of the soundness rule; spawning normally (signalled) lets the
///   idle worker steal fibers before they start.
/// - Migratable: a yield requeues the fiber on the stealable deque and
///   signals, so the second worker wakes and takes half the load.
///
/// Wall time only shows this when the second core is actually free; the
/// per-thread chunk tally in the note (busiest thread's share: 100 % vs
/// ~50 %) shows it regardless of other load on the machine.
fn imbalanced(n: u64, migratable: bool) -> Sample {
    let _ = fibrpc_fiber::sleep(Duration::from_millis(20));
    let home = thread::current().id();
    let t = Instant::now();
    let hs: Vec<_> = (0..IMBALANCED_TASKS)
        .map(|_| {
            let mut b = Builder::new().nosignal();
            if migratable {
                // SAFETY: the fiber body holds nothing across `yield_now`
                // except plain integers and a copied `ThreadId`: no `!Send`
                // value, no thread-local borrow (`thread::current()` is read
                // afresh after each switch and not kept).
                b = unsafe { b.migratable() };
            }
            b.spawn(move || {
                let started_home = thread::current().id() == home;
                let mut acc = 0u64;
                let mut tally = ChunkTally::default();
                for _ in 0..n {
                    acc = acc.wrapping_add(cpu_chunk());
                    tally.record();
                    yield_now();
                }
                black_box(acc);
                (started_home, tally)
            })
            .expect("spawn")
        })
        .collect();
    let results: Vec<(bool, ChunkTally)> = hs
        .into_iter()
        .map(|h| h.join().expect("worker fiber"))
        .collect();
    let elapsed = t.elapsed();
    let on_home = results.iter().filter(|r| r.0).count();
    let spread = ChunkTally::summary(results.into_iter().map(|r| r.1));
    Sample::new(elapsed, 1).with_note(format!(
        "{on_home}/{IMBALANCED_TASKS} started on the spawning worker, {spread}"
    ))
}

/// Cases on `fibrpc_fiber::sync`, which is merged separately: only built
/// with the `sync` feature.
#[cfg(feature = "sync")]
mod sync_cases {
    use super::*;
    use fibrpc_fiber::sync::mpsc;
    use fibrpc_fiber::sync::Mutex as FMutex;

    pub(super) fn run(rt: &Runtime, case: Case, n: u64) -> Option<Sample> {
        Some(match case {
            Case::MutexUncontended => rt.block_on(move || {
                let m = FMutex::new(0u64);
                let t = Instant::now();
                for _ in 0..n {
                    *black_box(&m).lock() += 1;
                }
                Sample::new(t.elapsed(), n)
            }),
            Case::MutexContended => rt.block_on(move || {
                let m = Arc::new(FMutex::new(0u64));
                let gate = Arc::new(AtomicUsize::new(0));
                let t = Instant::now();
                let hs: Vec<_> = (0..2)
                    .map(|_| {
                        let (m, gate) = (m.clone(), gate.clone());
                        spawn(move || {
                            let together = start_gate(&gate);
                            for _ in 0..n {
                                *m.lock() += 1;
                            }
                            together
                        })
                    })
                    .collect();
                let together = hs.into_iter().all(|h| h.join().expect("incrementer"));
                let elapsed = t.elapsed();
                assert_eq!(*m.lock(), 2 * n);
                let s = Sample::new(elapsed, 2 * n);
                if together {
                    s
                } else {
                    s.with_note("the two tasks did not run at the same time")
                }
            }),
            Case::Channel => rt.block_on(move || {
                let (tx, rx) = mpsc::channel::<u64>();
                producer_consumer(n, move |i| tx.send(i).expect("receiver alive"), rx)
            }),
            Case::SyncChannel => rt.block_on(move || {
                let (tx, rx) = mpsc::sync_channel::<u64>(128);
                producer_consumer(n, move |i| tx.send(i).expect("receiver alive"), rx)
            }),
            _ => unreachable!("not a sync case"),
        })
    }

    /// One producer fiber sends `0..n` through `send`; this fiber receives
    /// them all. Timed from before the producer starts to the last receive.
    fn producer_consumer(
        n: u64,
        send: impl Fn(u64) + Send + 'static,
        rx: mpsc::Receiver<u64>,
    ) -> Sample {
        let t = Instant::now();
        let p = spawn(move || (0..n).for_each(send));
        for _ in 0..n {
            black_box(rx.recv().expect("sender alive"));
        }
        let e = t.elapsed();
        p.join().expect("producer");
        Sample::new(e, n)
    }
}

#[cfg(not(feature = "sync"))]
mod sync_cases {
    use super::*;

    /// Without the `sync` feature fibrpc has no mutex or channel to time.
    pub(super) fn run(_rt: &Runtime, _case: Case, _n: u64) -> Option<Sample> {
        None
    }
}
