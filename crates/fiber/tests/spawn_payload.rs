//! The closure and result stored in the fiber's slot (inline, or boxed when
//! too big or too aligned): each dropped exactly once whether joined,
//! detached before or after the fiber ended, from fibers and threads; a
//! handle kept after its fiber ended still reads its own result even while
//! many other fibers come and go.

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts its drops.
struct Tracked<const N: usize> {
    drops: Arc<AtomicUsize>,
    value: u64,
    _pad: [u8; N],
}

impl<const N: usize> Tracked<N> {
    fn new(drops: &Arc<AtomicUsize>, value: u64) -> Self {
        Tracked {
            drops: drops.clone(),
            value,
            _pad: [0; N],
        }
    }
}

impl<const N: usize> Drop for Tracked<N> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[repr(align(64))]
struct OverAligned(u64);

fn wait_for(drops: &AtomicUsize, n: usize) {
    for _ in 0..2000 {
        if drops.load(Ordering::SeqCst) >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let a stray double drop show up.
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(drops.load(Ordering::SeqCst), n);
}

/// Runs the ownership cases for closures capturing a `Tracked<CN>` and
/// returning a `Tracked<RN>` (small: inline; big: boxed).
fn cases<const CN: usize, const RN: usize>() {
    let closure_drops = Arc::new(AtomicUsize::new(0));
    let result_drops = Arc::new(AtomicUsize::new(0));
    let n = 50;

    // Joined from this thread: closure consumed, result returned once.
    for i in 0..n {
        let c = Tracked::<CN>::new(&closure_drops, i);
        let rd = result_drops.clone();
        let h = fiber::spawn(move || Tracked::<RN>::new(&rd, c.value * 2));
        let r = h.join().unwrap();
        assert_eq!(r.value, i * 2);
    }
    wait_for(&closure_drops, n as usize);
    wait_for(&result_drops, n as usize);

    // Detached before the fiber ran or while it runs.
    for i in 0..n {
        let c = Tracked::<CN>::new(&closure_drops, i);
        let rd = result_drops.clone();
        drop(fiber::spawn(move || Tracked::<RN>::new(&rd, c.value)));
    }
    wait_for(&closure_drops, 2 * n as usize);
    wait_for(&result_drops, 2 * n as usize);

    // Detached after the fiber ended (the handle releases the slot).
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let c = Tracked::<CN>::new(&closure_drops, i);
            let rd = result_drops.clone();
            fiber::spawn(move || Tracked::<RN>::new(&rd, c.value))
        })
        .collect();
    while !hs.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(result_drops.load(Ordering::SeqCst), 2 * n as usize);
    drop(hs);
    wait_for(&closure_drops, 3 * n as usize);
    wait_for(&result_drops, 3 * n as usize);

    // The same from inside a fiber: joined, detached early, detached late.
    let (cd, rd) = (closure_drops.clone(), result_drops.clone());
    fiber::spawn(move || {
        for i in 0..n {
            let c = Tracked::<CN>::new(&cd, i);
            let rd2 = rd.clone();
            let h = fiber::spawn(move || Tracked::<RN>::new(&rd2, c.value + 1));
            assert_eq!(h.join().unwrap().value, i + 1);
            let c = Tracked::<CN>::new(&cd, i);
            let rd2 = rd.clone();
            drop(fiber::spawn(move || Tracked::<RN>::new(&rd2, c.value)));
            let c = Tracked::<CN>::new(&cd, i);
            let rd2 = rd.clone();
            let h = fiber::spawn(move || Tracked::<RN>::new(&rd2, c.value));
            while !h.is_finished() {
                fiber::yield_now();
                fiber::sleep(Duration::from_micros(50)).unwrap();
            }
            drop(h);
        }
    })
    .join()
    .unwrap();
    wait_for(&closure_drops, 6 * n as usize);
    wait_for(&result_drops, 6 * n as usize);
}

#[test]
fn small_payloads_dropped_once() {
    cases::<0, 0>();
}

#[test]
fn big_payloads_dropped_once() {
    cases::<256, 256>();
}

#[test]
fn big_closure_small_result_and_back() {
    cases::<256, 0>();
    cases::<0, 256>();
}

#[test]
fn over_aligned_result() {
    let h = fiber::spawn(|| OverAligned(7));
    let r = h.join().unwrap();
    assert_eq!(r.0, 7);
    assert_eq!(&r as *const OverAligned as usize % 64, 0);
}

#[test]
fn panics_come_back_inline_and_boxed() {
    let e = fiber::spawn(|| -> u8 { panic!("small {}", 1) })
        .join()
        .unwrap_err();
    assert_eq!(e.panic_message(), Some("small 1"));
    let big = [1u8; 512];
    let e = fiber::spawn(move || -> [u8; 512] {
        if big[0] == 1 {
            panic!("big {}", 2)
        }
        big
    })
    .join()
    .unwrap_err();
    assert_eq!(e.panic_message(), Some("big 2"));
}

#[test]
fn finished_handles_keep_their_results_while_slots_churn() {
    fiber::spawn(|| {
        let kept: Vec<_> = (0..300u64).map(|i| fiber::spawn(move || i * 3)).collect();
        while !kept.iter().all(|h| h.is_finished()) {
            fiber::sleep(Duration::from_micros(100)).unwrap();
        }
        // Many spawns while the ended fibers' handles are alive: none of
        // them may get (and overwrite) a kept slot.
        for i in 0..2000u64 {
            assert_eq!(fiber::spawn(move || i + 1).join().unwrap(), i + 1);
        }
        let ids: std::collections::HashSet<_> = kept.iter().map(|h| h.id()).collect();
        assert_eq!(ids.len(), kept.len());
        for (i, h) in kept.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u64 * 3);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn handles_dropped_on_other_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..100u64)
        .map(|i| {
            let d = drops.clone();
            fiber::spawn(move || Tracked::<0>::new(&d, i))
        })
        .collect();
    let t = std::thread::spawn(move || {
        for (i, h) in hs.into_iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(h.join().unwrap().value, i as u64);
            }
        }
    });
    t.join().unwrap();
    wait_for(&drops, 100);
}

#[test]
fn held_handles_of_ended_fibers_do_not_hold_stacks() {
    // A finished fiber whose handle is still held keeps its slot; its stack
    // must still go back to the pool (bounded) for the next fibers, or a
    // burst of spawns whose handles are joined later maps a stack per fiber
    // (and runs into vm.max_map_count).
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let n = 3000u64;
    let sum = rt.block_on(move || {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let h = fiber::spawn(move || i);
                // Let it run to its end before the next spawn.
                fiber::yield_now();
                while !h.is_finished() {
                    fiber::sleep(Duration::from_micros(10)).unwrap();
                }
                h
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, n * (n - 1) / 2);
    let mapped = rt.stats().total().stacks_mapped;
    assert!(
        mapped < 64,
        "{mapped} stacks mapped for {n} sequential fibers"
    );
}
