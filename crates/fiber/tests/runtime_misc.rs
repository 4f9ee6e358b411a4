//! block_on, fiber-locals, stats, growing the worker count.

use fibrpc_fiber as fiber;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A future completed by another thread after a delay.
struct Later {
    done: Arc<AtomicBool>,
    spawned: bool,
}

impl Future for Later {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.done.load(Ordering::Acquire) {
            return Poll::Ready(7);
        }
        if !self.spawned {
            self.spawned = true;
            let done = self.done.clone();
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::Release);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

fn later() -> Later {
    Later {
        done: Arc::new(AtomicBool::new(false)),
        spawned: false,
    }
}

#[test]
fn block_on_in_a_fiber_suspends_only_the_fiber() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let (a, b) = rt.block_on(|| {
        let ticker = fiber::spawn(|| {
            let mut n = 0;
            for _ in 0..10 {
                fiber::sleep(Duration::from_millis(1)).unwrap();
                n += 1;
            }
            n
        });
        let v = fiber::block_on(later());
        (v, ticker.join().unwrap())
    });
    assert_eq!((a, b), (7, 10));
}

#[test]
fn block_on_from_a_thread() {
    assert_eq!(fiber::block_on(later()), 7);
    assert_eq!(fiber::block_on(async { 5 }), 5);
}

fiber::fiber_local! {
    static COUNTER: Cell<u32> = Cell::new(0);
}

#[test]
fn fiber_locals_are_per_fiber() {
    let hs: Vec<_> = (0..50)
        .map(|i| {
            fiber::spawn(move || {
                for _ in 0..i {
                    COUNTER.with(|c| c.set(c.get() + 1));
                    fiber::yield_now();
                }
                COUNTER.with(|c| c.get())
            })
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i as u32);
    }
}

#[test]
fn stats_count_fibers() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for _ in 0..100 {
            fiber::spawn(fiber::yield_now).join().unwrap();
        }
    });
    let s = rt.stats();
    assert_eq!(s.workers.len(), 2);
    let t = s.total();
    assert_eq!(t.created, 101);
    assert_eq!(t.exited, 101);
    assert_eq!(s.alive(), 0);
    assert!(t.switches >= 201);
}

#[test]
fn workers_can_be_added_at_run_time() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.workers(), 1);
    rt.add_workers(2).unwrap();
    assert_eq!(rt.workers(), 3);
    let v = rt.block_on(|| {
        (0..64)
            .map(|i| fiber::spawn(move || i))
            .map(|h| h.join().unwrap())
            .sum::<i32>()
    });
    assert_eq!(v, 2016);
}

#[test]
fn explicit_runtime_shuts_down() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    assert_eq!(rt.block_on(|| 3), 3);
    rt.shutdown();
}

#[test]
fn a_panicking_block_on_resumes_the_panic() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("inner"));
    }));
    assert!(r.is_err());
    assert_eq!(rt.block_on(|| 1), 1);
}
