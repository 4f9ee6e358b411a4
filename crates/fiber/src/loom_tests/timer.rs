//! Model checks of the timer's lock-free part: the per-slot state machine
//! (arm, fire, cancel, reuse).
//!
//! The buckets and the table's growth are under mutexes. The timer thread's
//! sleep/wake protocol (lock-free: a `nearest` word, a futex word) lives in
//! `timer/thread.rs` tangled with real time and a real futex, so it is
//! checked here on a replica of its steps (keep the two in sync): a futex is
//! modelled by a mutex + condvar with the kernel's check-then-sleep
//! atomicity, and a simulated clock checks that the timer never sleeps
//! through a task it should have been woken for.

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use crate::timer::callback::Callback;
use crate::timer::slot::{Slot, SlotCancel, ID_VERSION_MASK};

fn counting(hits: &Arc<AtomicUsize>, by: usize) -> Callback {
    let hits = hits.clone();
    Callback::new(move || {
        hits.fetch_add(by, Ordering::SeqCst);
    })
}

/// A fresh slot armed with a callback that adds 1 to the returned counter,
/// and the version `arm` returned.
fn armed_slot() -> (Arc<Slot>, Arc<AtomicUsize>, u64) {
    let slot = Arc::new(Slot::new());
    let hits = Arc::new(AtomicUsize::new(0));
    // SAFETY: a fresh slot is owned by its creator.
    let v = unsafe { slot.arm(counting(&hits, 1), 0) };
    (slot, hits, v)
}

/// What the timer thread does with a heap entry of version `v`: fire the
/// slot and, if that won, run the callback. Returns whether it ran.
fn fire(slot: &Slot, v: u64) -> bool {
    match slot.try_fire(v) {
        Some(cb) => {
            cb.run();
            slot.finish_run(v);
            true
        }
        None => false,
    }
}

/// Firing and cancelling race: exactly one wins, and `Running` is only ever
/// reported while the callback really runs.
#[test]
fn fire_races_cancel() {
    loom::model(|| {
        let (slot, hits, v) = armed_slot();
        let s = slot.clone();
        let firer = thread::spawn(move || fire(&s, v));
        let outcome = slot.try_cancel(Some(v & ID_VERSION_MASK));
        let fired = firer.join().unwrap();
        match outcome {
            SlotCancel::Cancelled { cb, .. } => {
                assert!(!fired);
                drop(cb);
            }
            SlotCancel::Running | SlotCancel::NotFound => assert!(fired),
        }
        assert_eq!(hits.load(Ordering::SeqCst), usize::from(fired));
    });
}

/// A canceller that wins reuses the slot at once; a stale fire attempt (the
/// old heap entry) and a stale cancel (the old id) must not touch the new
/// occupant, and loom checks the callback cell is never accessed concurrently.
#[test]
fn stale_fire_and_cancel_after_reuse() {
    loom::model(|| {
        let (slot, hits, v1) = armed_slot();
        let (s, h) = (slot.clone(), hits.clone());
        let owner = thread::spawn(move || match s.try_cancel(Some(v1 & ID_VERSION_MASK)) {
            SlotCancel::Cancelled { cb, .. } => {
                drop(cb);
                // SAFETY: winning the cancel made the slot ours (free).
                Some(unsafe { s.arm(counting(&h, 100), 0) })
            }
            _ => None,
        });
        let s = slot.clone();
        let stale = thread::spawn(move || {
            fire(&s, v1);
        });
        let v2 = owner.join().unwrap();
        stale.join().unwrap();
        let h = hits.load(Ordering::SeqCst);
        match v2 {
            Some(v2) => {
                assert_ne!(v2, v1);
                assert_eq!(h, 0, "neither the cancelled nor the new callback ran");
                // The stale id cannot cancel the new occupant; its own can.
                assert!(matches!(
                    slot.try_cancel(Some(v1 & ID_VERSION_MASK)),
                    SlotCancel::NotFound
                ));
                match slot.try_cancel(Some(v2 & ID_VERSION_MASK)) {
                    SlotCancel::Cancelled { cb, .. } => drop(cb),
                    _ => panic!("the new occupant must be cancellable"),
                }
            }
            None => assert_eq!(h, 1, "the cancel lost, so the first callback ran"),
        }
    });
}

/// Two cancels of the same id: exactly one wins.
#[test]
fn double_cancel() {
    loom::model(|| {
        let (slot, hits, v) = armed_slot();
        let v = v & ID_VERSION_MASK;
        let s = slot.clone();
        let other = thread::spawn(move || match s.try_cancel(Some(v)) {
            SlotCancel::Cancelled { cb, .. } => {
                drop(cb);
                true
            }
            _ => false,
        });
        let mine = match slot.try_cancel(Some(v)) {
            SlotCancel::Cancelled { cb, .. } => {
                drop(cb);
                true
            }
            _ => false,
        };
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        assert_eq!(Arc::strong_count(&hits), 1);
    });
}

