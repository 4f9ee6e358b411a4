//! Profiling target: spawn+join from a fiber.
use fibrpc_fiber as fiber;
fn main() {
    let w = std::env::var("W").map(|v| v.parse().unwrap()).unwrap_or(2);
    let rt = fiber::Runtime::builder().workers(w).build().unwrap();
    let n = 1_000_000u64;
    let t = std::time::Instant::now();
    rt.block_on(move || {
        for _ in 0..n {
            fiber::spawn(|| ()).join().unwrap();
        }
    });
    println!(
        "{:.1} ns/spawn+join",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    println!("{:?}", rt.stats());
}
