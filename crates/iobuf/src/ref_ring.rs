//! `RefRing`: the big view's storage, a ring of `BlockRef`s whose capacity
//! is a power of two so that indexing is a mask, not a division.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::block_ref::BlockRef;

/// First capacity when a small view spills (bRPC starts at 32; most
/// spilled buffers hold a handful of refs, so we start smaller).
const INITIAL_CAP: u32 = 8;

/// Ring of refs plus the byte count (kept so `len()` is O(1)).
pub(crate) struct RefRing {
    buf: NonNull<MaybeUninit<BlockRef>>,
    start: u32,
    nref: u32,
    cap_mask: u32,
    pub(crate) nbytes: usize,
}

// SAFETY: the ring owns its BlockRefs, which are Send.
unsafe impl Send for RefRing {}
// SAFETY: `&RefRing` only gives out `&BlockRef`, which is Sync.
unsafe impl Sync for RefRing {}

fn layout(cap: u32) -> Layout {
    match Layout::array::<BlockRef>(cap as usize) {
        Ok(l) => l,
        Err(_) => panic!("IOBuf: too many refs"),
    }
}

fn alloc_buf(cap: u32) -> NonNull<MaybeUninit<BlockRef>> {
    let l = layout(cap);
    // SAFETY: `cap >= INITIAL_CAP > 0`, so the layout is non-zero.
    let p = unsafe { alloc(l) };
    match NonNull::new(p) {
        Some(p) => p.cast(),
        None => handle_alloc_error(l),
    }
}

impl RefRing {
    /// A ring holding `a` then `b` (the two refs of a full small view).
    pub(crate) fn from_pair(a: BlockRef, b: BlockRef) -> RefRing {
        let nbytes = a.len() as usize + b.len() as usize;
        let mut r = RefRing {
            buf: alloc_buf(INITIAL_CAP),
            start: 0,
            nref: 0,
            cap_mask: INITIAL_CAP - 1,
            nbytes: 0,
        };
        r.push_back_raw(a);
        r.push_back_raw(b);
        r.nbytes = nbytes;
        r
    }

    #[inline]
    fn slot(&self, i: u32) -> *mut MaybeUninit<BlockRef> {
        // SAFETY: the mask keeps the index inside the allocation.
        unsafe {
            self.buf
                .as_ptr()
                .add(((self.start + i) & self.cap_mask) as usize)
        }
    }

    /// Number of refs.
    #[inline]
    pub(crate) fn nref(&self) -> usize {
        self.nref as usize
    }

    /// The i-th ref from the front. `i < nref`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &BlockRef {
        assert!(i < self.nref as usize);
        // SAFETY: slots `[start, start+nref)` (mod cap) are initialized.
        unsafe { (*self.slot(i as u32)).assume_init_ref() }
    }

    /// Mutable access to the i-th ref. Callers fix `nbytes` themselves.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut BlockRef {
        assert!(i < self.nref as usize);
        // SAFETY: slots `[start, start+nref)` (mod cap) are initialized.
        unsafe { (*self.slot(i as u32)).assume_init_mut() }
    }

    /// Appends without touching `nbytes`.
    #[inline]
    pub(crate) fn push_back_raw(&mut self, r: BlockRef) {
        if self.nref > self.cap_mask {
            self.grow();
        }
        // SAFETY: after `grow` there is a free slot at `start + nref`.
        unsafe { (*self.slot(self.nref)).write(r) };
        self.nref += 1;
    }

    /// Removes the front ref (without touching `nbytes`).
    #[inline]
    pub(crate) fn pop_front_raw(&mut self) -> Option<BlockRef> {
        if self.nref == 0 {
            return None;
        }
        // SAFETY: the front slot is initialized; we mark it free right after
        // moving the value out.
        let r = unsafe { (*self.slot(0)).assume_init_read() };
        self.start = (self.start + 1) & self.cap_mask;
        self.nref -= 1;
        Some(r)
    }

    /// Removes the back ref (without touching `nbytes`).
    #[inline]
    pub(crate) fn pop_back_raw(&mut self) -> Option<BlockRef> {
        if self.nref == 0 {
            return None;
        }
        self.nref -= 1;
        // SAFETY: the slot was the last initialized one and is now outside
        // `[start, start+nref)`, so it is read exactly once.
        Some(unsafe { (*self.slot(self.nref)).assume_init_read() })
    }

    #[cold]
    fn grow(&mut self) {
        let old_cap = self.cap_mask + 1;
        let new_cap = old_cap.checked_mul(2).expect("IOBuf: too many refs");
        let new_buf = alloc_buf(new_cap);
        for i in 0..self.nref {
            // SAFETY: moves the initialized slots, in order, into the new
            // buffer which has room for all of them; the old slots are then
            // freed without being dropped.
            unsafe {
                let v = (*self.slot(i)).assume_init_read();
                (*new_buf.as_ptr().add(i as usize)).write(v);
            }
        }
        // SAFETY: `buf` was allocated with `layout(old_cap)` and holds no
        // initialized value any more.
        unsafe { dealloc(self.buf.as_ptr().cast(), layout(old_cap)) };
        self.buf = new_buf;
        self.start = 0;
        self.cap_mask = new_cap - 1;
    }
}

impl Drop for RefRing {
    fn drop(&mut self) {
        while self.pop_front_raw().is_some() {}
        // SAFETY: allocated with this capacity's layout; no value left in it.
        unsafe { dealloc(self.buf.as_ptr().cast(), layout(self.cap_mask + 1)) };
    }
}
