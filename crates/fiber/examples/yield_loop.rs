//! Profiling target: yield_now in a loop on one worker.
use fibrpc_fiber as fiber;
fn main() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let what = std::env::args().nth(1).unwrap_or_default();
    let t = std::time::Instant::now();
    let n: u64 = std::env::var("N")
        .map(|v| v.parse().unwrap())
        .unwrap_or(20_000_000);
    rt.block_on(move || {
        if what == "spawn" {
            for _ in 0..n / 10 {
                fiber::spawn(|| ()).join().unwrap();
            }
        } else {
            for _ in 0..n {
                fiber::yield_now();
            }
        }
    });
    println!("{:.1} ns/op", t.elapsed().as_nanos() as f64 / n as f64);
}
