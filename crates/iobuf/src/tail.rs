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

    /// `write` for data known to fit (`data.len() <= spare()`), with an
    /// inline copy for short data: the libc `memcpy` call and its size
    /// dispatch cost more than the copy itself for the few bytes of a
    /// header or a small payload.
    #[inline]
    pub(crate) fn write_fitting(&mut self, q: &mut RefQueue, data: &[u8]) {
        assert!(data.len() <= self.spare());
        // SAFETY: as in `write`: the destination is this Tail's own unused
        // bytes, `data.len()` of which exist, and `data` cannot alias them.
        unsafe {
            copy_short(data, self.tail_ptr());
            self.commit(q, data.len());
        }
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

/// Copies `src` to `dst`, inline for up to 32 bytes (two possibly
/// overlapping unaligned loads and stores, as `memcpy` itself does), and
/// through `copy_nonoverlapping` beyond.
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes and not overlap
/// `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) {
    use std::ptr::{read_unaligned, write_unaligned};
    let n = src.len();
    let s = src.as_ptr();
    // SAFETY: in every branch, each access is at an offset in `[0, n)` of
    // `src` (readable, `n` bytes) or of `dst` (writable, `n` bytes by the
    // caller's contract): the branch conditions keep `n - 16`, `n - 8`,
    // `n - 4` non-negative and the widths within `n`. The regions do not
    // overlap, so the order of loads and stores does not matter.
    unsafe {
        if (16..=32).contains(&n) {
            let a = read_unaligned(s.cast::<u128>());
            let b = read_unaligned(s.add(n - 16).cast::<u128>());
            write_unaligned(dst.cast::<u128>(), a);
            write_unaligned(dst.add(n - 16).cast::<u128>(), b);
        } else if (8..16).contains(&n) {
            let a = read_unaligned(s.cast::<u64>());
            let b = read_unaligned(s.add(n - 8).cast::<u64>());
            write_unaligned(dst.cast::<u64>(), a);
            write_unaligned(dst.add(n - 8).cast::<u64>(), b);
        } else if (4..8).contains(&n) {
            let a = read_unaligned(s.cast::<u32>());
            let b = read_unaligned(s.add(n - 4).cast::<u32>());
            write_unaligned(dst.cast::<u32>(), a);
            write_unaligned(dst.add(n - 4).cast::<u32>(), b);
        } else if n < 4 {
            for i in 0..n {
                *dst.add(i) = *s.add(i);
            }
        } else {
            std::ptr::copy_nonoverlapping(s, dst, n);
        }
    }
}
