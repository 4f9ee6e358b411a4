//! What a fiber runs and where its result goes, without an allocation per
//! spawn: the closure and, later, its result live in a fixed buffer inside
//! the fiber's slot ([`Payload`], part of the `TaskMeta`), reached through a
//! type-erased vtable. A closure or result too big (or too aligned) for the
//! buffer is boxed, and the box lives in the buffer.
//!
//! The slot has two owners while a `JoinHandle` exists: the fiber and the
//! handle ([`Payload::refs`]). The fiber's version is bumped when it ends
//! (joiners wake then), but the slot is recycled — and the buffer reused —
//! only once both owners let go, so a handle reads the result of its own
//! fiber and of no other. Whoever lets go last drops what is left in the
//! buffer and recycles the slot.

use super::join::JoinError;
use crate::loom::AtomicU32;
use std::cell::UnsafeCell;
use std::mem::{align_of, size_of, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

/// Bytes of closure or result stored in the slot itself.
pub(crate) const INLINE_SIZE: usize = 64;
/// Their maximal alignment.
pub(crate) const INLINE_ALIGN: usize = 16;

#[repr(C, align(16))]
struct InlineBuf(MaybeUninit<[u8; INLINE_SIZE]>);

const _: () = assert!(align_of::<InlineBuf>() == INLINE_ALIGN);

/// What a fiber's buffer holds over its life.
enum Stage<F, T> {
    /// Before the fiber runs.
    Closure(F),
    /// After it ran (or failed to start), until the result is taken.
    Done(Result<T, JoinError>),
    /// Result taken, or dropped because nobody will take it.
    Empty,
}

/// Whether `Stage<F, T>` is stored in the buffer itself (else boxed there).
const fn fits<F, T>() -> bool {
    size_of::<Stage<F, T>>() <= INLINE_SIZE && align_of::<Stage<F, T>>() <= INLINE_ALIGN
}

/// The fiber's side of a payload's type-erased operations.
pub(crate) struct EntryVTable {
    /// Runs the closure (once), catching a panic into the result.
    run: unsafe fn(&Payload),
    /// Records that the fiber could not start (e.g. no stack could be
    /// mapped), dropping the closure.
    fail: unsafe fn(&Payload, std::io::Error),
    /// Drops the result, leaving the (still live) stage empty.
    clear: unsafe fn(&Payload),
    /// Drops whatever the buffer holds (and the box, if boxed).
    destroy: unsafe fn(&Payload),
}

/// The join handle's side: takes the result (typed) or drops the buffer.
/// Held by value in the handle (two function pointers).
pub(crate) struct ResultVTable<T> {
    take: unsafe fn(&Payload) -> Option<Result<T, JoinError>>,
    destroy: unsafe fn(&Payload),
}

impl<T> Clone for ResultVTable<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for ResultVTable<T> {}

struct VTables<F, T>(std::marker::PhantomData<(F, T)>);

impl<F, T> VTables<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    const ENTRY: EntryVTable = EntryVTable {
        run: run::<F, T>,
        fail: fail::<F, T>,
        clear: clear::<F, T>,
        destroy: destroy::<F, T>,
    };
}

/// A fiber's closure/result buffer and the count of the slot's owners.
pub(crate) struct Payload {
    buf: UnsafeCell<InlineBuf>,
    /// Owners of the slot: the fiber (until it ended) and its join handle
    /// (until dropped). 0 while the slot is free.
    refs: AtomicU32,
}

// SAFETY: the buffer is accessed under the protocol in the module docs:
// written by the spawner while it alone holds the fresh slot, then by the
// fiber holding the run token, then (after the version bump, Release →
// Acquire) by the handle or, after the last `release` (AcqRel), by the last
// owner alone. Its contents are `Send` (spawn's bounds), so they may be
// dropped or taken on another thread.
unsafe impl Sync for Payload {}
// SAFETY: as above.
unsafe impl Send for Payload {}

impl Payload {
    pub(crate) fn new() -> Self {
        Payload {
            buf: UnsafeCell::new(InlineBuf(MaybeUninit::uninit())),
            refs: AtomicU32::new(0),
        }
    }

    /// Stores `f` (in place if it fits) and gives the slot its two owners.
    /// Returns the fiber's and the handle's vtables.
    ///
    /// # Safety
    /// The caller alone holds the freshly allocated slot (its `refs` is 0,
    /// the buffer holds nothing).
    pub(crate) unsafe fn init<F, T>(&self, f: F) -> (&'static EntryVTable, ResultVTable<T>)
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        debug_assert_eq!(self.refs.load(Ordering::Relaxed), 0, "slot still owned");
        let p = self.buf.get().cast::<u8>();
        if fits::<F, T>() {
            // SAFETY: the buffer is big and aligned enough (`fits`) and
            // unused (caller's contract).
            unsafe { p.cast::<Stage<F, T>>().write(Stage::Closure(f)) };
        } else {
            // SAFETY: a `Box` is pointer-sized and aligned; buffer unused.
            unsafe {
                p.cast::<Box<Stage<F, T>>>()
                    .write(Box::new(Stage::Closure(f)))
            };
        }
        self.refs.store(2, Ordering::Relaxed);
        let result = ResultVTable {
            take: take::<F, T>,
            destroy: destroy::<F, T>,
        };
        (&VTables::<F, T>::ENTRY, result)
    }

