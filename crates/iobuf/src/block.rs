//! `Block`: the refcounted storage every [`BlockRef`](crate::block_ref::BlockRef)
//! points into (bRPC's `IOBuf::Block`).
//!
//! Two kinds share one header:
//! * **owned** blocks are one 8 KiB allocation: this header followed by the
//!   data. They come from and go back to the per-thread pool in
//!   [`crate::block_pool`].
//! * **user** blocks wrap foreign memory (a `Vec`, a `Bytes`, an mmap): the
//!   header is boxed on its own and `owner` keeps the memory alive; dropping
//!   `owner` is the deleter.
//!
//! The header does not record how much of the block is filled. Only the
//! unique writer of a block's tail (the thread-local cache, an `IOPortal`, an
//! `IOBufAppender`) knows that, so the block itself is immutable shared state
//! apart from its refcount.

use std::any::Any;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// Total size of an owned block (header included), as in bRPC.
pub const DEFAULT_BLOCK_SIZE: usize = 8192;

/// Header of a block. `repr(C)` so that the data of an owned block starts at
/// a fixed offset right after it.
#[repr(C)]
pub(crate) struct Block {
    /// Number of live references: `BlockRef`s plus the writer that owns the
    /// tail, if any.
    nshared: AtomicU32,
    /// Usable bytes at `data`.
    cap: u32,
    data: NonNull<u8>,
    /// `None` for owned blocks. For user blocks, what keeps `data` alive.
    owner: Option<Box<dyn Any + Send + Sync>>,
}

/// Offset of the data inside an owned block. The header is 32 bytes on
/// 64-bit targets, which keeps the data 16-byte aligned.
pub(crate) const HEADER_SIZE: usize = std::mem::size_of::<Block>();

/// Usable bytes of an owned block.
pub(crate) const OWNED_CAP: usize = DEFAULT_BLOCK_SIZE - HEADER_SIZE;

impl Block {
    /// Writes a fresh owned-block header into the raw allocation `mem` of
    /// `DEFAULT_BLOCK_SIZE` bytes and returns it with a refcount of 1.
    ///
    /// # Safety
    /// `mem` must point to an allocation of `DEFAULT_BLOCK_SIZE` bytes with
    /// the alignment of `Block` that nothing else uses.
    pub(crate) unsafe fn init_owned(mem: NonNull<u8>) -> NonNull<Block> {
        let block = mem.cast::<Block>();
        // SAFETY: the caller gives us `DEFAULT_BLOCK_SIZE` exclusive bytes, so
        // both the header write and the data pointer stay inside it.
        unsafe {
            block.as_ptr().write(Block {
                nshared: AtomicU32::new(1),
                cap: OWNED_CAP as u32,
                data: mem.add(HEADER_SIZE),
                owner: None,
            });
        }
        block
    }

    /// A user block over `len` bytes at `data`, kept alive by `owner`.
    /// Refcount starts at 1.
    ///
    /// # Safety
    /// The `len` bytes at `data` must be initialized, stay valid and never be
    /// written for as long as `owner` is alive.
    pub(crate) unsafe fn new_user(
        data: NonNull<u8>,
        len: u32,
        owner: Box<dyn Any + Send + Sync>,
    ) -> NonNull<Block> {
        let b = Box::new(Block {
            nshared: AtomicU32::new(1),
            cap: len,
            data,
            owner: Some(owner),
        });
        NonNull::from(Box::leak(b))
    }

    /// Usable bytes of the block.
    #[inline]
    pub(crate) fn cap(&self) -> u32 {
        self.cap
    }

    /// Start of the block's data.
    #[inline]
    pub(crate) fn data(&self) -> *mut u8 {
        self.data.as_ptr()
    }

    /// True for owned (pooled, writable-tail) blocks.
    #[inline]
    pub(crate) fn is_owned(&self) -> bool {
        self.owner.is_none()
    }

    /// Adds a reference.
    ///
    /// # Safety
    /// `block` must be live, i.e. the caller holds a reference to it.
    #[inline]
    pub(crate) unsafe fn inc_ref(block: NonNull<Block>) {
        // SAFETY: the caller holds a reference, so the header is live.
        // Relaxed is enough for an increment (same argument as `Arc::clone`):
        // the new reference is derived from one the caller already has.
        unsafe { block.as_ref() }
            .nshared
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Drops a reference, releasing the block when it was the last one.
    ///
    /// # Safety
    /// `block` must be live and the caller must give up one reference that it
    /// owns; it must not touch the block afterwards through that reference.
    #[inline]
    pub(crate) unsafe fn dec_ref(block: NonNull<Block>) {
        // SAFETY: the caller owns a reference, so the header is live until
        // our decrement.
        let prev = unsafe { block.as_ref() }
            .nshared
            .fetch_sub(1, Ordering::Release);
        if prev == 1 {
            // Pairs with the Release decrements of the other holders so that
            // their last reads of the data happen before we recycle it
            // (`Arc`'s drop protocol).
            fence(Ordering::Acquire);
            // SAFETY: the count reached zero: we are the only user left.
            unsafe { Self::release(block) };
        }
    }

    /// # Safety
    /// No reference to `block` remains.
    #[cold]
    unsafe fn release(block: NonNull<Block>) {
        // SAFETY: no other reference exists, so reading the header is
        // race-free.
        if unsafe { block.as_ref() }.is_owned() {
            // SAFETY: owned blocks come from the pool's allocator and nobody
            // references this one any more.
            unsafe { crate::block_pool::recycle(block) };
        } else {
            // SAFETY: user blocks were created by `Box::leak` in `new_user`;
            // dropping the box drops `owner`, which is the deleter.
            drop(unsafe { Box::from_raw(block.as_ptr()) });
        }
    }

    /// Resets the refcount of a recycled owned block to 1.
    ///
    /// # Safety
    /// Nobody else may reference `block`.
    pub(crate) unsafe fn reset_ref(block: NonNull<Block>) {
        // SAFETY: the caller has the only access to the block.
        unsafe { block.as_ref() }
            .nshared
            .store(1, Ordering::Relaxed);
    }
}
