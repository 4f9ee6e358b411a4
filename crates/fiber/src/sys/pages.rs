//! Memory for the runtime's immortal slabs: page-aligned, mapped once and
//! never unmapped, whose pages can be handed back to the kernel while
//! their addresses stay valid.
//!
//! The fiber and readiness slabs keep their entries at fixed addresses
//! for the life of the process, because racy readers (a dispatcher with a
//! stale event, a lookup by fiber id) may touch an entry at any time. So a
//! slab cannot free a segment after a burst; what it can do is
//! [`release`] its pages: the next touch of each maps a zero page, and
//! every reader in between reads zeros. A slab whose entries are valid
//! (and mean "free, matches no token") as all-zero bytes loses nothing
//! but the resident memory.

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
/// released.
///
/// # Safety
///
/// The range must lie in a mapping made by [`map_zeroed`], and every
/// value stored in it must be one whose all-zero bytes are an equally
/// valid value that nobody relies on being anything else (the caller's
/// slab says why its entries are).
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
