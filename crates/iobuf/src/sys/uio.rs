//! readv / writev / pread / preadv / write.

use std::io;
use std::os::fd::RawFd;

use super::check;

/// `readv(2)`.
///
/// # Safety
/// Every iovec must describe writable memory that nothing else accesses
/// during the call.
pub(crate) unsafe fn readv(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    // SAFETY: the caller guarantees the iovecs are valid writable buffers;
    // the count matches the slice.
    check(unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) })
}

/// `preadv(2)` at `offset`.
///
/// # Safety
/// As for [`readv`].
pub(crate) unsafe fn preadv(fd: RawFd, iov: &[libc::iovec], offset: u64) -> io::Result<usize> {
    // SAFETY: as for readv; the offset is passed by value.
    check(unsafe {
        libc::preadv(
            fd,
            iov.as_ptr(),
            iov.len() as libc::c_int,
            offset as libc::off_t,
        )
    })
}

/// `writev(2)`. The iovecs only need to describe readable memory, which
/// `IoSlice` guarantees.
pub(crate) fn writev(fd: RawFd, iov: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix and each one
    // borrows readable memory for the duration of the call.
    check(unsafe { libc::writev(fd, iov.as_ptr().cast(), iov.len() as libc::c_int) })
}

/// `write(2)`.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length during the call.
    check(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// `pread(2)` into a slice.
pub(crate) fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length and exclusively borrowed.
    check(unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}
