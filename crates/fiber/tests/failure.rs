//! Failure containment: stack overflow reporting, blocked workers, floods.

mod common;

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CHILD_ENV: &str = "FIBRPC_TEST_OVERFLOW_CHILD";

/// Recurses until the stack runs out (the bound is never reached).
#[inline(never)]
fn recurse(depth: u64, buf: &mut [u8; 512]) -> u64 {
    let mut local = [0u8; 512];
    local[(depth % 512) as usize] = buf[(depth % 512) as usize].wrapping_add(1);
    std::hint::black_box(&mut local);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1, &mut local) + local[0] as u64
}

/// Run in a child process: overflow a small fiber stack.
#[test]
fn overflow_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let h = fiber::Builder::new()
        .stack(fiber::StackClass::Small)
        .name("deep-recursion")
        .spawn(|| recurse(0, &mut [0; 512]))
        .unwrap();
    let _ = h.join();
    unreachable!("the overflow must abort the process");
}

#[test]
fn stack_overflow_names_the_fiber_and_aborts() {
    let out = common::run_child("overflow_child", CHILD_ENV);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("overflowed its 32 KiB stack") && stderr.contains("deep-recursion"),
        "stderr: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "status: {:?}",
        out.status
    );
}

const LOCAL_DROP_ENV: &str = "FIBRPC_TEST_LOCAL_DROP_CHILD";

struct PanicsOnDrop;
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("fiber-local destructor panics");
    }
}

/// Run in a child process: a fiber-local whose destructor panics.
#[test]
fn local_drop_child() {
    if std::env::var(LOCAL_DROP_ENV).is_err() {
        return;
    }
    common::log_to_stderr();
    fiber::fiber_local!(
        static BOMB: std::cell::RefCell<Option<PanicsOnDrop>> = std::cell::RefCell::new(None);
    );
    let h = fiber::spawn(|| BOMB.with(|b| *b.borrow_mut() = Some(PanicsOnDrop)));
    let _ = h.join();
    std::thread::sleep(Duration::from_secs(5));
    unreachable!("the panicking destructor must abort the process");
}

#[test]
fn a_panicking_fiber_local_destructor_aborts_naming_the_fiber() {
    // Not an unwind into the worker loop (which would lose its fibers).
    let out = common::run_child("local_drop_child", LOCAL_DROP_ENV);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR")
            && stderr.contains("fiber_local! destructor panicked")
            && stderr.contains("fiber="),
        "stderr: {stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc_sigabrt()),
        "status: {:?}",
        out.status
    );
}

fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn a_fiber_blocking_its_thread_does_not_stop_the_others() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    // One fiber blocks its worker's OS thread outright.
    let blocker = rt.spawn(|| std::thread::sleep(Duration::from_millis(500)));
    let d = done.clone();
    let others = rt.spawn(move || {
        let hs: Vec<_> = (0..1000)
            .map(|_| {
                let d = d.clone();
                fiber::spawn(move || {
                    fiber::yield_now();
                    d.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    others.join().unwrap();
    assert_eq!(done.load(Ordering::Relaxed), 1000);
    blocker.join().unwrap();
}

#[test]
fn one_worker_flooded_with_a_million_spawns_while_others_block() {
    let rt = fiber::Runtime::builder().workers(3).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    // Two workers get stuck in OS-level sleeps.
    let stuck: Vec<_> = (0..2)
        .map(|_| rt.spawn(|| std::thread::sleep(Duration::from_millis(300))))
        .collect();
    let c = count.clone();
    let flood = rt.spawn(move || {
        for _ in 0..1_000_000 {
            let c = c.clone();
            let _ = fiber::Builder::new()
                .stack(fiber::StackClass::Worker)
                .spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
        }
    });
    flood.join().unwrap();
    for s in stuck {
        s.join().unwrap();
    }
    // Every spawned task runs: nothing dropped, nothing stuck.
    while count.load(Ordering::Relaxed) < 1_000_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
}

#[test]
fn flood_from_outside_threads_overflows_remote_queues_without_loss() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let gate = rt.spawn(|| std::thread::sleep(Duration::from_millis(200)));
    // The only worker is blocked: 100k remote submissions pile up far past
    // the remote queue's bound.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let rt = rt.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                (0..25_000)
                    .map(|_| {
                        let c = count.clone();
                        rt.spawn(move || {
                            c.fetch_add(1, Ordering::Relaxed);
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for h in t.join().unwrap() {
            h.join().unwrap();
        }
    }
    gate.join().unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 100_000);
}
