//! sendfile / splice / pipe: moving file pages to a socket inside the
//! kernel.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::check;

/// `sendfile(2)` from `in_fd` at `*offset` to `out_fd`; advances `offset`.
pub(crate) fn sendfile(
    out_fd: RawFd,
    in_fd: RawFd,
    offset: &mut u64,
    count: usize,
) -> io::Result<usize> {
    let mut off = *offset as libc::off_t;
    // SAFETY: plain fds and a valid pointer to a local offset.
    let n = check(unsafe { libc::sendfile(out_fd, in_fd, &mut off, count) })?;
    *offset = off as u64;
    Ok(n)
}

/// `splice(2)`; `off_in` is the file offset (advanced by the kernel) or
/// `None` for a pipe/socket end.
pub(crate) fn splice(
    fd_in: RawFd,
    off_in: Option<&mut u64>,
    fd_out: RawFd,
    len: usize,
    flags: libc::c_uint,
) -> io::Result<usize> {
    let mut off: libc::loff_t = 0;
    let p = match &off_in {
        Some(o) => {
            off = **o as libc::loff_t;
            &mut off as *mut libc::loff_t
        }
        None => std::ptr::null_mut(),
    };
    // SAFETY: `p` is null or points to a live local; fds are plain ints.
    let n = check(unsafe { libc::splice(fd_in, p, fd_out, std::ptr::null_mut(), len, flags) })?;
    if let Some(o) = off_in {
        *o = off as u64;
    }
    Ok(n)
}

/// A non-blocking, close-on-exec pipe: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both are fresh fds nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
