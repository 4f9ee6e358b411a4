//! The LIFO slot: a fiber spawned by a fiber waits in its worker's slot,
//! which no other worker's ordinary steal reaches. A spawner that then runs
//! for long without switching must not strand it (`runtime/lifo.rs`).

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Far longer than any path that hands the task on takes (at most a few
/// milliseconds; the blocked-worker monitor's 50 ms period as a backstop):
/// only bounds the spins below, so a broken guarantee fails the test rather
/// than hanging it.
const LIMIT: Duration = Duration::from_secs(10);

/// Spins, never switching out, until `flag` is set or `LIMIT` passes;
/// returns whether it was set.
fn spin_until(flag: &AtomicBool) -> bool {
    let deadline = Instant::now() + LIMIT;
    while !flag.load(Ordering::Acquire) {
        if Instant::now() >= deadline {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Spawns a fiber (into the calling fiber's LIFO slot) that sets a flag and
/// returns its thread; spins until the flag is set. Returns whether it was
/// set while spinning and the thread the fiber ran on.
fn spawn_and_spin() -> (bool, ThreadId) {
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = fiber::spawn(move || {
        s.store(true, Ordering::Release);
        std::thread::current().id()
    });
    let ran = spin_until(&started);
    // If it did not run, joining runs it here (the slot's usual path).
    (ran, h.join().unwrap())
}

#[test]
fn a_child_is_not_starved_by_a_spawner_that_never_yields() {
    // The other worker is idle (asleep since the runtime started): only it
    // taking the child from the slot can end the spin.
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let (ran, child_on, spawner) = rt.block_on(|| {
        let (ran, child_on) = spawn_and_spin();
        (ran, child_on, std::thread::current().id())
    });
    assert!(
        ran,
        "the child waited in the slot behind a spinning spawner"
    );
    assert_ne!(child_on, spawner, "the child ran on the other worker");
}

#[test]
fn a_child_is_not_starved_after_every_worker_slept_untimed() {
    // Idle for long, the workers sleep without a timeout; the one that
    // wakes for our fiber finds nobody else looking at its slot, and its
    // spawn arms a timer instead (or the blocked-worker monitor, sampling
    // every 50 ms, wakes the other worker).
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (ran, child_on, spawner) = rt.block_on(|| {
        let (ran, child_on) = spawn_and_spin();
        (ran, child_on, std::thread::current().id())
    });
    assert!(
        ran,
        "the child waited in the slot behind a spinning spawner"
    );
    assert_ne!(child_on, spawner, "the child ran on the other worker");
}

#[test]
fn a_child_is_not_starved_while_the_other_worker_is_busy_too() {
    // The other worker runs a fiber that spawns and joins in a loop: it is
    // always runnable, so that worker never idles and only its periodic look
    // at the shared queues (every 61 fiber runs) can take our child.
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let (ran, stopped_by_us, spawner, busy_on, child_on) = rt.block_on(|| {
        let me = std::thread::current().id();
        let stop = Arc::new(AtomicBool::new(false));
        let busy_started = Arc::new(AtomicBool::new(false));
        let (st, bs) = (stop.clone(), busy_started.clone());
        let busy = fiber::spawn(move || {
            bs.store(true, Ordering::Release);
            let deadline = Instant::now() + LIMIT;
            while !st.load(Ordering::Acquire) {
                if Instant::now() >= deadline {
                    return (false, std::thread::current().id());
                }
                fiber::spawn(|| ()).join().unwrap();
            }
            (true, std::thread::current().id())
        });
        // `busy` itself waits in our slot first: the idle worker takes it.
        assert!(spin_until(&busy_started), "the busy fiber never started");
        let (ran, child_on) = spawn_and_spin();
        stop.store(true, Ordering::Release);
        let (stopped_by_us, busy_on) = busy.join().unwrap();
        (ran, stopped_by_us, me, busy_on, child_on)
    });
    assert_ne!(busy_on, spawner, "the busy fiber ran on the other worker");
    assert!(
        ran,
        "the child waited in the slot behind a spinning spawner"
    );
    assert!(
        stopped_by_us,
        "the child ran only once the other worker stopped being busy"
    );
    assert_eq!(child_on, busy_on, "the busy worker took the child");
}
