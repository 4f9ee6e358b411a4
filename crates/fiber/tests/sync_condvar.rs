//! `sync::Condvar` with `sync::Mutex`, fibers and threads mixed.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

struct Queue {
    items: Mutex<(VecDeque<u64>, bool)>,
    not_empty: Condvar,
    not_full: Condvar,
}

const CAP: usize = 8;

impl Queue {
    fn push(&self, v: u64) {
        let mut g = self
            .not_full
            .wait_while(self.items.lock(), |(q, _)| q.len() >= CAP);
        g.0.push_back(v);
        drop(g);
        self.not_empty.notify_one();
    }

    fn pop(&self) -> Option<u64> {
        let mut g = self
            .not_empty
            .wait_while(self.items.lock(), |(q, done)| q.is_empty() && !*done);
        let v = g.0.pop_front();
        drop(g);
        self.not_full.notify_one();
        v
    }
}

#[test]
fn producer_consumer_threads_and_fibers_mixed() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let q = Arc::new(Queue {
        items: Mutex::new((VecDeque::new(), false)),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    const PER: u64 = 5000;
    // Two fiber producers, two thread producers; two fiber consumers, two
    // thread consumers.
    let mut producers = Vec::new();
    for p in 0..4u64 {
        let q = q.clone();
        let work = move || {
            for i in 0..PER {
                q.push(p * PER + i);
            }
        };
        if p % 2 == 0 {
            let h = rt.spawn(work);
            producers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>);
        } else {
            let t = std::thread::spawn(work);
            producers.push(Box::new(move || t.join().unwrap()));
        }
    }
    let mut consumers: Vec<Box<dyn FnOnce() -> Vec<u64>>> = Vec::new();
    for c in 0..4 {
        let q = q.clone();
        let work = move || {
            let mut got = Vec::new();
            while let Some(v) = q.pop() {
                got.push(v);
            }
            got
        };
        if c % 2 == 0 {
            let h = rt.spawn(work);
            consumers.push(Box::new(move || h.join().unwrap()));
        } else {
            let t = std::thread::spawn(work);
            consumers.push(Box::new(move || t.join().unwrap()));
        }
    }
    for p in producers {
        p();
    }
    q.items.lock().1 = true;
    q.not_empty.notify_all();
    let mut all: Vec<u64> = consumers.into_iter().flat_map(|c| c()).collect();
    all.sort_unstable();
    assert_eq!(all, (0..4 * PER).collect::<Vec<_>>());
}

#[test]
fn wait_timeout_fires_thread_and_fiber() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let pair = Arc::new((Mutex::new(0), Condvar::new()));
    let (m, cv) = &*pair;
    let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(20));
    assert!(r.timed_out());
    drop(g);
    let p = pair.clone();
    let timed_out = rt.block_on(move || {
        let (m, cv) = &*p;
        let (g, r) = cv.wait_timeout(m.lock(), Duration::from_millis(20));
        // The lock is held again after the timeout.
        assert!(m.try_lock().is_none());
        drop(g);
        r.timed_out()
    });
    assert!(timed_out);
    let (g, r) = cv.wait_timeout_while(m.lock(), Duration::from_millis(20), |v| *v == 0);
    assert!(r.timed_out());
    assert_eq!(*g, 0);
}

#[test]
fn notify_all_wakes_every_waiter() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let s = Arc::new((Mutex::new((false, 0u32)), Condvar::new()));
    let mut fibers = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        fibers.push(rt.spawn(move || {
            let (m, cv) = &*s;
            let mut g = cv.wait_while(m.lock(), |st| !st.0);
            g.1 += 1;
        }));
    }
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let (m, cv) = &*s;
                let mut g = cv.wait_while(m.lock(), |st| !st.0);
                g.1 += 1;
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    s.0.lock().0 = true;
    s.1.notify_all();
    for h in fibers {
        h.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.0.lock().1, 53);
}

#[test]
fn wait_interruptible_returns_interrupted_with_lock_held() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let s = Arc::new((Mutex::new(7), Condvar::new()));
    let s2 = s.clone();
    let h = rt.spawn(move || {
        let (m, cv) = &*s2;
        let (g, r) = cv.wait_interruptible(m.lock());
        (*g, r)
    });
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), (7, Err(fiber::Interrupted)));
    assert!(s.0.try_lock().is_some());
}
