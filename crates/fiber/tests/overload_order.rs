//! A worker with thousands of ready fibers runs the recently woken first
//! and still runs every one (see the runtime's `overflow` module).

use fibrpc_fiber as fiber;
use fibrpc_fiber::butex::Butex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// More ready fibers than a worker keeps in plain FIFO order.
const N: usize = 4000;

#[test]
fn recently_woken_fibers_run_first_and_none_is_left_behind() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let order = rt.block_on(|| {
        let gate = Arc::new(Butex::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::with_capacity(N)));
        let fibers: Vec<_> = (0..N)
            .map(|_| {
                let (gate, waiting, order) = (gate.clone(), waiting.clone(), order.clone());
                fiber::spawn(move || {
                    // The position in which this fiber started waiting,
                    // which is the order `wake_all` wakes them in (one
                    // worker: each links before the next one runs).
                    let position = waiting.fetch_add(1, Ordering::SeqCst);
                    while gate.value().load(Ordering::Acquire) == 0 {
                        let _ = gate.wait(0, None);
                    }
                    order.lock().unwrap().push(position);
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < N {
            fiber::yield_now();
        }
        // Woken from a fiber of the same worker: all N are queued on it
        // at once.
        gate.value().store(1, Ordering::Release);
        assert_eq!(gate.wake_all(), N, "every fiber was waiting");
        for f in fibers {
            f.join().unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    });
    assert_eq!(order.len(), N, "every woken fiber ran");
    let mut seen = order.clone();
    seen.sort_unstable();
    assert!(seen.iter().copied().eq(0..N), "each fiber ran once");
    // The first to run came from the end of the wake order (a FIFO would
    // have run positions 0, 1, 2...), but for the oldest set-aside one
    // that each periodic check (every 61 runs) takes.
    let first: Vec<_> = order.iter().take(64).copied().collect();
    let recent = first.iter().filter(|&&p| p >= N - 256).count();
    assert!(
        recent >= 62,
        "the first fibers to run were not the last woken: {first:?}"
    );
    assert!(
        first.contains(&0),
        "the periodic check did not take the oldest: {first:?}"
    );
}
