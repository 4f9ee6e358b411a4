//! Quick micro-timings of the runtime's hot paths (median of 5 runs).
use fibrpc_fiber as fiber;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rt = fiber::Runtime::builder()
        .workers(std::env::var("W").map(|v| v.parse().unwrap()).unwrap_or(2))
        .build()
        .unwrap();
    let n = 200_000;
    let spawn_join = median(
        (0..5)
            .map(|_| {
                rt.block_on(move || {
                    let t = Instant::now();
                    for _ in 0..n {
                        fiber::spawn(|| ()).join().unwrap();
                    }
                    t.elapsed().as_nanos() as f64 / n as f64
                })
            })
            .collect(),
    );
    println!("spawn+join: {spawn_join:.1} ns");
    let ny = 2_000_000;
    let y = median(
        (0..5)
            .map(|_| {
                rt.block_on(move || {
                    let t = Instant::now();
                    for _ in 0..ny {
                        fiber::yield_now();
                    }
                    t.elapsed().as_nanos() as f64 / ny as f64
                })
            })
            .collect(),
    );
    println!("yield: {y:.1} ns");
    let rt1 = fiber::Runtime::builder().workers(1).build().unwrap();
    let np = 500_000u32;
    let pp = median(
        (0..5)
            .map(|_| {
                rt1.block_on(move || {
                    use std::sync::atomic::Ordering;
                    use std::sync::Arc;
                    let a = Arc::new(fiber::butex::Butex::new(0));
                    let b = a.clone();
                    let t = Instant::now();
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
                    t.elapsed().as_nanos() as f64 / np as f64
                })
            })
            .collect(),
    );
    println!("butex ping-pong (1 worker): {pp:.1} ns/round trip");
    let nc = 1_000_000;
    let ch = median(
        (0..5)
            .map(|_| {
                let (tx, rx) = std::sync::mpsc::channel();
                let t = Instant::now();
                fn link(left: usize, tx: std::sync::mpsc::Sender<()>) {
                    if left == 0 {
                        tx.send(()).unwrap();
                        return;
                    }
                    let _ = fiber::spawn(move || link(left - 1, tx));
                }
                let _ = rt.spawn(move || link(nc, tx));
                rx.recv().unwrap();
                t.elapsed().as_nanos() as f64 / nc as f64
            })
            .collect(),
    );
    println!("chained spawn: {ch:.1} ns/fiber");
    println!("{:?}", rt.stats().total());
}