mod wake_protocol {
    //! The clock is the test's main thread: once every adder has finished it
    //! "reaches" the deadline the timer sleeps until (`tick`). If the timer
    //! then wakes by that tick alone (no signal since it decided to sleep),
    //! every task it finds must be one it was right to sleep through: not
    //! earlier than its planned wake-up, and no bucket left crowded.

    use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// `PULL_THRESHOLD`, scaled down.
    const THRESHOLD: usize = 2;

    /// A bucket: new tasks (deadlines) and their nearest deadline.
    type Bucket = Mutex<(Vec<u64>, u64)>;

    struct Model {
        buckets: Vec<Bucket>,
        nearest: AtomicU64,
        nsignals: AtomicU32,
        futex: (Mutex<()>, Condvar),
        tick: AtomicBool,
    }

    impl Model {
        fn new(buckets: usize) -> Arc<Self> {
            Arc::new(Self {
                buckets: (0..buckets)
                    .map(|_| Mutex::new((Vec::new(), u64::MAX)))
                    .collect(),
                nearest: AtomicU64::new(0),
                nsignals: AtomicU32::new(0),
                futex: (Mutex::new(()), Condvar::new()),
                tick: AtomicBool::new(false),
            })
        }

        /// `Shared::add` after the slot is armed.
        fn add(&self, bucket: usize, deadline: u64) {
            let mut b = self.buckets[bucket].lock().unwrap();
            b.0.push(deadline);
            let earlier = deadline < b.1;
            if earlier {
                b.1 = deadline;
            }
            let crowded = b.0.len() == THRESHOLD;
            drop(b);
            if (earlier && self.nearest.fetch_min(deadline, SeqCst) > deadline) || crowded {
                self.signal();
            }
        }

        /// `Shared::signal`: bump the word, then FUTEX_WAKE.
        fn signal(&self) {
            self.nsignals.fetch_add(1, SeqCst);
            let _g = self.futex.0.lock().unwrap();
            self.futex.1.notify_all();
        }

        /// Time reaches the timer's planned wake-up.
        fn tick(&self) {
            self.tick.store(true, SeqCst);
            let _g = self.futex.0.lock().unwrap();
            self.futex.1.notify_all();
        }

        /// FUTEX_WAIT with a timeout: compares the word and sleeps atomically
        /// with respect to wakes. Returns whether it was signalled.
        fn futex_wait(&self, expected: u32) -> bool {
            let mut g = self.futex.0.lock().unwrap();
            loop {
                if self.nsignals.load(SeqCst) != expected {
                    return true;
                }
                if self.tick.load(SeqCst) {
                    return false;
                }
                g = self.futex.1.wait(g).unwrap();
            }
        }

        /// `Shared::run`, until its first wake-up by timeout.
        fn timer(&self, mut heap: Vec<u64>) {
            let mut slept_until = None;
            loop {
                self.nearest.swap(0, SeqCst);
                for b in &self.buckets {
                    let mut b = b.lock().unwrap();
                    if let Some(next) = slept_until {
                        assert!(b.0.iter().all(|&d| d >= next), "slept through {:?}", b.0);
                        assert!(b.0.len() < THRESHOLD, "slept on a crowded bucket");
                    }
                    heap.append(&mut b.0);
                    b.1 = u64::MAX;
                }
                if slept_until.is_some() {
                    return;
                }
                let next = heap.iter().copied().min().unwrap_or(u64::MAX);
                let expected = self.nsignals.load(SeqCst);
                self.nearest.swap(next, SeqCst);
                if self.buckets.iter().any(|b| {
                    let b = b.lock().unwrap();
                    b.1 < next || b.0.len() >= THRESHOLD
                }) {
                    continue;
                }
                if !self.futex_wait(expected) {
                    slept_until = Some(next);
                }
            }
        }
    }

    fn run(buckets: usize, heap: Vec<u64>, adds: &'static [(usize, u64)]) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(move || {
            let m = Model::new(buckets);
            let adders: Vec<_> = adds
                .iter()
                .map(|&(b, d)| {
                    let m = m.clone();
                    thread::spawn(move || m.add(b, d))
                })
                .collect();
            let (m2, heap) = (m.clone(), heap.clone());
            let timer = thread::spawn(move || m2.timer(heap));
            for a in adders {
                a.join().unwrap();
            }
            m.tick();
            timer.join().unwrap();
        });
    }

    /// Adds in two buckets earlier than the timer's planned wake-up.
    #[test]
    fn earlier_adds_wake_the_sleeper() {
        run(2, vec![10], &[(0, 6), (1, 5)]);
    }

    /// Adds later than the planned wake-up need no wake, unless they crowd
    /// their bucket (in real life: cancelled entries that must be discarded).
    #[test]
    fn crowded_bucket_wakes_the_sleeper() {
        run(1, vec![10], &[(0, 20), (0, 30)]);
        run(1, vec![], &[(0, 20), (0, 30)]);
    }
}
