//! Cost of one pick of `rr`, `random`, `la` and `c_murmurhash` over 100
//! servers, from 2 threads picking at once.
//!
//! `cargo bench -p fibrpc --bench lb_pick`. Each thread does N picks;
//! the time is the slower thread's divided by N (wall time per pick per
//! thread). `la` is timed as select + feedback, the whole cost a call
//! puts on it (a select alone would let inflight counts grow forever).
//! A plain timing loop prints ns per pick at the end.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use fibrpc::channel::lb::{load_balancer_by_name, LoadBalancer, ServerEntry};
use fibrpc::channel::{AttemptOutcome, SelectInput};

const SERVERS: usize = 100;
const THREADS: usize = 2;
const NAMES: [&str; 4] = ["rr", "random", "la", "c_murmurhash"];

fn balancer(name: &str) -> Box<dyn LoadBalancer> {
    let lb = load_balancer_by_name(name).expect("known balancer");
    let servers: Vec<_> = (0..SERVERS)
        .map(|i| ServerEntry::new(SocketAddr::from(([10, 0, 0, 1], 8000 + i as u16)), "1"))
        .collect();
    lb.reset(&servers);
    lb
}

/// One pick (and, for `la`, its feedback); `k` varies the request code.
fn pick(lb: &dyn LoadBalancer, k: u64) {
    let code = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    let a = lb
        .select(&SelectInput::new(&[], Some(code)))
        .expect("a server");
    if lb.name() == "la" {
        let latency = Duration::from_micros(100 + (u64::from(a.port()) % 7) * 50);
        lb.feedback(&AttemptOutcome::new(a, None, latency));
    }
    black_box(a);
}

/// Runs `iters` picks on each of `THREADS` threads started together;
/// returns the slowest thread's time.
fn run_threads(lb: &dyn LoadBalancer, iters: u64) -> Duration {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for k in 0..iters {
                        pick(lb, k ^ (t as u64) << 40);
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

fn bench_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("lb_pick/{SERVERS}_servers_{THREADS}_threads"));
    for name in NAMES {
        let lb = balancer(name);
        group.bench_function(name, |b| b.iter_custom(|iters| run_threads(&*lb, iters)));
    }
    group.finish();
}

criterion_group!(benches, bench_pick);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let mut line = format!("ns per pick ({SERVERS} servers, {THREADS} threads):");
    for name in NAMES {
        let lb = balancer(name);
        let n = 2_000_000;
        run_threads(&*lb, n / 10); // warm up
        let ns = run_threads(&*lb, n).as_nanos() as f64 / n as f64;
        line += &format!(" {name} {ns:.1};");
    }
    println!("{line}");
}
