//! A type-erased `FnOnce() + Send` that lives inline in a timer slot.
//!
//! Timeout closures are small (an id, an `Arc`, a waker), so storing them in
//! the slot itself instead of a `Box<dyn FnOnce>` saves one allocation and
//! one free per timer: a steady add/cancel loop then allocates nothing.
//! Closures that do not fit are boxed, and the box (one pointer) is stored
//! inline instead.

use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

/// Inline capacity in machine words: four words hold an `Arc` plus a couple of
/// ids, and keep a whole slot within one 64-byte cache line.
const INLINE_WORDS: usize = 4;

type Storage = MaybeUninit<[usize; INLINE_WORDS]>;

/// Runs (`run == true`) or drops the closure stored in `*storage`, consuming it.
type Invoke = unsafe fn(storage: *mut Storage, run: bool);

/// An erased closure. Dropping it drops the closure without running it.
pub(crate) struct Callback {
    storage: Storage,
    invoke: Invoke,
}

impl Callback {
    /// Erases `f`, inline if it fits, boxed otherwise.
    pub(crate) fn new<F: FnOnce() + Send + 'static>(f: F) -> Self {
        if fits::<F>() {
            Self::store(f)
        } else {
            // `Box<F>` is itself `FnOnce` and always fits (one pointer).
            Self::store(Box::new(f))
        }
    }

    fn store<G: FnOnce() + Send + 'static>(g: G) -> Self {
        // Compile-time constant: only ever false in the arm `new` never takes.
        assert!(fits::<G>());
        let mut storage = Storage::uninit();
        // SAFETY: `G` fits in `storage` in size and alignment (asserted above),
        // and `storage` is exclusively ours.
        unsafe { storage.as_mut_ptr().cast::<G>().write(g) };
        Self {
            storage,
            invoke: invoke::<G>,
        }
    }

    /// Runs the closure, consuming it.
    pub(crate) fn run(self) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `storage` holds a live `G` matching `invoke` (set together in
        // `store`); `ManuallyDrop` guarantees `Drop` will not consume it again.
        unsafe { (this.invoke)(&mut this.storage, true) }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        // SAFETY: as in `run`: `storage` holds a live closure of the type
        // `invoke` was instantiated with, and it is consumed exactly once here.
        unsafe { (self.invoke)(&mut self.storage, false) }
    }
}

const fn fits<G>() -> bool {
    size_of::<G>() <= size_of::<Storage>() && align_of::<G>() <= align_of::<Storage>()
}

/// # Safety
/// `storage` must hold a live, initialised `G`; it is moved out, so the caller
/// must not use it again.
unsafe fn invoke<G: FnOnce()>(storage: *mut Storage, run: bool) {
    // SAFETY: guaranteed by the caller (see above).
    let g = unsafe { storage.cast::<G>().read() };
    if run {
        g();
    } else {
        drop(g);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn small_and_large_closures_run_or_drop_exactly_once() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        Callback::new(move || {
            h.fetch_add(1, Ordering::Relaxed);
        })
        .run();
        let big = [7u64; 16];
        let h = hits.clone();
        Callback::new(move || {
            h.fetch_add(big[3] as usize, Ordering::Relaxed);
        })
        .run();
        assert_eq!(hits.load(Ordering::Relaxed), 8);
        // Dropping without running releases captures.
        let h = hits.clone();
        drop(Callback::new(move || drop(h)));
        let h = hits.clone();
        drop(Callback::new(move || drop((h, big))));
        assert_eq!(Arc::strong_count(&hits), 1);
    }
}
