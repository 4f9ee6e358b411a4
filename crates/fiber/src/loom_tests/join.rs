//! The join handshake and the slot's two owners (`task::packet`): the
//! fiber stores its result, bumps the version and wakes joiners, then lets
//! go of the slot; the handle takes the result after seeing the bump, or is
//! dropped at any time. The result is dropped exactly once, after it was
//! written (loom checks the cell accesses), and exactly one owner is last
//! (recycles the slot).

use crate::butex::Butex;
use crate::task::packet::{Payload, ResultVTable};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

/// The value the fiber writes and the result's drop reads.
struct Cell(UnsafeCell<u32>);
// SAFETY: test only: loom checks every access to the inner cell for races,
// which is the point of the test.
unsafe impl Sync for Cell {}

/// A result that checks, when dropped, that the fiber's write of it
/// happened before (else loom reports a race) and counts its drops.
struct Checked {
    cell: Arc<Cell>,
    drops: Arc<AtomicUsize>,
}

impl Drop for Checked {
    fn drop(&mut self) {
        // SAFETY: loom's cell: a racy access is reported, not UB.
        self.cell.0.with(|p| assert_eq!(unsafe { *p }, 42));
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

struct Shared {
    version: Butex,
    payload: Payload,
    lasts: AtomicUsize,
    /// Stand for the slot's memory (the payload buffer is a plain cell
    /// loom cannot see): each owner writes its own before letting go, the
    /// last one reads both when recycling, so loom checks that the release
    /// orders the other owner's accesses before the recycling.
    touched: [Cell; 2],
}

impl Shared {
    /// One owner's last touch of the slot, then its release.
    fn let_go(&self, owner: usize, release: impl FnOnce() -> bool) {
        // SAFETY: loom's cell.
        self.touched[owner].0.with_mut(|p| unsafe { *p = 1 });
        if release() {
            // The last owner recycles: it must see both touches.
            for t in &self.touched {
                // SAFETY: loom's cell.
                t.0.with(|p| assert_eq!(unsafe { *p }, 1));
            }
            self.lasts.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn setup() -> (Arc<Shared>, Arc<AtomicUsize>, Arc<Cell>) {
    let shared = Arc::new(Shared {
        version: Butex::new(1),
        payload: Payload::new(),
        lasts: AtomicUsize::new(0),
        touched: [Cell(UnsafeCell::new(0)), Cell(UnsafeCell::new(0))],
    });
    (
        shared,
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Cell(UnsafeCell::new(0))),
    )
}

/// The fiber: run, bump, wake, release (as `run_body` + `finish`).
fn fiber_side(s: &Shared, entry: &crate::task::packet::EntryVTable) {
    // SAFETY: this thread plays the fiber holding the run token.
    unsafe { s.payload.run(entry) };
    s.version.value().store(2, Ordering::Release);
    s.version.wake_all();
    // SAFETY: the fiber releases once, after its last payload access.
    s.let_go(0, || unsafe { s.payload.release_fiber(entry) });
}

/// A slot whose closure writes the cell and returns a drop-counted value,
/// and a thread playing its fiber.
fn start_fiber() -> (
    Arc<Shared>,
    Arc<AtomicUsize>,
    thread::JoinHandle<()>,
    ResultVTable<Checked>,
) {
    let (s, drops, cell) = setup();
    let d = drops.clone();
    let make = move || {
        // SAFETY: loom's cell; nothing else touches it yet.
        cell.0.with_mut(|p| unsafe { *p = 42 });
        Checked { cell, drops: d }
    };
    // SAFETY: the slot is fresh and ours.
    let (entry, result) = unsafe { s.payload.init(make) };
    let s2 = s.clone();
    let fiber = thread::spawn(move || fiber_side(&s2, entry));
    (s, drops, fiber, result)
}

#[test]
fn joiner_takes_result_after_version_bump() {
    super::model(|| {
        let (s, drops, fiber, result) = start_fiber();
        while s.version.value().load(Ordering::Acquire) == 1 {
            let _ = s.version.wait(1, None);
        }
        // SAFETY: we play the handle and saw the bump with Acquire.
        let r = unsafe { s.payload.take(&result) }.unwrap().unwrap();
        // SAFETY: as above; taken once.
        assert!(unsafe { s.payload.take(&result) }.is_none());
        drop(r);
        // SAFETY: the handle releases once.
        s.let_go(1, || unsafe { s.payload.release_handle(&result) });
        fiber.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert_eq!(s.lasts.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn detached_handle_drops_result_once() {
    super::model(|| {
        let (s, drops, fiber, result) = start_fiber();
        // The handle is dropped without joining, racing with the fiber.
        // SAFETY: the handle releases once.
        s.let_go(1, || unsafe { s.payload.release_handle(&result) });
        fiber.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert_eq!(s.lasts.load(Ordering::Relaxed), 1);
    });
}