    /// Runs the fiber's closure. If the handle is already gone, the result
    /// is dropped right here, on the fiber (not on the worker's stack).
    ///
    /// # Safety
    /// The caller holds the fiber's run token; `vt` came from `init` for
    /// this buffer; called once.
    pub(crate) unsafe fn run(&self, vt: &EntryVTable) {
        // SAFETY: forwarded contract.
        unsafe { (vt.run)(self) };
        // Acquire: the handle's accesses (none, it never read) happen
        // before ours; 1 means only we own the slot now.
        if self.refs.load(Ordering::Acquire) == 1 {
            // SAFETY: the handle is gone, so nobody else can reach the
            // buffer; we hold the run token.
            unsafe { (vt.clear)(self) };
        }
    }

    /// Records a failure to start.
    ///
    /// # Safety
    /// As for [`run`](Self::run), instead of it.
    pub(crate) unsafe fn fail(&self, vt: &EntryVTable, err: std::io::Error) {
        // SAFETY: forwarded contract.
        unsafe { (vt.fail)(self, err) }
    }

    /// Lets go of the slot for one owner (the fiber at its end, or the
    /// handle when dropped). Returns true if the caller was the last owner:
    /// it has then dropped what the buffer held, and must recycle the slot.
    ///
    /// # Safety
    /// Called once per owner; `destroy` came from this buffer's `init`.
    pub(crate) unsafe fn release(&self, destroy: unsafe fn(&Payload)) -> bool {
        // AcqRel: the other owner's accesses to the buffer happen before
        // our destroy (and ours before its, if it is last).
        if self.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        // SAFETY: the last owner alone reaches the buffer.
        unsafe { destroy(self) };
        true
    }

    /// The fiber's result, once: `None` if taken before.
    ///
    /// # Safety
    /// The caller owns the handle, and the fiber ended (its version bump
    /// was observed with Acquire).
    pub(crate) unsafe fn take<T>(&self, vt: &ResultVTable<T>) -> Option<Result<T, JoinError>> {
        // SAFETY: forwarded contract.
        unsafe { (vt.take)(self) }
    }

    /// The handle's `release`.
    ///
    /// # Safety
    /// As for [`release`](Self::release), once, by the handle.
    pub(crate) unsafe fn release_handle<T>(&self, vt: &ResultVTable<T>) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.release(vt.destroy) }
    }

    /// The fiber's `release`.
    ///
    /// # Safety
    /// As for [`release`](Self::release), once, by the fiber at its end.
    pub(crate) unsafe fn release_fiber(&self, vt: &EntryVTable) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.release(vt.destroy) }
    }
}

/// The stage in `p`'s buffer.
///
/// # Safety
/// The buffer holds a live `Stage<F, T>` (inline or boxed) and the caller
/// may access it exclusively.
#[allow(clippy::mut_from_ref)]
unsafe fn stage<F, T>(p: &Payload) -> &mut Stage<F, T> {
    let b = p.buf.get().cast::<u8>();
    if fits::<F, T>() {
        // SAFETY: caller's contract; stored inline.
        unsafe { &mut *b.cast::<Stage<F, T>>() }
    } else {
        // SAFETY: caller's contract; stored boxed.
        unsafe { &mut *b.cast::<Box<Stage<F, T>>>() }
    }
}

unsafe fn run<F, T>(p: &Payload)
where
    F: FnOnce() -> T,
{
    // SAFETY: `Payload::run`'s contract: we hold the token.
    let s = unsafe { stage::<F, T>(p) };
    let Stage::Closure(f) = std::mem::replace(s, Stage::Empty) else {
        return;
    };
    // No reference into the buffer is held while user code runs.
    let r = catch_unwind(AssertUnwindSafe(f)).map_err(JoinError::panicked);
    // SAFETY: as above; no joiner reads before the version bump.
    unsafe { *stage::<F, T>(p) = Stage::Done(r) };
}

unsafe fn fail<F, T>(p: &Payload, err: std::io::Error) {
    // SAFETY: `Payload::fail`'s contract: we hold the token.
    unsafe { *stage::<F, T>(p) = Stage::Done(Err(JoinError::not_started(err))) };
}

unsafe fn clear<F, T>(p: &Payload) {
    // SAFETY: `Payload::run`'s contract, and the handle is gone.
    unsafe { *stage::<F, T>(p) = Stage::Empty };
}

unsafe fn take<F, T>(p: &Payload) -> Option<Result<T, JoinError>> {
    // SAFETY: `Payload::take`'s contract.
    match std::mem::replace(unsafe { stage::<F, T>(p) }, Stage::Empty) {
        Stage::Done(r) => Some(r),
        _ => None,
    }
}

unsafe fn destroy<F, T>(p: &Payload) {
    let b = p.buf.get().cast::<u8>();
    // SAFETY: `Payload::release`'s / `run`'s contract: the buffer holds a
    // live stage and we alone reach it; afterwards it is dead.
    unsafe {
        if fits::<F, T>() {
            std::ptr::drop_in_place(b.cast::<Stage<F, T>>());
        } else {
            std::ptr::drop_in_place(b.cast::<Box<Stage<F, T>>>());
        }
    }
}
