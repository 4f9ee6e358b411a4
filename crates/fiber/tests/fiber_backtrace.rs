//! Backtraces of suspended fibers (`fiber_backtrace`): a fiber waiting in
//! a distinctive function shows that function and its callers; a running
//! fiber and an ended one have none; tracing a fiber over and over while
//! it wakes and waits again thousands of times neither corrupts it nor
//! stalls it.

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The function names at `frames` (inlined calls included).
fn names(frames: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, &ip) in frames.iter().enumerate() {
        let at = if i == 0 { ip } else { ip - 1 };
        backtrace::resolve(at as *mut std::ffi::c_void, |s| {
            if let Some(n) = s.name() {
                out.push(format!("{n:#}"));
            }
        });
    }
    out
}

#[inline(never)]
fn waits_in_a_distinctive_frame(rx: &fiber::sync::mpsc::Receiver<()>) {
    let _ = std::hint::black_box(rx).recv();
}

#[inline(never)]
fn calls_the_distinctive_frame(rx: fiber::sync::mpsc::Receiver<()>) {
    waits_in_a_distinctive_frame(&rx);
    std::hint::black_box(());
}

/// Waits (at most 10 s) until fiber `id` is listed in `state`.
fn wait_for_state(id: fiber::FiberId, state: fiber::FiberState) {
    let until = Instant::now() + Duration::from_secs(10);
    while fiber::fiber_info(id).map(|i| i.state) != Some(state) {
        assert!(Instant::now() < until, "{:?}", fiber::fiber_info(id));
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_waiting_fiber_shows_where_it_waits() {
    let (tx, rx) = fiber::sync::mpsc::channel::<()>();
    let waiter = fiber::spawn(move || calls_the_distinctive_frame(rx));
    let id = waiter.id();
    wait_for_state(id, fiber::FiberState::Suspended);
    let frames = fiber::fiber_backtrace(id).expect("a waiting fiber is traced");
    let names = names(&frames);
    let at = |f: &str| names.iter().position(|n| n.contains(f));
    let inner = at("waits_in_a_distinctive_frame").unwrap_or_else(|| panic!("{names:#?}"));
    let outer = at("calls_the_distinctive_frame").unwrap_or_else(|| panic!("{names:#?}"));
    assert!(inner < outer, "innermost first: {names:#?}");
    // The walk stays on the fiber's stack: the scheduler's frames (on the
    // worker's) are not in it.
    assert!(
        !names
            .iter()
            .any(|n| n.contains("run_task") || n.contains("worker_main")),
        "{names:#?}"
    );
    tx.send(()).unwrap();
    waiter.join().unwrap();
    assert_eq!(fiber::fiber_backtrace(id), Err(fiber::NoBacktrace::Gone));
}

#[test]
fn a_running_fiber_has_no_backtrace() {
    let me = fiber::spawn(|| fiber::fiber_backtrace(fiber::current().unwrap()));
    assert_eq!(me.join().unwrap(), Err(fiber::NoBacktrace::Running));
}

#[test]
fn tracing_a_fiber_that_keeps_waking_leaves_it_whole() {
    // A fiber that waits on a channel, wakes, checks its own state and
    // waits again, while this thread traces it as fast as it can.
    const ROUNDS: u64 = 3000;
    let (tx, rx) = fiber::sync::mpsc::channel::<u64>();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let worker = fiber::spawn(move || {
        let mut expect = 0;
        while let Ok(v) = rx.recv() {
            assert_eq!(v, expect, "messages in order, locals intact");
            expect += 1;
            s.store(expect, Ordering::Release);
        }
        expect
    });
    let id = worker.id();
    let stop = Arc::new(AtomicBool::new(false));
    let tracer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut traced, mut tries) = (0u64, 0u64);
            let until = Instant::now() + Duration::from_secs(20);
            while !stop.load(Ordering::Acquire) && Instant::now() < until && tries < 1_000_000 {
                tries += 1;
                if let Ok(frames) = fiber::fiber_backtrace(id) {
                    assert!(!frames.is_empty());
                    traced += 1;
                }
            }
            traced
        })
    };
    for i in 0..ROUNDS {
        tx.send(i).unwrap();
        // Let it wait again now and then, so traces find it waiting.
        if i % 64 == 0 {
            let until = Instant::now() + Duration::from_secs(10);
            while seen.load(Ordering::Acquire) <= i {
                assert!(Instant::now() < until, "the fiber stalled");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    drop(tx);
    assert_eq!(worker.join().unwrap(), ROUNDS);
    stop.store(true, Ordering::Release);
    let traced = tracer.join().unwrap();
    assert!(traced > 0, "some traces found the fiber waiting");
}
