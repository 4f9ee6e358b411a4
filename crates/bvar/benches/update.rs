//! Update cost of `Adder::add` from 1 and 2 threads, against a shared
//! `AtomicU64::fetch_add` and the `metrics` crate's counter (through a
//! registered recorder backed by one `AtomicU64`, the usual shape).
//!
//! `cargo bench -p fibrpc-bvar --bench update`. Two-thread figures are
//! wall time per update per thread: each thread does N updates, the time
//! is the slower thread's, divided by N. Flat from 1 to 2 threads means no
//! contention. A ratio line at the end repeats the comparison with a plain
//! timing loop.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use fibrpc_bvar::Adder;
use metrics::{Counter, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// A recorder whose counters all share one atomic.
struct AtomicRecorder(Arc<AtomicU64>);

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.clone())
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

fn metrics_counter() -> Counter {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        metrics::set_global_recorder(AtomicRecorder(Arc::new(AtomicU64::new(0))))
            .expect("first recorder");
    });
    metrics::counter!("bench_requests")
}

/// Runs `update` `iters` times on each of `threads` threads started
/// together; returns the slowest thread's time. Generic so the update is
/// inlined into the loop, as it would be in real code.
fn run_threads<F: Fn() + Sync>(threads: usize, iters: u64, update: &F) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    update(); // the first update on a thread installs its agent
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        update();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

/// Runs `$body` with `$name` and `$update` bound to each contender in
/// turn, each on a fresh variable (a macro, not a function, so that every
/// contender keeps its own closure type and is inlined).
macro_rules! for_each_contender {
    (|$name:ident, $update:ident| $body:block) => {{
        let adder = Adder::new();
        {
            let ($name, $update) = ("bvar_adder", &|| adder.add(black_box(1)));
            $body
        }
        let atomic = AtomicU64::new(0);
        {
            let ($name, $update) = ("atomic_fetch_add", &|| {
                atomic.fetch_add(black_box(1), Ordering::Relaxed);
            });
            $body
        }
        let counter = metrics_counter();
        {
            let ($name, $update) = ("metrics_counter", &|| counter.increment(black_box(1)));
            $body
        }
    }};
}

fn bench_update(c: &mut Criterion) {
    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("update/{threads}_thread"));
        for_each_contender!(|name, update| {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| run_threads(threads, iters, update))
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench_update);

/// ns per update from a plain loop of `n` updates per thread.
fn ns_per_update<F: Fn() + Sync>(threads: usize, update: &F) -> f64 {
    let n = 20_000_000;
    run_threads(threads, n / 10, update); // warm up
    run_threads(threads, n, update).as_nanos() as f64 / n as f64
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let mut line = String::from("ratio (ns per update, 1 thread -> 2 threads):");
    for_each_contender!(|name, update| {
        let (one, two) = (ns_per_update(1, update), ns_per_update(2, update));
        line += &format!(" {name} {one:.2} -> {two:.2} (x{:.2});", two / one);
    });
    println!("{line}");
}
