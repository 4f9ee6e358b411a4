//! One non-blocking attempt of read(2), write(2), recv(2), readv(2), send(2),
//! sendmsg(2) and sendfile(2) on a raw descriptor, and pipe2(2).
//!
//! Each call is made once: `EAGAIN` and `EINTR` come back as errors
//! (`WouldBlock`, `Interrupted`) for the caller's wait-and-retry loop
//! (`net::fd::IoFd::io`). Descriptors are plain numbers, as in
//! [`super::epoll`]: the kernel checks them, and a stale one fails with
//! `EBADF`.
//!
//! The calls that move data go through [`super::syscall`], not glibc's
//! wrappers of the same name (which are cancellation points: see there).

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::syscall;

/// Most buffers one vectored call passes (`IOV_MAX` on Linux); the rest
/// wait for the next call, as with any short write.
const MAX_IOVS: usize = 1024;

/// One `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
    cvt(unsafe {
        syscall(
            libc::SYS_read,
            fd,
            [buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// One `recv(2)` into `buf` (a socket).
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // `recvfrom(2)` without an address: what glibc's `recv` calls.
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
    cvt(unsafe {
        syscall(
            libc::SYS_recvfrom,
            fd,
            [buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// One `readv(2)` into at most the first 1024 of `bufs`.
pub(crate) fn read_vectored(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOVS) as libc::c_int;
    // SAFETY: IoSliceMut is ABI-compatible with iovec; the buffers are
    // valid for writes for the call.
    cvt(unsafe {
        syscall(
            libc::SYS_readv,
            fd,
            [bufs.as_ptr() as usize, n as usize, 0, 0, 0],
        )
    })
}

/// One `write(2)` of `buf` (pipes; sockets use [`send`]).
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of reads.
    cvt(unsafe {
        syscall(
            libc::SYS_write,
            fd,
            [buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    })
}

/// One `send(2)` of `buf` with `MSG_NOSIGNAL`: a closed peer gives
/// `EPIPE`, never `SIGPIPE`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // `sendto(2)` without an address: what glibc's `send` calls.
    // SAFETY: `buf` is valid for `buf.len()` bytes of reads; no address.
    cvt(unsafe {
        let flags = libc::MSG_NOSIGNAL as usize;
        syscall(
            libc::SYS_sendto,
            fd,
            [buf.as_ptr() as usize, buf.len(), flags, 0, 0],
        )
    })
}

/// One `writev`-like `sendmsg(2)` of at most the first 1024 of `bufs`,
/// with `MSG_NOSIGNAL`.
pub(crate) fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: a zeroed msghdr is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(MAX_IOVS) as _;
    // SAFETY: iov points at `bufs` (IoSlice is ABI-compatible with iovec),
    // alive for the call; the kernel only reads them.
    cvt(unsafe {
        let flags = libc::MSG_NOSIGNAL as usize;
        syscall(
            libc::SYS_sendmsg,
            fd,
            [(&raw const msg) as usize, flags, 0, 0, 0],
        )
    })
}

/// One `sendfile(2)` of up to `count` bytes of `in_fd` from `offset` to
/// `out_fd`; returns the bytes sent (0 at the end of the file).
pub(crate) fn sendfile(
    out_fd: RawFd,
    in_fd: RawFd,
    offset: u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = offset as libc::off_t;
    // SAFETY: `off` is a live off_t the kernel reads and updates; the
    // kernel checks both descriptors.
    cvt(unsafe { libc::sendfile(out_fd, in_fd, &mut off, count) })
}

/// A new pipe, both ends non-blocking and close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Converts a `-1`-on-error syscall result.
fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}
