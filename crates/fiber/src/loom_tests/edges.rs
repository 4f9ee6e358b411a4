//! The readiness edge counter's "anyone waiting?" bit: a bump that skips
//! the waiter list's lock must never strand a waiter (thread waiters, as in
//! `butex`).

use crate::io::edges::{next, Edges};
use loom::sync::Arc;
use loom::thread;

/// Waits until the counter has moved `n` edges past `start`, taking a new
/// ticket after each wakeup (as a socket's reader does between retries).
fn wait_for(e: &Edges, start: u32, n: u32) {
    let target = (0..n).fold(start, |t, _| next(t));
    loop {
        let t = e.ticket();
        if t == target {
            return;
        }
        e.wait(t, None).expect("no deadline, no interrupt");
    }
}

/// One waiter that waits for `bumps` edges, and `bumps` bumps.
fn one_waiter(bumps: u32) {
    super::model(move || {
        let e = Arc::new(Edges::new());
        let start = e.ticket();
        let e2 = e.clone();
        let waiter = thread::spawn(move || wait_for(&e2, start, bumps));
        for _ in 0..bumps {
            e.bump();
        }
        waiter.join().unwrap();
    });
}

#[test]
fn one_bump_wakes_the_waiter() {
    one_waiter(1);
}

#[test]
fn a_waiter_across_two_bumps_sets_the_bit_again() {
    one_waiter(2);
}

#[test]
fn two_waiters_one_bump() {
    super::model_bounded(1, || {
        let e = Arc::new(Edges::new());
        let start = e.ticket();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let e = e.clone();
                thread::spawn(move || wait_for(&e, start, 1))
            })
            .collect();
        e.bump();
        for w in waiters {
            w.join().unwrap();
        }
    });
}
