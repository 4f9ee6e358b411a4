//! `BlockRef`: one contiguous range of a block, holding a reference on it.

use std::ptr::NonNull;

use crate::block::Block;

/// bRPC's `{offset, length, block}`, kept as `{start, end, block}`. 16 bytes.
///
/// Why `end` instead of `length`: cutting from the front then moves one
/// field (`start`), and appending at the back moves one field (`end`). With
/// `{offset, length}` every front cut updated both u32s, which the compiler
/// merges into one 8-byte store; the next cut's 4-byte load of `length`
/// from that store misses store-to-load forwarding (measured on this
/// machine's Zen 3 by `benches/store_forwarding.c`: 2.5 ns per dependent
/// load instead of 0.3), and a parser's cut loop is one long chain of such
/// loads.
///
/// Invariant (relied upon by every `unsafe` read in the crate): the bytes
/// `[start, end)` of `block` are initialized and are never
/// written while any `BlockRef` covers them. Writers only ever write a
/// block's tail past every range a ref was given, and only the unique owner
/// of that tail (thread-local cache, `IOPortal`, `IOBufAppender`) writes.
pub(crate) struct BlockRef {
    start: u32,
    end: u32,
    pub(crate) block: NonNull<Block>,
}

// SAFETY: a BlockRef only reads immutable bytes and touches the block's
// refcount atomically; the block's owner (if any) is `Send + Sync`, and its
// deleter may run on whichever thread drops the last reference, which is why
// user data must be `Send`.
unsafe impl Send for BlockRef {}
// SAFETY: `&BlockRef` only allows reading immutable bytes.
unsafe impl Sync for BlockRef {}

impl BlockRef {
    /// Wraps a reference the caller already owns on `block`.
    ///
    /// # Safety
    /// The caller transfers one reference on `block` to the new `BlockRef`,
    /// and `[offset, offset+length)` must satisfy the type invariant.
    #[inline]
    pub(crate) unsafe fn adopt(block: NonNull<Block>, offset: u32, length: u32) -> BlockRef {
        debug_assert!(in_block(block, offset, length));
        BlockRef {
            start: offset,
            end: offset + length,
            block,
        }
    }

    /// A new reference on `block` for `[offset, offset+length)`.
    ///
    /// # Safety
    /// `block` must be live and the range must satisfy the type invariant.
    #[inline]
    pub(crate) unsafe fn share(block: NonNull<Block>, offset: u32, length: u32) -> BlockRef {
        // SAFETY: the caller guarantees the block is live.
        unsafe { Block::inc_ref(block) };
        debug_assert!(in_block(block, offset, length));
        BlockRef {
            start: offset,
            end: offset + length,
            block,
        }
    }

    /// Bytes covered.
    #[inline]
    pub(crate) fn len(&self) -> u32 {
        self.end - self.start
    }

    /// Whether this ref ends at `end` of `block` (so bytes appended there
    /// extend it).
    #[inline]
    pub(crate) fn ends_at(&self, block: *const Block, end: u32) -> bool {
        self.block.as_ptr().cast_const() == block && self.end == end
    }

    /// Drops the first `n` bytes. `n < self.len()`.
    #[inline]
    pub(crate) fn shrink_front(&mut self, n: u32) {
        debug_assert!(n < self.len());
        self.start += n;
    }

    /// Drops the last `n` bytes. `n < self.len()`.
    #[inline]
    pub(crate) fn shrink_back(&mut self, n: u32) {
        debug_assert!(n < self.len());
        self.end -= n;
    }

    /// Covers `n` more bytes after the end. The caller guarantees they are
    /// initialized and handed to this ref's owner (the type invariant).
    #[inline]
    pub(crate) fn grow_back(&mut self, n: u32) {
        debug_assert!(in_block(self.block, self.start, self.len() + n));
        self.end += n;
    }

    /// The bytes this reference covers.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: we hold a reference so the block is live; the range is
        // initialized and immutable by the type invariant.
        unsafe {
            let b = self.block.as_ref();
            std::slice::from_raw_parts(b.data().add(self.start as usize), self.len() as usize)
        }
    }

    /// Splits off a new reference to the first `n` bytes and advances `self`
    /// past them. `0 < n < self.len()`.
    #[inline]
    pub(crate) fn split_front(&mut self, n: u32) -> BlockRef {
        debug_assert!(n > 0 && n < self.len());
        // SAFETY: `self` keeps the block live; the new range is a sub-range
        // of ours so it satisfies the invariant.
        let front = unsafe { BlockRef::share(self.block, self.start, n) };
        self.start += n;
        front
    }

    /// True when `other` starts exactly where `self` ends in the same block,
    /// so the two can be merged into one reference.
    #[inline]
    pub(crate) fn is_followed_by(&self, other: &BlockRef) -> bool {
        self.block == other.block && self.end == other.start
    }
}

/// Whether `[offset, offset + length)` lies inside `block`'s data (debug
/// checks only: callers guarantee it).
fn in_block(block: NonNull<Block>, offset: u32, length: u32) -> bool {
    // SAFETY: every caller holds or is handed a reference on `block`, so
    // it is live.
    let cap = unsafe { block.as_ref().cap() };
    offset.checked_add(length).is_some_and(|end| end <= cap)
}

impl Clone for BlockRef {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: `self` keeps the block live and the range is already valid.
        unsafe { BlockRef::share(self.block, self.start, self.len()) }
    }
}

impl Drop for BlockRef {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: every BlockRef owns exactly one reference and this is the
        // last time it is used.
        unsafe { Block::dec_ref(self.block) };
    }
}
