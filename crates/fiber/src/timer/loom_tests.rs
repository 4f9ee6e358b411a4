//! Model checks of the lock-free part: the per-slot state machine (arm, fire,
//! cancel, reuse). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p fibrpc-fiber --release --lib timer`.
//!
//! The buckets and the table's growth are under mutexes; the wake-up protocol
//! of the timer thread goes through a futex, which loom cannot model (its
//! argument is written next to the code, in `thread.rs`).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::callback::Callback;
use super::slot::{Slot, SlotCancel, ID_VERSION_MASK};

fn counting(hits: &Arc<AtomicUsize>, by: usize) -> Callback {
    let hits = hits.clone();
    Callback::new(move || {
        hits.fetch_add(by, Ordering::SeqCst);
    })
}

/// Firing and cancelling race: exactly one wins, and `Running` is only ever
/// reported while the callback really runs.
#[test]
fn fire_races_cancel() {
    loom::model(|| {
        let slot = Arc::new(Slot::new());
        let hits = Arc::new(AtomicUsize::new(0));
        // SAFETY: a fresh slot is owned by its creator.
        let v = unsafe { slot.arm(counting(&hits, 1), 0) };
        let s = slot.clone();
        let firer = thread::spawn(move || {
            if let Some(cb) = s.try_fire(v) {
                cb.run();
                s.finish_run(v);
                true
            } else {
                false
            }
        });
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
        let slot = Arc::new(Slot::new());
        let hits = Arc::new(AtomicUsize::new(0));
        // SAFETY: a fresh slot is owned by its creator.
        let v1 = unsafe { slot.arm(counting(&hits, 1), 0) };
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
            if let Some(cb) = s.try_fire(v1) {
                cb.run();
                s.finish_run(v1);
            }
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
        let slot = Arc::new(Slot::new());
        let hits = Arc::new(AtomicUsize::new(0));
        // SAFETY: a fresh slot is owned by its creator.
        let v = unsafe { slot.arm(counting(&hits, 1), 0) } & ID_VERSION_MASK;
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
