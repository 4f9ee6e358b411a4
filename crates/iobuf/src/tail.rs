//! `Tail`: the exclusive right to write the unused end of an owned block.
//!
//! This is how the crate keeps sharing sound: a block's bytes are written
//! only through a `Tail`, only past `filled`, and refs are created only over
//! bytes before `filled`. A `Tail` is never cloned, so at any time at most
//! one writer exists per block, and no `BlockRef` ever covers a byte that is
//! still going to be written (bRPC's rule for thread-local blocks).

use std::ptr::NonNull;

use crate::block::Block;
use crate::block_pool;
use crate::block_ref::BlockRef;
use crate::ref_queue::RefQueue;

/// An owned block plus how much of it is filled. Holds one reference.
pub(crate) struct Tail {
    block: NonNull<Block>,
    filled: u32,
    /// Copy of the block's capacity (saves a dereference per write).
    cap: u32,
}

// SAFETY: a Tail owns one reference (atomic refcount) and the exclusive
// right to write `[filled, cap)`; moving that right to another thread is
// fine because no one else can observe those bytes.
unsafe impl Send for Tail {}

impl Tail {
    /// A fresh, empty block.
    #[inline]
    pub(crate) fn new() -> Tail {
        let block = block_pool::alloc_block();
        // SAFETY: `alloc_block` returns a live block we hold a reference on.
        let cap = unsafe { block.as_ref() }.cap();
        Tail {
            block,
            filled: 0,
            cap,
        }
    }

    #[inline]
    fn block(&self) -> &Block {
        // SAFETY: the Tail holds a reference, so the block is live.
        unsafe { self.block.as_ref() }
    }

    /// Bytes still writable.
    #[inline]
    pub(crate) fn spare(&self) -> usize {
        (self.cap - self.filled) as usize
    }

    /// True when nothing more can be written.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.filled == self.cap
    }

    /// Pointer to the first writable byte; `spare()` bytes may be written.
    #[inline]
    pub(crate) fn tail_ptr(&self) -> *mut u8 {
        // SAFETY: `filled <= cap`, so the pointer stays inside the block.
        unsafe { self.block().data().add(self.filled as usize) }
    }

    /// Copies as much of `data` as fits and appends a ref to it to `q`.
    /// Returns the number of bytes taken.
    #[inline]
    pub(crate) fn write(&mut self, q: &mut RefQueue, data: &[u8]) -> usize {
        let n = data.len().min(self.spare());
        // SAFETY: `n <= spare()` bytes at `tail_ptr()` belong to this Tail
        // only (no ref covers them, see the module doc) and cannot overlap
        // `data`, which is borrowed from elsewhere (a ref would need to
        // cover these bytes for `data` to alias them).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.tail_ptr(), n);
            self.commit(q, n);
        }
        n
    }

    /// Marks `n` bytes at `tail_ptr()` as filled and appends a ref covering
    /// them to `q` — extending `q`'s last ref instead when it ends right
    /// where the new bytes start (no refcount traffic then).
    ///
    /// # Safety
    /// The first `n <= spare()` bytes at `tail_ptr()` must have been
    /// initialized.
    #[inline]
    pub(crate) unsafe fn commit(&mut self, q: &mut RefQueue, n: usize) {
        if n == 0 {
            return;
        }
        debug_assert!(n <= self.spare());
        let n32 = n as u32;
        if !q.try_extend_back(self.block.as_ptr(), self.filled, n32) {
            // SAFETY: we hold a reference; the range was just initialized and
            // lies before the new `filled`, so no writer will touch it again.
            let r = unsafe { BlockRef::share(self.block, self.filled, n32) };
            q.push_back_unmerged(r);
        }
        self.filled += n32;
    }
}

impl Drop for Tail {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the Tail owns one reference and is not used afterwards.
        unsafe { Block::dec_ref(self.block) };
    }
}
