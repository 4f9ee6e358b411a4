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

/// The most references a block may have. Past it, [`Block::inc_ref`]
/// aborts the process, as `Arc::clone` does: references leaked with
/// `mem::forget` must never wrap the count to zero and free a block still in
/// use. Half the `u32` range, so that even as many racing increments as
/// there could be threads cannot carry the count past `u32::MAX` before one
/// of them sees the limit.
pub(crate) const MAX_REFCOUNT: u32 = i32::MAX as u32;

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
        let prev = unsafe { block.as_ref() }
            .nshared
            .fetch_add(1, Ordering::Relaxed);
        // One compare on the hot path; only leaked references get here.
        if prev >= MAX_REFCOUNT {
            refcount_overflow();
        }
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

    /// Sets the refcount, so a test can reach the overflow limit without
    /// 2^31 clones.
    ///
    /// # Safety
    /// `block` must be live; the test leaks it afterwards (the count no
    /// longer matches the references).
    #[cfg(test)]
    pub(crate) unsafe fn set_ref_for_test(block: NonNull<Block>, n: u32) {
        // SAFETY: the caller guarantees the block is live.
        unsafe { block.as_ref() }
            .nshared
            .store(n, Ordering::Relaxed);
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

/// Too many references to one block (they were leaked): going on would
/// wrap the count and free the block while in use, so stop here.
#[cold]
#[inline(never)]
fn refcount_overflow() -> ! {
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD_ENV: &str = "FIBRPC_IOBUF_REFCOUNT_OVERFLOW_CHILD";

    /// In the child: a block whose count sits at the limit, then one more
    /// reference, which must abort instead of wrapping.
    #[test]
    fn refcount_overflow_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let data = Box::leak(vec![1u8; 16].into_boxed_slice());
        let ptr = NonNull::new(data.as_mut_ptr()).unwrap();
        // SAFETY: the leaked bytes are initialized and live forever.
        let block = unsafe { Block::new_user(ptr, 16, Box::new(())) };
        // SAFETY: we hold the block's only reference; it is leaked.
        unsafe {
            Block::set_ref_for_test(block, MAX_REFCOUNT - 1);
            Block::inc_ref(block); // reaches the limit: still fine
            eprintln!("at the limit");
            Block::inc_ref(block); // past it: aborts
        }
        // Not reached when the check works; exit cleanly so the parent sees
        // a missing abort.
        std::process::exit(0);
    }

    #[test]
    fn refcount_overflow_aborts() {
        use std::os::unix::process::ExitStatusExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "block::tests::refcount_overflow_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The abort came from the increment past the limit, not the one
        // reaching it.
        assert!(stderr.contains("at the limit"), "stderr: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "status: {:?}, stderr: {stderr}",
            out.status,
        );
    }

    #[test]
    fn refcount_below_the_limit_counts_normally() {
        let data = Box::leak(vec![1u8; 4].into_boxed_slice());
        let ptr = NonNull::new(data.as_mut_ptr()).unwrap();
        // SAFETY: the leaked bytes are initialized and live forever.
        let block = unsafe { Block::new_user(ptr, 4, Box::new(())) };
        // SAFETY: we own one reference and give back each one we add.
        unsafe {
            Block::set_ref_for_test(block, MAX_REFCOUNT - 2);
            Block::inc_ref(block);
            Block::dec_ref(block);
            Block::set_ref_for_test(block, 1);
            Block::dec_ref(block); // frees the header
        }
    }
}
