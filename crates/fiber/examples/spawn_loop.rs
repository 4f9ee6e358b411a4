//! A profiling target for the spawn and wake paths, on a 1-worker runtime:
//! `spawn_loop spawn N` spawns and joins N fibers one after another;
//! `spawn_loop chain N` runs a chain of N fibers, each spawning the next;
//! `spawn_loop pingpong N` makes N round trips between two fibers through
//! one butex (`Butex::wait` / `wake_one`, as `fiber_bench`'s
//! `pingpong_1w`). It prints ns per operation (a timing: compare builds by
//! alternating runs with N = 5000000).
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

/// One side of a ping-pong: the butex's value counts half trips; this
/// side moves it on from the values `2 * i + parity`.
fn ping_pong_side(b: &fiber::butex::Butex, rounds: u64, parity: u32) {
    for i in 0..rounds as u32 {
        let mine = 2 * i + parity;
        loop {
            let v = b.value().load(Ordering::Acquire);
            if v == mine {
                break;
            }
            let _ = b.wait(v, None);
        }
        b.value().store(mine + 1, Ordering::Release);
        b.wake_one();
    }
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
        "pingpong" => {
            let b = Arc::new(fiber::butex::Butex::new(0));
            let other = {
                let b = b.clone();
                fiber::spawn(move || ping_pong_side(&b, n, 1))
            };
            ping_pong_side(&b, n, 0);
            other.join().unwrap();
        }
        _ => {
            for _ in 0..n {
                fiber::spawn(|| ()).join().unwrap();
            }
        }
    });
    eprintln!("{:.1} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
}
