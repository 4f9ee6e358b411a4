//! Butex wait/wake races (thread waiters: the fiber path switches stacks,
//! which loom cannot model, but shares the same list and lock code).

use crate::butex::{Butex, WaitError};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

#[test]
fn wake_after_store_is_never_lost() {
    super::model(|| {
        let b = Arc::new(Butex::new(0));
        let b2 = b.clone();
        let waiter = thread::spawn(move || {
            while b2.value().load(Ordering::Acquire) == 0 {
                match b2.wait(0, None) {
                    Ok(()) | Err(WaitError::WouldBlock) => {}
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        });
        b.value().store(1, Ordering::Release);
        b.wake_all();
        waiter.join().unwrap();
    });
}

#[test]
fn wake_one_wakes_exactly_one_of_two() {
    super::model_bounded(1, || {
        let b = Arc::new(Butex::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || {
                    // Each waiter consumes one "permit" (value decrement).
                    loop {
                        let v = b.value().load(Ordering::Acquire);
                        if v > 0 {
                            if b.value()
                                .compare_exchange(v, v - 1, Ordering::AcqRel, Ordering::Acquire)
                                .is_ok()
                            {
                                return;
                            }
                            continue;
                        }
                        let _ = b.wait(0, None);
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            b.value().fetch_add(1, Ordering::Release);
            b.wake_one();
        }
        for w in waiters {
            w.join().unwrap();
        }
    });
}
