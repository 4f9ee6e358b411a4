//! A dispatcher's batches against the readiness slab's trim
//! (`BatchCounter`): the trim bumps a free entry's version, fences and
//! waits for the batches that may have matched the old one; then it
//! releases the entry's page (a write). A batch looks the entry up by a
//! stale token (old version) and touches it only if the version matches.
//! Loom checks that no touch races with the release.

use crate::io::batch::BatchCounter;
use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicU32};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

struct Shared {
    batch: BatchCounter,
    version: AtomicU32,
    /// Stands for the entry's bytes.
    page: UnsafeCell<u32>,
}

// SAFETY: test only: loom checks every access to `page` for races.
unsafe impl Sync for Shared {}

#[test]
fn loom_no_batch_touches_a_released_entry() {
    super::model(|| {
        let s = Arc::new(Shared {
            batch: BatchCounter::new(),
            version: AtomicU32::new(1),
            page: UnsafeCell::new(7),
        });
        let poller = {
            let s = s.clone();
            thread::spawn(move || {
                for _ in 0..2 {
                    let _batch = s.batch.begin();
                    if s.version.load(Ordering::Acquire) == 1 {
                        // SAFETY: a test read; loom reports a race with
                        // the release.
                        let v = s.page.with(|p| unsafe { *p });
                        assert_eq!(v, 7, "a batch read a released entry");
                    }
                }
            })
        };
        // The slot's release (its version moves on), then the trim.
        s.version.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        let settled = s.batch.wait_done(|| {
            loom::thread::yield_now();
            false
        });
        assert!(settled);
        // SAFETY: a test write; loom reports a race with any batch's read.
        s.page.with_mut(|p| unsafe { *p = 0 });
        poller.join().unwrap();
    });
}
