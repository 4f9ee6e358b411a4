//! Where owned blocks come from and go back to.
//!
//! Each thread keeps a short free list of owned blocks over the global
//! allocator. A block whose last reference is dropped goes to the free list of
//! the thread that dropped it, or back to the allocator when that list is
//! full. The bound (`POOL_MAX`) is what keeps a burst from pinning memory: a
//! 1 GiB burst leaves at most `POOL_MAX` blocks per thread behind.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

use crate::block::{Block, DEFAULT_BLOCK_SIZE};

/// Free blocks kept per thread (bRPC caches up to 8 blocks per thread too).
pub(crate) const POOL_MAX: usize = 8;

/// The layout of an owned block. Alignment 16 (not a cache line) keeps the
/// system allocator on its plain `malloc` path instead of `memalign`, which
/// fragments more.
fn layout() -> Layout {
    // Block needs 8-byte alignment; 16 also keeps the data 16-aligned.
    match Layout::from_size_align(DEFAULT_BLOCK_SIZE, 16) {
        Ok(l) => l,
        Err(_) => unreachable!("8192/16 is a valid layout"),
    }
}

struct Pool(RefCell<Vec<NonNull<Block>>>);

impl Drop for Pool {
    fn drop(&mut self) {
        for b in self.0.get_mut().drain(..) {
            // SAFETY: blocks in the free list are unreferenced owned blocks
            // allocated with `layout()`.
            unsafe { dealloc(b.as_ptr().cast(), layout()) };
        }
    }
}

thread_local! {
    static POOL: Pool = const { Pool(RefCell::new(Vec::new())) };
}

/// A fresh owned block with refcount 1.
pub(crate) fn alloc_block() -> NonNull<Block> {
    let cached = POOL
        .try_with(|p| p.0.try_borrow_mut().ok().and_then(|mut v| v.pop()))
        .ok()
        .flatten();
    if let Some(b) = cached {
        // SAFETY: blocks in the free list have no references.
        unsafe { Block::reset_ref(b) };
        return b;
    }
    // SAFETY: the layout has a non-zero size.
    let mem = unsafe { alloc(layout()) };
    let Some(mem) = NonNull::new(mem) else {
        handle_alloc_error(layout())
    };
    // SAFETY: `mem` is a fresh exclusive allocation of `DEFAULT_BLOCK_SIZE`
    // bytes aligned to 16 >= align_of::<Block>().
    unsafe { Block::init_owned(mem) }
}

/// Takes back an owned block whose last reference is gone.
///
/// # Safety
/// `block` is an owned block with no references left.
pub(crate) unsafe fn recycle(block: NonNull<Block>) {
    let kept = POOL
        .try_with(|p| match p.0.try_borrow_mut() {
            Ok(mut v) if v.len() < POOL_MAX => {
                v.push(block);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: owned blocks are allocated with `layout()` in
        // `alloc_block`, and the caller guarantees nobody uses it any more.
        unsafe { dealloc(block.as_ptr().cast(), layout()) };
    }
}

/// Number of free blocks cached by the calling thread.
pub(crate) fn pooled_blocks() -> usize {
    POOL.try_with(|p| p.0.borrow().len()).unwrap_or(0)
}

/// Frees every block cached by the calling thread.
pub(crate) fn release() {
    let blocks = POOL
        .try_with(|p| std::mem::take(&mut *p.0.borrow_mut()))
        .unwrap_or_default();
    for b in blocks {
        // SAFETY: blocks in the free list are unreferenced owned blocks
        // allocated with `layout()`.
        unsafe { dealloc(b.as_ptr().cast(), layout()) };
    }
}
