//! A profiling target for the spawn path, on a 1-worker runtime:
//! `spawn_loop spawn N` spawns and joins N fibers one after another;
//! `spawn_loop chain N` runs a chain of N fibers, each spawning the next.
//!
//! Instructions per operation, repeatable on a noisy machine (callgrind
//! counts instructions, not time): run with N = 100000 and 200000 and
//! divide the difference of the totals by 100000:
//!
//! ```sh
//! cargo build --release -p fibrpc-fiber --example spawn_loop
//! valgrind --tool=callgrind target/release/examples/spawn_loop spawn 100000
//! valgrind --tool=callgrind target/release/examples/spawn_loop spawn 200000
//! ```
use fibrpc_fiber as fiber;
use std::sync::atomic::Ordering;
use std::sync::Arc;

fn chain(left: u64, done: Arc<fiber::butex::Butex>) {
    if left == 0 {
        done.value().store(1, Ordering::Release);
        done.wake_all();
        return;
    }
    let _ = fiber::spawn(move || chain(left - 1, done));
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "spawn".into());
    let n: u64 = std::env::args()
        .nth(2)
        .map(|v| v.parse().expect("N must be a number"))
        .unwrap_or(100_000);
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let t = std::time::Instant::now();
    rt.block_on(move || match mode.as_str() {
        "chain" => {
            let done = Arc::new(fiber::butex::Butex::new(0));
            chain(n, done.clone());
            while done.value().load(Ordering::Acquire) == 0 {
                let _ = done.wait(0, None);
            }
        }
        _ => {
            for _ in 0..n {
                fiber::spawn(|| ()).join().unwrap();
            }
        }
    });
    eprintln!("{:.1} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
}
