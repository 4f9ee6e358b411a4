//! Memory for the runtime's immortal slabs: page-aligned, mapped once and
//! never unmapped, whose pages can be handed back to the kernel while
//! their addresses stay valid.
//!
//! The fiber and readiness slabs keep their entries at fixed addresses
//! for the life of the process, because racy readers (a dispatcher with a
//! stale event, a lookup by fiber id) may touch an entry at any time. So a
//! slab cannot free a segment after a burst; what it can do is
//! [`release`] its pages: the next touch of each maps a zero page, and
//! every reader in between reads zeros. What the zeros must mean is the
//! slab's argument: the readiness slab's entries are all atomics, valid
//! (and "free, matches no token") as all-zero bytes; the fiber slab's
//! metas are not (they hold `Vec`s, `Arc`s and references in
//! `UnsafeCell`s), and it treats those cells as uninitialised from the
//! moment it retires a segment until it writes them afresh on revival,
//! reading only the atomics (valid as zeros) in between. Each slab
//! asserts at compile time that a segment is a whole number of 4 KiB
//! pages, so every byte of it is released.

use std::io;

/// Maps `len` bytes (rounded up to whole pages) of private anonymous,
/// zero-filled memory, page-aligned. It is never unmapped.
pub(crate) fn map_zeroed(len: usize) -> io::Result<*mut u8> {
    let len = len.next_multiple_of(crate::runtime::context::page_size());
    // SAFETY: an anonymous private mapping at an address the kernel
    // chooses: no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// Hands the whole pages of `[ptr, ptr + len)` back to the kernel
/// (`MADV_DONTNEED`): their next touch maps a zero page. Returns the bytes
/// released. A partial page at either end is kept as it is (a slab whose
/// segments are whole pages, as both assert for 4 KiB pages, has none).
///
/// # Safety
///
/// The range must lie in a mapping made by [`map_zeroed`], and until the
/// caller writes it again, nothing in it may be read as a value that
/// all-zero bytes are not: what is read must be valid as zeros (atomics),
/// and what is not valid as zeros must be treated as uninitialised
/// (neither read nor dropped, only overwritten with `ptr::write`). The
/// caller's slab says why its entries satisfy this.
pub(crate) unsafe fn release(ptr: *mut u8, len: usize) -> usize {
    let page = crate::runtime::context::page_size();
    let lo = (ptr as usize).next_multiple_of(page);
    let hi = (ptr as usize + len) & !(page - 1);
    if hi <= lo {
        return 0;
    }
    // SAFETY: inside a private anonymous mapping of ours (the caller's
    // contract); DONTNEED only replaces its pages with zero pages.
    let r = unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_DONTNEED) };
    if r == 0 {
        hi - lo
    } else {
        0
    }
}

/// A table of `len` all-zero entries whose memory is resident only where
/// it was written: the allocator zeroes it (`calloc`, which for a table
/// this large maps fresh pages and skips the clearing) rather than a loop
/// that would touch every page. The runtime's lookup tables (fiber and
/// readiness slab segments, timer chunks) are sized for their maximum and
/// mostly stay empty; built entry by entry they would be ~900 KiB of RSS
/// in any build the optimizer does not rewrite the loop into a `calloc`.
///
/// # Safety
/// All-zero bytes must be a valid `T`.
pub(crate) unsafe fn zeroed_table<T>(len: usize) -> Box<[T]> {
    let layout = std::alloc::Layout::array::<T>(len).expect("table size overflows");
    if layout.size() == 0 {
        // SAFETY: a zero-sized slice needs no memory; a dangling, aligned
        // pointer is what `Box` uses for one.
        return unsafe {
            Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                std::ptr::NonNull::<T>::dangling().as_ptr(),
                len,
            ))
        };
    }
    // SAFETY: the layout is not zero-sized.
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `p` is a global-allocator allocation of exactly
    // `Layout::array::<T>(len)`, which is what `Box<[T]>` frees, and its
    // `len` entries are all-zero bytes, which the caller vouches are valid
    // `T`s.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) }
}
