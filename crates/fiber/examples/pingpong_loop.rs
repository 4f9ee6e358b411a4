//! Profiling target: two fibers ping-ponging through butexes on one worker.
use fibrpc_fiber as fiber;
use std::sync::atomic::Ordering;
use std::sync::Arc;
fn main() {
    let np: u32 = std::env::var("N")
        .map(|v| v.parse().unwrap())
        .unwrap_or(1_000_000);
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let t = std::time::Instant::now();
    rt.block_on(move || {
        let a = Arc::new(fiber::butex::Butex::new(0));
        let b = a.clone();
        let h = fiber::spawn(move || {
            for i in 0..np {
                while b.value().load(Ordering::Acquire) != 2 * i + 1 {
                    let _ = b.wait(2 * i, None);
                }
                b.value().store(2 * i + 2, Ordering::Release);
                b.wake_one();
            }
        });
        for i in 0..np {
            a.value().store(2 * i + 1, Ordering::Release);
            a.wake_one();
            while a.value().load(Ordering::Acquire) != 2 * i + 2 {
                let _ = a.wait(2 * i + 1, None);
            }
        }
        h.join().unwrap();
    });
    println!(
        "{:.1} ns/round trip",
        t.elapsed().as_nanos() as f64 / np as f64
    );
}
