//! A slab segment's pin word (`SegmentGate`): readers pin, read a slot's
//! cell and unpin; the trim marks the segment released, zeroes the cell
//! (the page release), writes it afresh (the revival) and reopens. Loom
//! checks that no read races with those writes, that no pin succeeds
//! while the segment is released, and that the word ends at 0.

use crate::runtime::segment_gate::SegmentGate;
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

struct Segment {
    gate: SegmentGate,
    /// Stands for a meta's cells: 7 before the trim, 0 while released, 1
    /// once revived.
    cell: UnsafeCell<u32>,
    /// Set by the trim between its `try_release` and its `reopen`.
    released: AtomicBool,
}

// SAFETY: test only: loom checks every access to `cell` for races, which
// is the point of the test.
unsafe impl Sync for Segment {}

fn reader(s: &Segment) {
    if !s.gate.try_pin() {
        return;
    }
    assert!(
        !s.released.load(Ordering::Relaxed),
        "a pin succeeded while the segment was released"
    );
    // SAFETY: a test read; loom reports a race with the trim's writes.
    let v = s.cell.with(|v| unsafe { *v });
    assert!(v == 7 || v == 1, "read a released cell: {v}");
    s.gate.unpin();
}

fn trimmer(s: &Segment) {
    if !s.gate.try_release() {
        return;
    }
    s.released.store(true, Ordering::Relaxed);
    // SAFETY: test writes; loom reports a race with any pinned read.
    s.cell.with_mut(|v| unsafe { *v = 0 });
    // SAFETY: as above.
    s.cell.with_mut(|v| unsafe { *v = 1 });
    s.released.store(false, Ordering::Relaxed);
    s.gate.reopen();
}

#[test]
fn loom_segment_gate_two_readers_and_a_trim() {
    super::model(|| {
        let s = Arc::new(Segment {
            gate: SegmentGate::new(),
            cell: UnsafeCell::new(7),
            released: AtomicBool::new(false),
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || reader(&s))
            })
            .collect();
        trimmer(&s);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(s.gate.word(), 0, "pins or the released mark left over");
    });
}
